"""The index's compiled search against its numpy search, seen from a client: the same
`hashguard serve` (same data directory, request mix, client processes and duration) run
once with HASHGUARD_INDEX_KERNEL=numpy (the search as it was) and once with the compiled
search (the default), taking turns, in one run. Shows throughput, latency, server CPU per
request, and the server's start-up time (to listening: the list load plus, for the
compiled search, loading numba and its cached code).

Run: python -m loadtests.kernel_load --entries 1000000 --mix hash=1 --concurrency 8
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from loadtests.load import (
    Server,
    Tally,
    Workload,
    parse_mix,
    process_cpu,
    report,
    run_clients,
    sample_images,
    seed_data_dir,
)
from service.index.hamming import KERNEL_VARIABLE


def serve_and_load(
    data_dir: Path, kernel: str, work: Workload, processes: int, duration: float
) -> tuple[float, Tally, float]:
    """(start-up seconds, tally, server CPU seconds) of one server with `kernel`."""
    previous = os.environ.get(KERNEL_VARIABLE)
    os.environ[KERNEL_VARIABLE] = kernel  # the server child inherits it
    started = time.perf_counter()
    try:
        server = Server(data_dir).start()
    finally:
        if previous is None:
            os.environ.pop(KERNEL_VARIABLE, None)
        else:
            os.environ[KERNEL_VARIABLE] = previous
    startup = time.perf_counter() - started
    try:
        work = replace(work, target=f"127.0.0.1:{server.port}")
        run_clients(work, processes)  # warm-up: connections, page cache, branch predictors
        cpu_before = process_cpu(server.server_pid)
        tally = run_clients(replace(work, duration=duration), processes)
        cpu = process_cpu(server.server_pid) - cpu_before
    finally:
        server.stop()
    return startup, tally, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    parser.add_argument("--mix", default="hash=1")
    parser.add_argument("--image-mp", type=float, default=0.3)
    parser.add_argument("--kernels", default="numpy,compiled", help="in this order, per round")
    parser.add_argument("--rounds", type=int, default=2, help="each kernel this many times")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hashguard-kernels-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        operator, submitter = seed_data_dir(data_dir, args.entries, seed=1)
        kinds = parse_mix(args.mix)
        work = Workload(
            target="",
            operator_key=operator,
            submitter_key=submitter,
            kinds=kinds,
            entries=args.entries,
            seed=1,
            near=0.01,
            images=sample_images(args.image_mp) if "image" in kinds else (),
            duration=args.warmup,
            requests=10**9,
            concurrency=args.concurrency,
            channels=4,
        )
        print(
            f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; mix {args.mix}; "
            f"{args.concurrency} in flight from {args.processes} client processes; "
            f"{args.entries:,} PDQ entries; {args.duration:.0f} s per server\n"
        )
        rows = []
        for round_ in range(args.rounds):
            for kernel in args.kernels.split(","):
                startup, tally, cpu = serve_and_load(
                    data_dir, kernel, work, args.processes, args.duration
                )
                served = sum(len(v) for v in tally.latencies.values())
                rows.append((f"{kernel} #{round_ + 1}", startup, tally, cpu / max(served, 1)))
                time.sleep(1)
        print(f"{'kernel':<12} {'start s':>7} {'server CPU':>13}  {report(rows[0][2])[0]}")
        for name, startup, tally, cpu_per_request in rows:
            lines = report(tally)
            body = (
                lines[1]
                if len(tally.latencies) == 1
                else next(line for line in lines if line.startswith("all "))
            )
            print(f"{name:<12} {startup:>7.1f} {cpu_per_request * 1e6:>7,.0f} us/req  {body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
