"""Fuzz a real `hashguard serve` with hostile input and show it stays precise and well.

Starts a server on loopback (SQLite store in a temporary directory, or --store
postgresql://...), seeds it with a case, a vetted import and pending hits, then sends the
hand-made probes of loadtests/hostile_inputs.py (decompression bombs, 3000-frame GIF,
wrong enums, oversized, empty and unknown fields, malformed protobuf), every string and
number field of every request set to each hostile value of its type (NUL bytes, page
tokens past 2^63, huge and negative numbers...: `field_probes`), and --inputs random ones
(mutated images in every accepted format, mutated requests). Prints per family: inputs,
status codes and the slowest answer; then the server's RSS before and after and its
peak, whether it is still serving, and whether anything already stored changed.

With --memory-limit-mib the server runs under that address-space limit (RLIMIT_AS, set
with prlimit once it serves) and, with --concurrent-bombs N, first gets N copies of every
memory bomb (hostile_inputs.memory_bombs at --bomb-side, and the 8000² progressive JPEGs)
all at once; the table then shows the peak RSS against the limit.

A probe passes when it ends in an expected status (never UNKNOWN, INTERNAL,
UNAVAILABLE or DEADLINE_EXCEEDED) within --deadline seconds. Exit 1 if any failed.

Run: python -m loadtests.fuzz_inputs [--inputs 2000] [--seed 1] [--bomb-side 7999]
     [--store postgresql://...] [--families fixed,requests,fields,random]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2 as pb

from loadtests.hostile_inputs import (
    CHECK,
    CHECKS,
    ROLE_OF,
    SUBMIT,
    Probe,
    check,
    field_probes,
    fixed_image_probes,
    memory_bombs,
    progressive_jpeg_bombs,
    random_probes,
    request_probes,
)
from loadtests.load import Server, cli
from service.domain import EntryState
from service.store import open_store

EXPECTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}


@dataclass
class Family:
    inputs: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    max_seconds: float = 0.0


@dataclass
class FuzzReport:
    families: dict[str, Family]
    rss_before_mib: float
    rss_after_mib: float
    rss_peak_mib: float
    serving_after: bool
    store_unchanged: bool
    unexpected: list[str]
    memory_limit_mib: int = 0

    @property
    def inputs(self) -> int:
        return sum(f.inputs for f in self.families.values())

    @property
    def ok(self) -> bool:
        return not self.unexpected and self.serving_after and self.store_unchanged


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


# The seeded hit that field probes of ResolveHit may resolve, and its case's entry.
SACRIFICE = "fuzz-resolve"


def stored_state(data_dir: Path, case_ids: list[str], store_url: str) -> dict[str, object]:
    """Every stored row by id: entries (state and value), hits, and the seeded cases;
    leaving out the hit ResolveHit's probes may resolve (and its entry)."""
    store = open_store(store_url, data_dir, pool_size=1)
    try:
        hits = [hit for _, hit in store.list_hits(None, 10_000, None)]
        spared = {m.entry_id for h in hits if h.content_ref == SACRIFICE for m in h.matches}
        state: dict[str, object] = {
            f"entry {row.entry_id}": (row.state.value, row.value)
            for batch in store.iter_entries(list(EntryState))
            for row in batch
            if row.entry_id not in spared
        }
        state |= {f"hit {hit.hit_id}": hit for hit in hits if hit.content_ref != SACRIFICE}
        state |= {f"case {case_id}": store.case_status(case_id) for case_id in case_ids}
    finally:
        store.close()
    return state


class Fuzzer:
    def __init__(
        self, data_dir: Path, deadline: float, serve_args: list[str], store_url: str = "sqlite"
    ) -> None:
        self.data_dir = data_dir
        self.deadline = deadline
        self.store_args = ["--data-dir", str(data_dir), "--store", store_url]
        self.keys = {
            role: cli("keys", "add", *self.store_args, "--role", role).split()[-1]
            for role in ("operator", "submitter", "moderator", "admin")
        }
        self.server = Server(data_dir, ["--store", store_url, *serve_args]).start()
        # Decoders (libtiff) write warnings to the server's stderr; read them so the pipe
        # never fills and blocks the server.
        self.server_output: deque[str] = deque(maxlen=20)
        threading.Thread(target=self._drain, daemon=True).start()
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{self.server.port}",
            options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
        )

    def _drain(self) -> None:
        assert self.server.process is not None and self.server.process.stdout is not None
        for line in self.server.process.stdout:
            self.server_output.append(line)

    def close(self) -> None:
        """SIGTERM and wait (the drain thread, not communicate(), reads the output)."""
        self.channel.close()
        process = self.server.process
        assert process is not None
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def metadata(self, method: str) -> tuple[tuple[str, str], ...]:
        role = ROLE_OF[method]
        return (("authorization", f"Bearer {self.keys[role]}"),) if role else ()

    def seed(self) -> Seeded:
        """A case whose hash then gets a pending hit, a second one for ResolveHit's field
        probes, and a vetted import."""
        listing = self.data_dir / "vetted.txt"
        rng = np.random.default_rng(99)
        listing.write_text("".join(f"pdq {rng.bytes(32).hex()}\n" for _ in range(100)))
        cli("import", str(listing), *self.store_args, "--vetted")
        submit = self.channel.unary_unary(
            SUBMIT,
            request_serializer=pb.SubmitCaseRequest.SerializeToString,
            response_deserializer=pb.SubmitCaseResponse.FromString,
        )
        check = self.channel.unary_unary(
            CHECK,
            request_serializer=pb.CheckUploadRequest.SerializeToString,
            response_deserializer=pb.CheckUploadResponse.FromString,
        )
        cases, hits, values = [], [], []
        for ref in ("seed", SACRIFICE):
            value = rng.bytes(32)
            listed = pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=value, quality=100)
            case = submit(pb.SubmitCaseRequest(hashes=[listed]), metadata=self.metadata(SUBMIT))
            reply = check(
                pb.CheckUploadRequest(hashes=[listed], content_ref=ref),
                metadata=self.metadata(CHECK),
            )
            assert reply.decision == pb.DECISION_REVIEW, reply
            cases.append(case.case_id)
            hits.append(reply.hit_id)
            values.append(value)
        return Seeded(cases[:1], values[1], hits[1], cases[0])

    def send(self, probe: Probe) -> tuple[grpc.StatusCode, float]:
        started = time.perf_counter()
        try:
            if probe.method == CHECKS:
                call: Any = self.channel.stream_stream(probe.method)
                list(
                    call(
                        iter(probe.bodies),
                        metadata=self.metadata(probe.method),
                        timeout=self.deadline,
                    )
                )
            else:
                unary: Any = self.channel.unary_unary(probe.method)
                unary(probe.bodies[0], metadata=self.metadata(probe.method), timeout=self.deadline)
            code = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            code = exc.code()
        return code, time.perf_counter() - started

    def serving(self) -> bool:
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)  # type: ignore[attr-defined]
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass
class Seeded:
    case_ids: list[str]  # cases whose state must not change
    listed: bytes  # the PDQ of the pending entry of SACRIFICE's case (checks make new hits)
    hit_id: str  # SACRIFICE's pending hit, which ResolveHit's field probes may resolve
    case_id: str  # a real case, for GetCase and WithdrawCase's field probes


FAMILIES = ("fixed", "requests", "fields", "random")


def run(
    inputs: int,
    seed: int = 1,
    bomb_side: int = 7999,
    deadline: float = 60.0,
    serve_args: list[str] | None = None,
    store_url: str = "sqlite",
    families_run: tuple[str, ...] = FAMILIES,
    memory_limit_mib: int = 0,
    concurrent_bombs: int = 0,
) -> FuzzReport:
    with tempfile.TemporaryDirectory(prefix="hashguard-fuzz-") as tmp:
        fuzzer = Fuzzer(Path(tmp), deadline, serve_args or [], store_url)
        try:
            if memory_limit_mib:
                limit = memory_limit_mib * 2**20
                resource.prlimit(fuzzer.server.server_pid, resource.RLIMIT_AS, (limit, limit))
            seeded = fuzzer.seed()
            case_ids = seeded.case_ids
            before = stored_state(fuzzer.data_dir, case_ids, store_url)
            rss_before, _ = memory_mib(fuzzer.server.server_pid)
            families: dict[str, Family] = defaultdict(Family)
            unexpected: list[str] = []
            chosen: dict[str, Callable[[], Iterable[Probe]]] = {
                "fixed": lambda: fixed_image_probes(bomb_side),
                "requests": request_probes,
                "fields": lambda: field_probes(seeded.listed, seeded.hit_id, seeded.case_id),
                "random": lambda: itertools.islice(
                    random_probes(np.random.default_rng(seed)), inputs
                ),
            }
            probes: Iterator[Probe] = itertools.chain(*(chosen[f]() for f in families_run))
            if concurrent_bombs:
                bombs = {**memory_bombs(bomb_side), **progressive_jpeg_bombs(8000)}
                at_once = [
                    check(data, f"memory bomb: {name}")
                    for name, data in bombs.items()
                    for _ in range(concurrent_bombs)
                ]
                with ThreadPoolExecutor(len(at_once)) as senders:
                    answered = list(senders.map(fuzzer.send, at_once))
                for probe, (code, seconds) in zip(at_once, answered, strict=True):
                    _count(families, unexpected, probe, code, seconds)
            for probe in probes:
                _count(families, unexpected, probe, *fuzzer.send(probe))
            rss_after, rss_peak = memory_mib(fuzzer.server.server_pid)
            serving = fuzzer.serving()
            after = stored_state(fuzzer.data_dir, case_ids, store_url)
            # Mutations that happen to leave a valid SubmitCase add a case: allowed, but
            # nothing stored before may change or go.
            unchanged = all(after.get(key) == value for key, value in before.items())
        finally:
            fuzzer.close()
    return FuzzReport(
        dict(families),
        rss_before,
        rss_after,
        rss_peak,
        serving,
        unchanged,
        unexpected,
        memory_limit_mib,
    )


def _count(
    families: dict[str, Family],
    unexpected: list[str],
    probe: Probe,
    code: grpc.StatusCode,
    seconds: float,
) -> None:
    family = families[probe.family]
    family.inputs += 1
    family.codes[code.name] += 1
    family.max_seconds = max(family.max_seconds, seconds)
    if code not in EXPECTED:
        unexpected.append(f"{probe.family} {probe.method}: {code.name}")


def table(report: FuzzReport) -> str:
    codes = sorted({code for f in report.families.values() for code in f.codes})
    header = f"{'family':28} {'inputs':>6} " + " ".join(f"{c:>18}" for c in codes) + "  max ms"
    lines = [header]
    for name in sorted(report.families):
        family = report.families[name]
        counts = " ".join(f"{family.codes.get(c, 0):>18}" for c in codes)
        lines.append(f"{name:28} {family.inputs:>6} {counts} {family.max_seconds * 1000:>7.0f}")
    lines.append(
        f"\n{report.inputs} inputs; unexpected statuses: {len(report.unexpected)}; "
        f"server RSS {report.rss_before_mib:.0f} MiB before, {report.rss_after_mib:.0f} MiB "
        f"after, peak {report.rss_peak_mib:.0f} MiB"
        + (f" (limit {report.memory_limit_mib} MiB)" if report.memory_limit_mib else "")
        + f"; still serving: {report.serving_after}; "
        f"stored data unchanged: {report.store_unchanged}"
    )
    lines += [f"  unexpected: {line}" for line in report.unexpected[:20]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=2000, help="random probes to send")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--bomb-side", type=int, default=7999, help="side of the PNG bomb below the pixel cap"
    )
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds per call")
    parser.add_argument("--serve-args", default="", help="extra `hashguard serve` flags")
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"which probes, of {','.join(FAMILIES)}"
    )
    parser.add_argument(
        "--memory-limit-mib", type=int, default=0, help="the server's address-space limit"
    )
    parser.add_argument(
        "--concurrent-bombs", type=int, default=0, help="copies of each memory bomb sent at once"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run(
        args.inputs,
        args.seed,
        args.bomb_side,
        args.deadline,
        args.serve_args.split(),
        args.store,
        tuple(args.families.split(",")),
        args.memory_limit_mib,
        args.concurrent_bombs,
    )
    print(table(report))
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
