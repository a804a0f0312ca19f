"""`hashguard serve --processes 1` vs `--processes N` in one run: CheckUpload(hash) and
the health check, req/s and p99 at several concurrencies, and each process's memory as
PSS (proportional set size, /proc/PID/smaps_rollup: a page shared by k processes counts
1/k in each, so the PSS of all processes adds up to what they really hold; RSS would
count shared pages once per process).

Seeds one list of --entries synthetic PDQ hashes (loadtests/load.py), then for each
process count starts the server on it, measures PSS once the list is loaded, drives
`hash` then `health` at each concurrency, and measures PSS again after the load.
Run: python -m loadtests.processes --entries 1000000 --duration 8
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from loadtests.load import Server, Tally, Workload, run_clients, seed_data_dir


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def tree(pid: int) -> list[int]:
    """The server process and its children (the serving processes under a supervisor)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(int(c) for c in children)]


def memory_line(pid: int) -> str:
    pids = tree(pid)
    each = [pss_kib(p) / 1024 for p in pids]
    parts = ", ".join(f"{p}: {m:.0f}" for p, m in zip(pids, each, strict=True))
    return f"PSS MiB total {sum(each):.0f} ({parts})"


def cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def row(processes: int, kind: str, concurrency: int, tally: Tally, cpu: float) -> str:
    ms = np.array(tally.latencies.get(kind, [0.0])) * 1e3
    calls = len(tally.latencies.get(kind, []))
    ok = tally.codes.get(kind, {}).get("OK", 0)
    per_call = cpu / calls * 1e6 if calls else 0.0
    return (
        f"| {processes} | {kind} | {concurrency} | {calls / tally.elapsed:,.0f} | "
        f"{np.percentile(ms, 50):.1f} | {np.percentile(ms, 99):.1f} | {per_call:,.0f} | "
        f"{ok}/{calls} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--processes", default="1,2", help="server process counts to compare")
    parser.add_argument("--concurrency", default="4,32,256")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.processes.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="hashguard-processes-") as temp:
        data_dir = args.data_dir or Path(temp) / "data"
        operator, submitter = seed_data_dir(data_dir, args.entries, seed=1)
        print(f"cores {os.cpu_count()}; list {args.entries:,} PDQ; {args.clients} client processes")
        rows = [
            "| processes | kind | in flight | req/s | p50 ms | p99 ms | server CPU µs/call | OK |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for count in counts:
            server = Server(data_dir, ["--processes", str(count)]).start()
            try:
                time.sleep(2)
                print(f"--processes {count}, list loaded: {memory_line(server.server_pid)}")
                work = Workload(
                    target=f"127.0.0.1:{server.port}",
                    operator_key=operator,
                    submitter_key=submitter,
                    kinds=("hash",),
                    entries=args.entries,
                    seed=1,
                    near=0.01,
                    images=(),
                    duration=args.duration,
                    requests=10_000_000,
                    concurrency=4,
                    channels=4,
                )
                run_clients(replace(work, duration=2.0), args.clients)  # warm-up
                for level in levels:
                    for kind in ("hash", "health"):
                        pids = tree(server.server_pid)
                        before = cpu_seconds(pids)
                        tally = run_clients(
                            replace(work, kinds=(kind,), concurrency=level), args.clients
                        )
                        used = cpu_seconds(pids) - before
                        rows.append(row(count, kind, level, tally, used))
                        print(rows[-1], f"load average {os.getloadavg()[0]:.1f}", flush=True)
                print(f"--processes {count}, after the load: {memory_line(server.server_pid)}")
            finally:
                server.stop()
        print("\n".join(rows))
        print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
