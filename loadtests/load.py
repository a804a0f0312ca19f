"""Load generator: many concurrent gRPC clients (asyncio) against a running HashGuard.

By default it seeds a data directory with --entries synthetic vetted PDQ hashes (seeded,
imported with the real `hashguard import`), makes an operator and a submitter key,
starts `hashguard serve` on free loopback ports, drives it, and stops it. --target
HOST:PORT with --key drives a server you started instead.

The request mix is weights per kind, e.g. --mix hash=90,image=9,submit=1:
  hash    CheckUpload with a precomputed PDQ hash (quality 100) and a SHA-256; a share
          --near of them lie a few bits from a listed hash (BLOCK), the rest are random
          (4,096 per client process, serialized once and sent round-robin, so the
          client's CPU goes on calls rather than on building messages)
  stream  the same check as one message of a CheckUploads stream that the client keeps
          open (one stream per client, one message in flight on it): no per-call cost
  batch   CheckUploadBatch with --batch-size such hash checks: one call, many checks;
          its row's req/s counts calls and latencies are per call, the checks/s line
          and the CPU per check count each upload
  image   CheckUpload with a JPEG of --image-mp megapixels (natural photos, pre-encoded)
  submit  SubmitCase with one random PDQ hash (a SQLite write and an index insert)
  health  grpc.health.v1 Check: no work, the transport's own ceiling
Every run is bounded by --duration seconds and --requests requests, whichever ends first.
It prints throughput, p50/p95/p99/max latency and status-code counts per kind, and
checks per second (every upload of a batch is one check).

--soak samples the server's RSS and open file descriptors every --sample-every seconds
and reports their growth. --profile FILE runs the server under py-spy (sampling
profiler, `bench` extra; only threads holding the GIL are sampled, which is where a
Python server's CPU goes), saves a speedscope profile and prints its top functions.
Run: python -m loadtests.load --entries 1000000 --mix hash=1 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc
from PIL import Image

KINDS = ("hash", "stream", "batch", "image", "submit", "health")
_LISTENING = re.compile(r"listening on (\S+):(\d+) \(gRPC\) and http://\S+:(\d+)/metrics")
_MAX_MESSAGE = 64 * 1024 * 1024
_CHECK_UPLOAD = "/hashguard.v1.MatchService/CheckUpload"
_CHECK_UPLOADS = "/hashguard.v1.MatchService/CheckUploads"
_CHECK_UPLOAD_BATCH = "/hashguard.v1.MatchService/CheckUploadBatch"
_PREBUILT = 4096  # distinct hash checks per client process, sent round-robin


# --- seeding and the server process ----------------------------------------------------

# A benchmark measures the server, not its per-key limits: its one operator and one
# submitter key would otherwise hit them (--serve-args can set them back).
_UNLIMITED = ("--rate-limits", "", "--max-cases-per-hour", "0", "--max-hashes-per-hour", "0")


def listed_hashes(entries: int, seed: int) -> np.ndarray:
    """The synthetic list: the same seed gives the same hashes in the seeder and clients."""
    return np.random.default_rng(seed).integers(0, 256, (entries, 32), dtype=np.uint8)


def cli(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"hashguard {' '.join(args[:2])} failed:\n{result.stderr}")
    return result.stdout


def seed_data_dir(data_dir: Path, entries: int, seed: int) -> tuple[str, str]:
    """Import the synthetic list (vetted) once per (entries, seed); return fresh keys."""
    marker = data_dir / f"seeded-{entries}-{seed}"
    if not marker.exists():
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True)
        listing = data_dir / "list.txt"
        with listing.open("w") as out:
            out.writelines(f"pdq {row.tobytes().hex()}\n" for row in listed_hashes(entries, seed))
        started = time.perf_counter()
        cli("import", str(listing), "--data-dir", str(data_dir), "--vetted")
        listing.unlink()
        marker.touch()
        print(f"seeded {entries:,} PDQ entries in {time.perf_counter() - started:.0f} s")
    keys = []
    for role in ("operator", "submitter"):
        name = f"load-{role}-{os.getpid()}-{time.time_ns()}"
        printed = cli("keys", "add", "--data-dir", str(data_dir), "--role", role, "--name", name)
        keys.append(printed.strip().splitlines()[-1])
    return keys[0], keys[1]


@dataclass
class Server:
    """`hashguard serve` as a child process (optionally under py-spy)."""

    data_dir: Path
    extra: Sequence[str] = ()
    profile: Path | None = None
    process: subprocess.Popen[str] | None = None
    port: int = 0
    server_pid: int = 0
    lines: list[str] = field(default_factory=list)

    def start(self, timeout: float = 300) -> Server:
        command = [sys.executable, "-m", "service.cli", "serve", "--data-dir", str(self.data_dir)]
        # One serving process unless --serve-args asks for more (`--processes N` comes
        # later and wins): --server-processes starts separate servers instead.
        command += ["--port", "0", "--metrics-port", "0", "--processes", "1", *_UNLIMITED]
        command += self.extra
        if self.profile:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            spy_args = ["record", "--gil", "--format", "speedscope", "-o", str(self.profile)]
            command = [spy, *spy_args, "--", *command]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("server exited early:\n" + "".join(self.lines))
            self.lines.append(line)
            found = _LISTENING.search(line)
            if found:
                self.port = int(found.group(2))
                self.server_pid = self._serving_pid()
                return self
        raise RuntimeError("server did not start in time:\n" + "".join(self.lines))

    def _serving_pid(self) -> int:
        """The Python process itself (a child of py-spy when profiling)."""
        assert self.process is not None
        if not self.profile:
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else self.process.pid

    def stop(self, timeout: float = 60) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.server_pid, signal.SIGTERM)  # py-spy writes its profile when it exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.communicate(timeout=timeout)
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


# --- requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    target: str
    operator_key: str
    submitter_key: str
    kinds: tuple[str, ...]  # one entry per unit of weight, drawn from at random
    entries: int
    seed: int
    near: float
    images: tuple[bytes, ...]
    duration: float
    requests: int  # for this client process
    concurrency: int  # coroutines in this client process
    channels: int
    batch_size: int = 32  # uploads per CheckUploadBatch call


def parse_mix(text: str) -> tuple[str, ...]:
    """'hash=90,image=10' -> a tuple with 90 'hash' and 10 'image'."""
    kinds: list[str] = []
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in KINDS:
            raise ValueError(f"unknown request kind {name!r}; known: {', '.join(KINDS)}")
        kinds += [name.strip()] * int(weight or 1)
    if not kinds:
        raise ValueError("the mix is empty")
    return tuple(kinds)


def sample_images(megapixels: float, count: int = 8) -> tuple[bytes, ...]:
    """Natural photos (skimage.data) scaled to the size and encoded as JPEG q85."""
    import skimage.data

    names = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "brick")
    images = []
    for name in names[:count]:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        factor = (megapixels * 1e6 / (image.width * image.height)) ** 0.5
        image = image.resize((round(image.width * factor), round(image.height * factor)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        images.append(buffer.getvalue())
    return tuple(images)


class Requests:
    """Builds the next request of each kind for one client process."""

    def __init__(self, work: Workload, seed: int) -> None:
        self.work = work
        # A stream of its own: seeded like the list, "random" queries would be list entries.
        self.rng = np.random.default_rng([work.seed, seed, 0x10AD])
        self.listed = listed_hashes(work.entries, work.seed) if work.near > 0 else None

    def pdq(self) -> bytes:
        if self.listed is not None and self.rng.random() < self.work.near:
            value = self.listed[self.rng.integers(0, len(self.listed))].copy()
            value[self.rng.integers(0, 32)] ^= 0x0F  # 4 bits away: a match
            return bytes(value.tobytes())
        return bytes(self.rng.bytes(32))

    def check_hashes(self) -> pb.CheckUploadRequest:
        pdq = self.pdq()
        return pb.CheckUploadRequest(
            hashes=[
                pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq, quality=100),
                pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=hashlib.sha256(pdq).digest()),
            ],
            content_ref="load",
        )

    def serialized_checks(self, count: int) -> list[bytes]:
        """`count` hash checks, serialized once up front: the client then spends its CPU
        on the calls, not on building messages (the server sees the same bytes)."""
        return [self.check_hashes().SerializeToString() for _ in range(count)]

    def serialized_batches(self, count: int, size: int) -> list[bytes]:
        """`count` CheckUploadBatch requests of `size` hash checks each, serialized once."""
        return [
            pb.CheckUploadBatchRequest(
                uploads=[self.check_hashes() for _ in range(size)]
            ).SerializeToString()
            for _ in range(count)
        ]

    def check_image(self) -> pb.CheckUploadRequest:
        image = self.work.images[int(self.rng.integers(0, len(self.work.images)))]
        return pb.CheckUploadRequest(image=image, content_ref="load")

    def submit(self) -> pb.SubmitCaseRequest:
        return pb.SubmitCaseRequest(
            hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=bytes(self.rng.bytes(32)))]
        )


@dataclass
class Tally:
    """Latencies (seconds) and status codes per request kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    codes: dict[str, Counter[str]] = field(default_factory=dict)
    decisions: Counter[str] = field(default_factory=Counter)  # of the checks answered
    checks: Counter[str] = field(default_factory=Counter)  # uploads checked per kind
    elapsed: float = 0.0

    def add(self, kind: str, seconds: float, code: str, checks: int = 1) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.codes.setdefault(kind, Counter())[code] += 1
        self.checks[kind] += checks

    def units(self) -> int:
        """Requests answered, each upload of a batch counted as one (for CPU per check)."""
        return sum(self.checks.values())

    def merge(self, other: Tally) -> None:
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        for kind, counts in other.codes.items():
            self.codes.setdefault(kind, Counter()).update(counts)
        self.decisions.update(other.decisions)
        self.checks.update(other.checks)
        self.elapsed = max(self.elapsed, other.elapsed)


async def drive(work: Workload, seed: int) -> Tally:
    """`concurrency` coroutines, each sending its next request when the last one answers."""
    options = [("grpc.max_send_message_length", _MAX_MESSAGE)]
    channels = [
        grpc.aio.insecure_channel(work.target, options=[*options, ("grpc.channel_id", i)])
        for i in range(work.channels)
    ]
    match = [pb_grpc.MatchServiceStub(c) for c in channels]
    answer_of = pb.CheckUploadResponse.FromString
    # Raw callables taking pre-serialized hash checks (no serializer: bytes go as they are).
    check_raw: list[Any] = [
        c.unary_unary(_CHECK_UPLOAD, request_serializer=None, response_deserializer=answer_of)
        for c in channels
    ]
    stream_raw: list[Any] = [
        c.stream_stream(_CHECK_UPLOADS, request_serializer=None, response_deserializer=answer_of)
        for c in channels
    ]
    batch_of = pb.CheckUploadBatchResponse.FromString
    batch_raw: list[Any] = [
        c.unary_unary(_CHECK_UPLOAD_BATCH, request_serializer=None, response_deserializer=batch_of)
        for c in channels
    ]
    submission = [pb_grpc.SubmissionServiceStub(c) for c in channels]
    health = [health_pb2_grpc.HealthStub(c) for c in channels]
    operator = (("authorization", f"Bearer {work.operator_key}"),)
    submitter = (("authorization", f"Bearer {work.submitter_key}"),)
    build = Requests(work, seed)
    checks = build.serialized_checks(_PREBUILT) if {"hash", "stream"} & set(work.kinds) else []
    batches = []
    if "batch" in work.kinds:
        count = max(1, _PREBUILT // work.batch_size)
        batches = build.serialized_batches(count, work.batch_size)
    tally = Tally()
    budget = [work.requests]
    started = time.perf_counter()
    deadline = started + work.duration

    async def client(index: int) -> None:
        rng = np.random.default_rng([work.seed, seed, index, 0x10AD])
        turn = itertools.count(index * 97)
        lane = index % len(channels)
        stream: Any = None  # this client's CheckUploads call, opened at its first "stream"
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            kind = work.kinds[int(rng.integers(0, len(work.kinds)))]
            sent = time.perf_counter()
            code = "OK"
            checked = 1
            try:
                if kind == "hash":
                    request = checks[next(turn) % len(checks)]
                    answer = await check_raw[lane](request, metadata=operator)
                    tally.decisions[pb.Decision.Name(answer.decision)] += 1
                elif kind == "batch":
                    request = batches[next(turn) % len(batches)]
                    answers = (await batch_raw[lane](request, metadata=operator)).results
                    tally.decisions.update(pb.Decision.Name(a.decision) for a in answers)
                    checked = len(answers)
                elif kind == "image":
                    image_check = build.check_image()
                    answer = await match[lane].CheckUpload(image_check, metadata=operator)
                    tally.decisions[pb.Decision.Name(answer.decision)] += 1
                elif kind == "stream":
                    if stream is None:
                        stream = stream_raw[lane](metadata=operator)
                    await stream.write(checks[next(turn) % len(checks)])
                    answer = await stream.read()
                    tally.decisions[pb.Decision.Name(answer.decision)] += 1
                elif kind == "submit":
                    await submission[lane].SubmitCase(build.submit(), metadata=submitter)
                else:
                    probe = health_pb2.HealthCheckRequest(service="")
                    await health[lane].Check(probe)  # type: ignore[attr-defined]
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
                stream = None if kind == "stream" else stream
                checked = 0
            tally.add(kind, time.perf_counter() - sent, code, checked)
        if stream is not None:
            await stream.done_writing()

    for c in channels:
        await c.channel_ready()
    await asyncio.gather(*(client(i) for i in range(work.concurrency)))
    tally.elapsed = time.perf_counter() - started
    for c in channels:
        await c.close()
    return tally


def _client_process(work: Workload, seed: int, results: multiprocessing.Queue[Tally]) -> None:
    results.put(asyncio.run(drive(work, seed)))


def run_clients(work: Workload, processes: int) -> Tally:
    """Split the concurrency and request budget over client processes; merge their tallies."""
    if processes <= 1:
        return asyncio.run(drive(work, 1))
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Tally] = ctx.Queue()
    share = replace(
        work,
        requests=-(-work.requests // processes),
        concurrency=max(1, work.concurrency // processes),
    )
    children = [
        ctx.Process(target=_client_process, args=(share, i + 1, results)) for i in range(processes)
    ]
    for child in children:
        child.start()
    total = Tally()
    for _ in children:
        total.merge(results.get())
    for child in children:
        child.join()
    return total


# --- reporting -----------------------------------------------------------------------


def report(tally: Tally) -> list[str]:
    lines = [
        f"{'kind':<8} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7}  status codes"
    ]
    every: list[float] = []
    for kind in sorted(tally.latencies):
        values = np.array(tally.latencies[kind]) * 1e3
        every += tally.latencies[kind]
        lines.append(_row(kind, values, tally.elapsed, tally.codes[kind]))
    if len(tally.latencies) > 1:
        total: Counter[str] = Counter()
        for counts in tally.codes.values():
            total.update(counts)
        lines.append(_row("all", np.array(every) * 1e3, tally.elapsed, total))
    if "batch" in tally.latencies:
        lines.append(checks_line(tally))
    if tally.decisions:
        lines.append(
            "decisions: " + ", ".join(f"{d} {n}" for d, n in tally.decisions.most_common())
        )
    return lines


def checks_line(tally: Tally) -> str:
    """Throughput in checks (every upload of a batch counted) next to calls."""
    calls = sum(len(v) for v in tally.latencies.values())
    return (
        f"checks: {tally.units():,} in {calls:,} calls, {tally.units() / tally.elapsed:,.0f} "
        f"checks/s, {calls / tally.elapsed:,.0f} calls/s (a batch's uploads each count)"
    )


def _row(kind: str, ms: np.ndarray, elapsed: float, codes: Counter[str]) -> str:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    status = ", ".join(f"{code} {count}" for code, count in codes.most_common())
    return (
        f"{kind:<8} {len(ms):>9,} {len(ms) / elapsed:>8,.0f} {p50:>7.2f} {p95:>7.2f} "
        f"{p99:>7.2f} {ms.max():>7.1f}  {status}"
    )


def profile_summary(path: Path, top: int = 15) -> list[str]:
    """The functions with the most samples in a py-spy speedscope file, with and without
    what they call."""
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    inclusive: Counter[int] = Counter()
    own: Counter[int] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            if stack:
                own[stack[-1]] += weight
            for frame in set(stack):
                inclusive[frame] += weight

    def name(i: int) -> str:
        frame = frames[i]
        return f"{frame['name']} ({Path(frame.get('file', '')).name}:{frame.get('line', '')})"

    lines = [f"{total:.1f} s of samples holding the GIL; top by own time:"]
    lines += [f"  {w / total:6.1%}  {name(i)}" for i, w in own.most_common(top)]
    lines.append("top including callees:")
    lines += [f"  {w / total:6.1%}  {name(i)}" for i, w in inclusive.most_common(top)]
    return lines


# --- soak ------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds used by this process and its finished children (client processes)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def cpu_report(server_seconds: float, client_seconds: float, requests: int) -> str:
    """CPU per request on each side (per upload for batches): what bounds throughput
    when the cores are busy."""
    per_server = server_seconds / requests * 1e6
    per_client = client_seconds / requests * 1e6
    return (
        f"CPU per request (per upload of a batch): server {per_server:,.0f} us "
        f"(one core serves at most "
        f"{1e6 / per_server:,.0f} req/s at that cost), clients {per_client:,.0f} us; "
        f"server {server_seconds:.1f} s, clients {client_seconds:.1f} s"
    )


def process_usage(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of a process, from /proc."""
    rss_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def start_servers(
    data_dir: Path, count: int, serve_args: str, profile: Path | None
) -> list[Server]:
    """One server, or `count` sharing a port with --reuse-port 1 (only the first writes
    index snapshots, so they never write the same files)."""
    if count <= 1:
        return [Server(data_dir, serve_args.split(), profile).start()]
    if profile:
        raise ValueError("--profile runs one server process; drop --server-processes")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shared = ["--port", str(port), "--reuse-port", "1", *serve_args.split()]
    servers = []
    for i in range(count):
        quiet = ["--snapshot-interval", "0"] if i else []
        servers.append(Server(data_dir, [*shared, *quiet]).start())
    return servers


@dataclass
class Soak:
    pids: Sequence[int]
    every: float
    samples: list[tuple[float, float, int]] = field(default_factory=list)

    def sample_until(self, done: Iterator[bool]) -> None:
        started = time.perf_counter()
        for finished in done:
            usage = [process_usage(pid) for pid in self.pids]
            rss, fds = sum(u[0] for u in usage), sum(u[1] for u in usage)
            self.samples.append((time.perf_counter() - started, rss, fds))
            if finished:
                return
            time.sleep(self.every)

    def report(self, warmup: float) -> list[str]:
        lines = [f"{'t s':>6} {'RSS MiB':>8} {'fds':>5}"]
        lines += [f"{t:>6.0f} {rss:>8.1f} {fds:>5}" for t, rss, fds in self.samples]
        steady = [s for s in self.samples if s[0] >= warmup] or self.samples
        times = np.array([s[0] for s in steady])
        rss = np.array([s[1] for s in steady])
        slope = float(np.polyfit(times, rss, 1)[0]) * 60 if len(steady) > 2 else 0.0
        third = max(1, len(rss) // 3)  # medians of thirds: robust to merges' brief dips
        early, late = float(np.median(rss[:third])), float(np.median(rss[-third:]))
        lines.append(
            f"after {warmup:.0f} s warm-up: RSS {rss[0]:.1f} -> {rss[-1]:.1f} MiB "
            f"({rss[-1] - rss[0]:+.1f} MiB, trend {slope:+.2f} MiB/min, peak {rss.max():.1f}); "
            f"median of first third {early:.1f}, of last third {late:.1f} ({late - early:+.1f}); "
            f"fds {steady[0][2]} -> {steady[-1][2]}"
        )
        return lines


# --- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target", help="HOST:PORT of a running server (needs --key)")
    parser.add_argument("--key", help="operator key for --target")
    parser.add_argument("--submitter-key", default="", help="submitter key for --target")
    parser.add_argument("--server-pid", type=int, help="pid of --target's server, for --soak")
    parser.add_argument("--entries", type=int, default=1_000_000, help="synthetic PDQ entries")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    parser.add_argument("--serve-args", default="", help="extra `hashguard serve` flags")
    parser.add_argument("--mix", default="hash=1", help="weights, e.g. hash=90,image=9,submit=1")
    parser.add_argument("--batch-size", type=int, default=32, help="uploads per batch call")
    parser.add_argument("--near", type=float, default=0.01, help="share of hash checks that hit")
    parser.add_argument("--image-mp", type=float, default=0.3, help="image size in megapixels")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--channels", type=int, default=4, help="gRPC channels per process")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds, at most")
    parser.add_argument("--requests", type=int, default=10_000_000, help="requests, at most")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load")
    parser.add_argument("--soak", action="store_true", help="sample server RSS and fds")
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument("--profile", type=Path, help="run the server under py-spy, save here")
    parser.add_argument(
        "--server-processes", type=int, default=1, help="serve processes sharing the port"
    )
    args = parser.parse_args(argv)

    kinds = parse_mix(args.mix)
    servers: list[Server] = []
    temp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if args.target:
            if not args.key:
                parser.error("--target needs --key (an operator API key)")
            target, operator_key, submitter_key = args.target, args.key, args.submitter_key
            pids = [args.server_pid] if args.server_pid else []
        else:
            if args.data_dir is None:
                temp = tempfile.TemporaryDirectory(prefix="hashguard-load-")
            data_dir = args.data_dir or Path(temp.name if temp else ".") / "data"
            operator_key, submitter_key = seed_data_dir(data_dir, args.entries, args.seed)
            started = time.perf_counter()
            servers = start_servers(data_dir, args.server_processes, args.serve_args, args.profile)
            pids = [s.server_pid for s in servers]
            print(f"{len(servers)} server process(es) up in {time.perf_counter() - started:.1f} s")
            target = f"127.0.0.1:{servers[0].port}"
        work = Workload(
            target=target,
            operator_key=operator_key,
            submitter_key=submitter_key,
            kinds=kinds,
            entries=args.entries,
            seed=args.seed,
            near=args.near if not args.target or args.entries else 0.0,
            images=sample_images(args.image_mp) if "image" in kinds else (),
            duration=args.duration,
            requests=args.requests,
            concurrency=args.concurrency,
            channels=args.channels,
            batch_size=args.batch_size,
        )
        print(
            f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; mix {args.mix}; "
            f"{args.concurrency} in flight over {args.processes} client process(es); "
            f"list {args.entries:,} PDQ; bounded by {args.duration:.0f} s / {args.requests:,}"
        )
        if args.warmup > 0:
            asyncio.run(drive(replace(work, duration=args.warmup), 99))
        soak = Soak(pids, args.sample_every) if args.soak and pids else None
        server_cpu, client_cpu = sum(process_cpu(p) for p in pids), own_cpu()
        if soak is not None:
            tally = _with_soak(work, args.processes, soak)
        else:
            tally = run_clients(work, args.processes)
        print("\n".join(report(tally)))
        served = tally.units()
        if pids and served:
            used = sum(process_cpu(p) for p in pids) - server_cpu
            print(cpu_report(used, own_cpu() - client_cpu, served))
        if soak is not None:
            print("\n".join(soak.report(warmup=min(60.0, args.duration / 5))))
    finally:
        for server in servers:
            server.stop()
        if servers and args.profile and args.profile.exists():
            print(f"profile saved to {args.profile} (speedscope format)")
            print("\n".join(profile_summary(args.profile)))
        if temp is not None:
            temp.cleanup()
    return 0


def _with_soak(work: Workload, processes: int, soak: Soak) -> Tally:
    """Run the load in a thread while this thread samples the server."""
    import threading

    box: list[Tally] = []
    runner = threading.Thread(target=lambda: box.append(run_clients(work, processes)))
    runner.start()

    def ticks() -> Iterator[bool]:
        while True:
            yield not runner.is_alive()

    soak.sample_until(ticks())
    runner.join()
    return box[0]


if __name__ == "__main__":
    raise SystemExit(main())
