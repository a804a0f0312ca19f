"""One tenant must not slow the others (issue 15, item 4), measured on two code versions
in one run. For each version a fresh server gets the same seeded list and three loads
from a noisy tenant, while a quiet tenant's client checks hashes and a probe asks for
health (5 s deadline, the shipped liveness probe's):

  batches   the noisy tenant sends 256-upload batches of 64 PDQ hashes each, from
            --noisy-clients clients at once; the quiet tenant checks one upload's hashes
  bombs     the noisy tenant keeps --bombs image bombs in flight (PNGs of --bomb-side²
            pixels from a few kilobytes); the quiet tenant's checks match a pending
            entry, so each answer is a REVIEW recorded in the store (its key is also
            reread every --key-cache-seconds): work for the store pool
  cancel    the noisy tenant sends one batch of 256 photos with a 1 s deadline; the
            server's CPU time from the deadline until it is idle again is what the
            abandoned batch kept costing

    git archive 1ebda97 service | tar -x -C /tmp/before   # main before the change
    python -m loadtests.tenant_fairness --baseline /tmp/before --entries 100000

The table gives the quiet tenant's latency (p50/p99/max over the load's duration, and
calls that failed or missed their deadline) beside the same figures with no load.
Timings depend on the machine's load: the run prints the load average; compare the two
versions within one run.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc
from PIL import Image

from loadtests.hostile_inputs import png_bomb

_LISTENING = re.compile(r"listening on (\S+):(\d+) \(gRPC\)")
HEALTH_DEADLINE = 5.0
CHECK_DEADLINE = 30.0


def cli(code: Path | None, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=_env(code),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _env(code: Path | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if code is not None:  # its own generated proto code too, if the proto changed since
        env["PYTHONPATH"] = f"{code}{os.pathsep}{code / 'service' / '_generated'}"
    return env


def random_pdq(rng: np.random.Generator, count: int) -> np.ndarray:
    return rng.integers(0, 256, (count, 32), dtype=np.uint8)


@dataclass
class Seeded:
    data_dir: Path
    pending: bytes  # a pending entry's PDQ: checks that match it are REVIEWs
    keys: dict[str, str] = field(default_factory=dict)


def seed(code: Path | None, data_dir: Path, entries: int) -> Seeded:
    """`entries` vetted random PDQ hashes and one pending one, imported with the CLI."""
    rng = np.random.default_rng(15)
    listing = data_dir / "list.txt"
    listing.write_text("".join(f"pdq {row.tobytes().hex()}\n" for row in random_pdq(rng, entries)))
    cli(code, "import", str(listing), "--data-dir", str(data_dir), "--vetted")
    pending = random_pdq(rng, 1)[0].tobytes()
    listing.write_text(f"pdq {pending.hex()}\n")
    cli(code, "import", str(listing), "--data-dir", str(data_dir))
    listing.unlink()
    seeded = Seeded(data_dir, pending)
    for tenant in ("noisy", "quiet"):
        printed = cli(
            code, "keys", "add", "--data-dir", str(data_dir), "--role", "operator",
            "--name", tenant, "--tenant", tenant,
        )  # fmt: skip
        seeded.keys[tenant] = printed.strip().splitlines()[-1]
    return seeded


@contextmanager
def server(code: Path | None, data_dir: Path, extra: list[str]) -> Iterator[tuple[str, int]]:
    """`hashguard serve` from `code` (None: this checkout); yields (target, pid)."""
    command = [sys.executable, "-m", "service.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--port", "0", "--metrics-port", "0", "--rate-limits", "", *extra]
    process = subprocess.Popen(
        command,
        env=_env(code),
        cwd=tempfile.gettempdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            found = _LISTENING.search(line)
            if found:
                break
        else:
            raise RuntimeError("server exited early:\n" + "".join(lines))
        drain = threading.Thread(target=lambda: process.stdout and process.stdout.read())
        drain.start()
        yield f"127.0.0.1:{found.group(2)}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Latencies:
    ms: list[float] = field(default_factory=list)
    failed: int = 0

    def timed(self, call: Callable[[], object]) -> None:
        started = time.perf_counter()
        try:
            call()
        except grpc.RpcError:
            self.failed += 1
        self.ms.append((time.perf_counter() - started) * 1000)

    def summary(self) -> str:
        if not self.ms:
            return "-"
        p50, p99 = np.percentile(self.ms, [50, 99])
        failed = f", {self.failed} failed" if self.failed else ""
        return f"{p50:,.1f} / {p99:,.0f} / {max(self.ms):,.0f}{failed}"


def quiet_load(
    target: str, key: str, request: pb.CheckUploadRequest, stop: threading.Event
) -> tuple[Latencies, Latencies]:
    """The quiet tenant's checks (one at a time) and health probes (every 0.25 s) until
    `stop`; returns (checks, health)."""
    checks, health = Latencies(), Latencies()
    metadata = (("authorization", f"Bearer {key}"),)

    def check_loop() -> None:
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.MatchServiceStub(channel)
            while not stop.is_set():
                checks.timed(
                    lambda: stub.CheckUpload(request, metadata=metadata, timeout=CHECK_DEADLINE)
                )
                stop.wait(0.05)

    def health_loop() -> None:
        with grpc.insecure_channel(target) as channel:
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs miss Check
            ask = health_pb2.HealthCheckRequest(service="")
            while not stop.is_set():
                health.timed(lambda: stub.Check(ask, timeout=HEALTH_DEADLINE))
                stop.wait(0.25)

    threads = [threading.Thread(target=check_loop), threading.Thread(target=health_loop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return checks, health


def noisy_loop(target: str, key: str, send: Callable[..., object], stop: threading.Event) -> int:
    """Call `send(stub, metadata)` back to back until `stop`; returns calls answered."""
    done = 0
    metadata = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as ch:
        stub = pb_grpc.MatchServiceStub(ch)
        while not stop.is_set():
            try:
                send(stub, metadata)
                done += 1
            except grpc.RpcError:
                pass
    return done


def under_load(
    target: str,
    keys: dict[str, str],
    quiet_request: pb.CheckUploadRequest,
    send: Callable[..., object],
    clients: int,
    seconds: float,
) -> tuple[Latencies, Latencies, int]:
    stop = threading.Event()
    answered: list[int] = []
    noisy = [
        threading.Thread(
            target=lambda: answered.append(noisy_loop(target, keys["noisy"], send, stop))
        )
        for _ in range(clients)
    ]
    for thread in noisy:
        thread.start()
    time.sleep(1.0)  # the noisy load under way before the quiet tenant starts
    timer = threading.Timer(seconds, stop.set)
    timer.start()
    checks, health = quiet_load(target, keys["quiet"], quiet_request, stop)
    for thread in noisy:
        thread.join()
    return checks, health, sum(answered)


def hashes_request(pdq: bytes, ref: str) -> pb.CheckUploadRequest:
    return pb.CheckUploadRequest(
        hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq, quality=100)],
        content_ref=ref,
    )


def big_batch(rng: np.random.Generator, uploads: int, hashes: int) -> pb.CheckUploadBatchRequest:
    return pb.CheckUploadBatchRequest(
        uploads=[
            pb.CheckUploadRequest(
                hashes=[
                    pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=row.tobytes(), quality=100)
                    for row in random_pdq(rng, hashes)
                ],
                content_ref=f"batch-{n}",
            )
            for n in range(uploads)
        ]
    )


def photo_batch(uploads: int) -> pb.CheckUploadBatchRequest:
    """`uploads` distinct 640 x 480 JPEG photos (skimage's, shifted and mirrored)."""
    import skimage.data

    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    images = []
    for n in range(uploads):
        pixels = np.roll(sources[n % len(sources)], n * 7, axis=1)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((640, 480)).save(buffer, "JPEG", quality=85)
        images.append(pb.CheckUploadRequest(image=buffer.getvalue(), content_ref=f"photo-{n}"))
    return pb.CheckUploadBatchRequest(uploads=images)


def cpu_after_cancel(target: str, pid: int, key: str, batch: pb.CheckUploadBatchRequest) -> str:
    """Send `batch` with a 1 s deadline; the server's CPU seconds from the deadline until
    it has been idle (under 0.05 s CPU in 1 s) for a second."""
    metadata = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as ch:
        stub = pb_grpc.MatchServiceStub(ch)
        try:
            stub.CheckUploadBatch(batch, metadata=metadata, timeout=1.0)
            outcome = "answered in time"
        except grpc.RpcError as exc:
            outcome = exc.code().name
    start = last = cpu_seconds(pid)
    began = time.perf_counter()
    while True:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - last < 0.05:
            break
        last = now
    return f"{now - start:.2f} s CPU over {time.perf_counter() - began:.0f} s ({outcome})"


def run_version(name: str, code: Path | None, args: argparse.Namespace, workdir: Path) -> list[str]:
    data_dir = workdir / name
    data_dir.mkdir()
    seeded = seed(code, data_dir, args.entries)
    rng = np.random.default_rng(4)
    batch = big_batch(rng, 256, 64)
    bomb = png_bomb(args.bomb_side, args.bomb_side)
    hash_check = hashes_request(random_pdq(rng, 1)[0].tobytes(), "quiet")
    review_check = hashes_request(seeded.pending, "quiet-review")
    rows = []
    extra = ["--key-cache-seconds", str(args.key_cache_seconds)]
    extra += ["--processes", "1"]  # one serving process (both versions know the flag)
    with server(code, data_dir, extra) as (target, pid):
        idle = [quiet_once(target, seeded.keys, r, args.seconds) for r in (hash_check,)]
        rows.append(row(name, "no load (hash check)", *idle[0], "-"))

        def send_batch(stub: pb_grpc.MatchServiceStub, metadata: object) -> object:
            return stub.CheckUploadBatch(batch, metadata=metadata, timeout=120)

        checks, health, done = under_load(
            target, seeded.keys, hash_check, send_batch, args.noisy_clients, args.seconds
        )
        rows.append(row(name, f"{args.noisy_clients} x 256x64 batches", checks, health, done))

        def send_bomb(stub: pb_grpc.MatchServiceStub, metadata: object) -> object:
            request = pb.CheckUploadRequest(image=bomb, content_ref="bomb")
            return stub.CheckUpload(request, metadata=metadata, timeout=120)

        checks, health, done = under_load(
            target, seeded.keys, review_check, send_bomb, args.bombs, args.seconds
        )
        rows.append(row(name, f"{args.bombs} bombs (REVIEW check)", checks, health, done))
        cancelled = cpu_after_cancel(target, pid, seeded.keys["noisy"], photo_batch(256))
        rows.append(f"| {name} | 256-photo batch, 1 s deadline | CPU after: {cancelled} | | |")
    return rows


def quiet_once(
    target: str, keys: dict[str, str], request: pb.CheckUploadRequest, seconds: float
) -> tuple[Latencies, Latencies]:
    stop = threading.Event()
    threading.Timer(min(seconds, 5.0), stop.set).start()
    return quiet_load(target, keys["quiet"], request, stop)


def row(name: str, load: str, checks: Latencies, health: Latencies, done: object) -> str:
    return f"| {name} | {load} | {checks.summary()} | {health.summary()} | {done} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the code before")
    parser.add_argument("--entries", type=int, default=100_000, help="vetted PDQ entries")
    parser.add_argument("--seconds", type=float, default=15.0, help="each load's duration")
    parser.add_argument("--noisy-clients", type=int, default=4)
    parser.add_argument("--bombs", type=int, default=40)
    parser.add_argument("--bomb-side", type=int, default=7999)
    parser.add_argument("--key-cache-seconds", type=float, default=1.0)
    args = parser.parse_args()
    versions: list[tuple[str, Path | None]] = [("after", None)]
    if args.baseline:
        versions.insert(0, ("before", args.baseline))
    workdir = Path(tempfile.mkdtemp(prefix="hg-fairness-"))
    rows = []
    try:
        for name, code in versions:
            rows += run_version(name, code, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average: {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores")
    print("| code | noisy tenant's load | quiet tenant's check ms p50 / p99 / max | "
          "health ms p50 / p99 / max | noisy calls answered |")  # fmt: skip
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
