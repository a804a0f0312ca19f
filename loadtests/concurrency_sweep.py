"""Single calls from few to many in flight: CheckUpload(hash) next to the health check,
against one server, in one run.

One `hashguard serve` on a seeded data directory (as loadtests/load.py seeds it); for
each --concurrency, `--mixes` (default hash, then health) are driven one after the other
for --duration seconds each, after a short unmeasured warm-up. Per row: requests/s,
latency percentiles, the server's CPU per call (all its threads) and the load
generator's, the ratio of each kind's req/s to the health check's at that concurrency,
the machine's load average when the row started (other work on the machine shows
there) and the server's full garbage collections in the row (each walks every object
the collector tracks; issue 19). --threads adds the server's CPU per call by thread (the
event loop thread, gRPC's event_engine and poller threads, the thread pool), which is
where a change of CPU per call with concurrency shows up.
Run: python -m loadtests.concurrency_sweep --entries 1000000 --concurrency 1,4,32,256
"""

from __future__ import annotations

import argparse
import os
import re
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from loadtests.load import (
    _LISTENING,
    Server,
    Workload,
    own_cpu,
    parse_mix,
    process_cpu,
    run_clients,
    seed_data_dir,
)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds by thread name (threads of one name added together)."""
    tick = os.sysconf("SC_CLK_TCK")
    by_name: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        if task.name == str(pid):
            name = "main (event loop)"
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return by_name


def full_collections(metrics_port: int) -> float:
    """The server's count of full (generation 2) garbage collections, from /metrics."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    found = re.search(r'python_gc_collections_total\{generation="2"\} (\S+)', text)
    return float(found.group(1)) if found else float("nan")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="synthetic PDQ entries")
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    parser.add_argument("--serve-args", default="", help="extra `hashguard serve` flags")
    parser.add_argument("--concurrency", default="1,4,32,256", help="calls in flight, each")
    parser.add_argument("--mixes", default="hash=1;health=1", help="';'-separated mixes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per row")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per row")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--threads", action="store_true", help="server CPU per call by thread")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or Path(f"/tmp/hashguard-sweep-{args.entries}")
    operator_key, submitter_key = seed_data_dir(data_dir, args.entries, 1)
    server = Server(data_dir, args.serve_args.split()).start()
    listening = _LISTENING.search("".join(server.lines))
    metrics_port = int(listening.group(3)) if listening else 0
    mixes = [m.strip() for m in args.mixes.split(";") if m.strip()]
    try:
        base = Workload(
            target=f"127.0.0.1:{server.port}",
            operator_key=operator_key,
            submitter_key=submitter_key,
            kinds=(),
            entries=args.entries,
            seed=1,
            near=0.01,
            images=(),
            duration=args.duration,
            requests=10_000_000,
            concurrency=1,
            channels=4,
        )
        print(
            f"cores {os.cpu_count()}; list {args.entries:,} PDQ; one server process; "
            f"{args.processes} client process(es); {args.duration:.0f} s per row"
        )
        print(
            f"{'in flight':>9} {'kind':<7} {'load avg':>8} {'req/s':>8} {'p50 ms':>7} "
            f"{'p99 ms':>7} {'max ms':>7} {'server us/call':>14} {'client us/call':>14} "
            f"{'vs health':>9} {'full GCs':>8}  errors"
        )
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            rates: dict[str, float] = {}
            for mix in mixes:
                work = replace(base, kinds=parse_mix(mix), concurrency=concurrency)
                if args.warmup > 0:
                    run_clients(replace(work, duration=args.warmup), args.processes)
                load = os.getloadavg()[0]
                threads_before = thread_cpu(server.server_pid)
                gcs_before = full_collections(metrics_port)
                server_before, client_before = process_cpu(server.server_pid), own_cpu()
                tally = run_clients(work, args.processes)
                server_used = process_cpu(server.server_pid) - server_before
                client_used = own_cpu() - client_before
                threads_after = thread_cpu(server.server_pid)
                gcs = full_collections(metrics_port) - gcs_before
                kind = next(iter(tally.latencies))
                ms = np.array(tally.latencies[kind]) * 1e3
                calls = len(ms)
                rates[kind] = calls / tally.elapsed
                errors = sum(n for code, n in tally.codes[kind].items() if code != "OK")
                print(
                    f"{concurrency:>9} {kind:<7} {load:>8.2f} {rates[kind]:>8,.0f} "
                    f"{np.percentile(ms, 50):>7.2f} {np.percentile(ms, 99):>7.2f} "
                    f"{ms.max():>7.1f} {server_used / calls * 1e6:>14,.0f} "
                    f"{client_used / calls * 1e6:>14,.0f} "
                    f"{_versus(rates, kind):>9} {gcs:>8.0f}  {errors}",
                    flush=True,
                )
                if args.threads:
                    for name, after in sorted(threads_after.items(), key=lambda t: -t[1]):
                        used = after - threads_before.get(name, 0.0)
                        if used >= 0.01:
                            print(f"{'':>19} {name:<24} {used / calls * 1e6:>8,.0f} us/call")
            if "hash" in rates and "health" in rates:
                print(f"{'':>9} hash/health {rates['hash'] / rates['health']:.2f}", flush=True)
    finally:
        server.stop()
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


def _versus(rates: dict[str, float], kind: str) -> str:
    health = rates.get("health")
    return f"{rates[kind] / health:.2f}x" if health and kind != "health" else ""


if __name__ == "__main__":
    raise SystemExit(main())
