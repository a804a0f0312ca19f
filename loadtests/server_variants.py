"""The shipped server run several ways, driven by the same load (loadtests/load.py), one
after the other in one run:

  stock [N [FLAGS]]  `hashguard serve`: grpc.aio, hash checks on the event loop, store
             calls and image checks in the thread pool; N processes share the port with
             --reuse-port 1 (default 1); FLAGS go to `hashguard serve`, e.g.
             "stock 1 --key-cache-seconds 0" reads the API key from the store every call,
             "stock 1 --event-loop asyncio" serves on asyncio's own loop

(The threaded grpc.server shipped before, once the `sync` variant here, is retired; its
figures stay in docs/CHANGELOG.md.)

Each variant gets the same seeded data directory, request mix, client processes and
duration; the table shows throughput, latency and CPU per request of the servers (all
their processes together) and of the load generator's client processes, which share
the machine's cores with them. --mixes "batch=1;stream=1;hash=1" drives each variant
with each mix in turn (one server start per variant), so kinds of call compare within
one run; CPU is per check there (each upload of a batch is one), and checks/s counts
uploads while req/s counts calls. Run:
  python -m loadtests.server_variants --entries 1000000 --mix hash=1 --concurrency 8 \\
      --variants "stock,stock 2"
  python -m loadtests.server_variants --entries 1000000 --concurrency 8 \\
      --mixes "batch=1;stream=1;hash=1" --batch-size 32 --variants "stock,stock 2"
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
    Tally,
    Workload,
    own_cpu,
    parse_mix,
    process_cpu,
    report,
    run_clients,
    sample_images,
    seed_data_dir,
    start_servers,
)


def measure(work: Workload, pids: Sequence[int], processes: int) -> tuple[Tally, float, float]:
    """The tally, the servers' CPU seconds and the client processes' CPU seconds."""
    server_before, client_before = sum(process_cpu(p) for p in pids), own_cpu()
    tally = run_clients(work, processes)
    client = own_cpu() - client_before
    return tally, sum(process_cpu(p) for p in pids) - server_before, client


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    parser.add_argument("--mix", default="hash=1")
    parser.add_argument("--mixes", help="several mixes separated by ';', each run per variant")
    parser.add_argument("--batch-size", type=int, default=32, help="uploads per batch call")
    parser.add_argument("--image-mp", type=float, default=0.3)
    parser.add_argument("--variants", default="stock,stock 2")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hashguard-variants-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        operator, submitter = seed_data_dir(data_dir, args.entries, seed=1)
        mixes = [m.strip() for m in (args.mixes or args.mix).split(";") if m.strip()]
        kinds_of = {mix: parse_mix(mix) for mix in mixes}
        wanted = {kind for kinds in kinds_of.values() for kind in kinds}
        images = sample_images(args.image_mp) if "image" in wanted else ()
        print(
            f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; "
            f"mixes {'; '.join(mixes)} (batches of {args.batch_size}); "
            f"{args.concurrency} in flight from {args.processes} client processes; "
            f"{args.entries:,} PDQ entries; {args.duration:.0f} s per variant and mix\n"
        )
        rows = []
        for variant in (v.strip() for v in args.variants.split(",")):
            name, *rest = variant.split()
            count = int(rest[0]) if rest else 1
            serve_args = " ".join(rest[1:])  # "stock 1 --key-cache-seconds 0"
            if name != "stock":
                parser.error(f"unknown variant {variant!r}: stock [N [FLAGS]]")
            servers = start_servers(data_dir, count, serve_args, None)
            port, pids = servers[0].port, [s.server_pid for s in servers]
            runs = []
            try:
                for mix in mixes:
                    work = Workload(
                        target=f"127.0.0.1:{port}",
                        operator_key=operator,
                        submitter_key=submitter,
                        kinds=kinds_of[mix],
                        entries=args.entries,
                        seed=1,
                        near=0.01,
                        images=images,
                        duration=args.warmup,
                        requests=10**9,
                        concurrency=args.concurrency,
                        channels=4,
                        batch_size=args.batch_size,
                    )
                    run_clients(work, args.processes)  # warm-up: connections, caches
                    work = replace(work, duration=args.duration)
                    runs.append((mix, measure(work, pids, args.processes)))
            finally:
                for server in servers:
                    server.stop()
            for mix, (tally, server_cpu, client_cpu) in runs:
                served = max(tally.units(), 1)
                label = f"{variant} {mix}" if len(mixes) > 1 else variant
                rows.append((label, tally, server_cpu / served * 1e6, client_cpu / served * 1e6))
            time.sleep(1)
        width = max(len(row[0]) for row in rows)
        head = report(rows[0][1])[0]
        print(f"{'variant':<{width}} {'server CPU':>13} {'client CPU':>13} {'checks/s':>8}  {head}")
        for variant, tally, server_us, client_us in rows:
            lines = report(tally)
            body = (
                lines[1]
                if len(tally.latencies) == 1
                else next(line for line in lines if line.startswith("all "))
            )
            rate = tally.units() / tally.elapsed
            print(
                f"{variant:<{width}} {server_us:>7,.0f} us/chk {client_us:>7,.0f} us/chk "
                f"{rate:>8,.0f}  {body}"
            )
        print(f"load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
