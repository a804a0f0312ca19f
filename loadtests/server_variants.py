"""Is Python's gRPC server the limit? The same app and servicers served several ways, driven
by the same load (loadtests/load.py), one after the other in one run:

  stock [T]    `hashguard serve` as shipped (one process, sync grpc.server, 16 threads, or
               T threads)
  reuseport N  N processes, each a full server (own copy of the list) bound to one port
               with SO_REUSEPORT, so the kernel spreads connections over them
  aio          one process, grpc.aio server running the same sync servicers in its
               migration thread pool (without the sync interceptor, which grpc.aio cannot
               run: no error mapping or request metrics, so it is flattered a little)
  aio-native N one process (or N sharing the port) running grpc.aio with CheckUpload and
               CheckUploads as coroutines: a hash check runs on the event loop, an image
               check in a thread (MatchService only; no interceptor, rate limits off)

Each variant gets the same seeded data directory, request mix, client processes and
duration; the table shows throughput, latency and server CPU per request (all server
processes together). Run:
  python -m loadtests.server_variants --entries 1000000 --mix hash=1 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import replace
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc

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
from service.api.interceptors import ErrorAndMetricsInterceptor
from service.api.servicers import MatchServicer, ReviewServicer, SubmissionServicer, caller
from service.app import HashGuard
from service.config import Settings
from service.replica.snapshot import snapshot_dir
from service.store.factory import open_store

_OPTIONS = [("grpc.max_receive_message_length", 32 * 1024 * 1024)]


def _app(data_dir: Path) -> HashGuard:
    settings = Settings(data_dir=str(data_dir), rate_limits="", max_cases_per_hour=0)
    store = open_store(settings.store, settings.data_path, settings.pool_size)
    return HashGuard(store, settings, snapshot_dir(settings.data_path))


def _add_services(app: HashGuard, server: grpc.Server | grpc.aio.Server) -> None:
    pb_grpc.add_MatchServiceServicer_to_server(MatchServicer(app), server)  # type: ignore[no-untyped-call]
    pb_grpc.add_SubmissionServiceServicer_to_server(SubmissionServicer(app), server)  # type: ignore[no-untyped-call]
    pb_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(app), server)  # type: ignore[no-untyped-call]
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)


def reuseport_process(data_dir: Path, port: int, ready: multiprocessing.Queue[int]) -> None:
    """One of N full servers sharing `port` (the list loaded in each process)."""
    app = _app(data_dir)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=Settings().workers),
        interceptors=[ErrorAndMetricsInterceptor()],
        options=[*_OPTIONS, ("grpc.so_reuseport", 1)],
    )
    _add_services(app, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.put(os.getpid())
    server.wait_for_termination()


def aio_process(data_dir: Path, port: int, ready: multiprocessing.Queue[int]) -> None:
    async def run() -> None:
        app = _app(data_dir)
        server = grpc.aio.server(
            migration_thread_pool=futures.ThreadPoolExecutor(max_workers=Settings().workers),
            options=_OPTIONS,
        )
        _add_services(app, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.put(os.getpid())
        await server.wait_for_termination()

    asyncio.run(run())


class _NativeAioMatch(pb_grpc.MatchServiceServicer):
    """CheckUpload as a coroutine: a hash check runs on the event loop itself (no thread
    hand-off), an image check in a thread (its decode releases the GIL)."""

    def __init__(self, app: HashGuard, pool: futures.ThreadPoolExecutor) -> None:
        self.sync = MatchServicer(app)
        self.app = app
        self.pool = pool

    async def CheckUpload(self, request, context):  # type: ignore[no-untyped-def]
        principal = caller(self.app, context)
        if request.image:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, self.sync._check, principal, request)
        return self.sync._check(principal, request)

    async def CheckUploads(self, request_iterator, context):  # type: ignore[no-untyped-def]
        principal = caller(self.app, context)
        async for request in request_iterator:
            yield self.sync._check(principal, request)


def aio_native_process(data_dir: Path, port: int, ready: multiprocessing.Queue[int]) -> None:
    async def run() -> None:
        app = _app(data_dir)
        pool = futures.ThreadPoolExecutor(max_workers=Settings().workers)
        server = grpc.aio.server(
            migration_thread_pool=pool, options=[*_OPTIONS, ("grpc.so_reuseport", 1)]
        )
        pb_grpc.add_MatchServiceServicer_to_server(_NativeAioMatch(app, pool), server)  # type: ignore[no-untyped-call]
        servicer = health.HealthServicer()
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.put(os.getpid())
        await server.wait_for_termination()

    asyncio.run(run())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(work: Workload, pids: Sequence[int], processes: int) -> tuple[Tally, float]:
    cpu_before = sum(process_cpu(p) for p in pids)
    tally = run_clients(work, processes)
    return tally, sum(process_cpu(p) for p in pids) - cpu_before


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    parser.add_argument("--mix", default="hash=1")
    parser.add_argument("--image-mp", type=float, default=0.3)
    parser.add_argument("--variants", default="stock,reuseport 1,reuseport 2,aio")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hashguard-variants-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        operator, submitter = seed_data_dir(data_dir, args.entries, seed=1)
        kinds = parse_mix(args.mix)
        images = sample_images(args.image_mp) if "image" in kinds else ()
        print(
            f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; mix {args.mix}; "
            f"{args.concurrency} in flight from {args.processes} client processes; "
            f"{args.entries:,} PDQ entries; {args.duration:.0f} s per variant\n"
        )
        rows = []
        for variant in (v.strip() for v in args.variants.split(",")):
            ctx = multiprocessing.get_context("spawn")
            ready: multiprocessing.Queue[int] = ctx.Queue()
            children: list[multiprocessing.process.BaseProcess] = []
            stock: Server | None = None
            if variant.startswith("stock"):
                threads = variant.split()[1:]  # "stock 4": --workers 4
                stock = Server(data_dir, ["--workers", *threads] if threads else []).start()
                port, pids = stock.port, [stock.server_pid]
            else:
                port = _free_port()
                count = int(variant.split()[1]) if len(variant.split()) > 1 else 1
                target = {
                    "reuseport": reuseport_process,
                    "aio": aio_process,
                    "aio-native": aio_native_process,
                }[variant.split()[0]]
                children = [
                    ctx.Process(target=target, args=(data_dir, port, ready)) for _ in range(count)
                ]
                for child in children:
                    child.start()
                pids = [ready.get(timeout=600) for _ in children]
            try:
                work = Workload(
                    target=f"127.0.0.1:{port}",
                    operator_key=operator,
                    submitter_key=submitter,
                    kinds=kinds,
                    entries=args.entries,
                    seed=1,
                    near=0.01,
                    images=images,
                    duration=args.warmup,
                    requests=10**9,
                    concurrency=args.concurrency,
                    channels=4,
                )
                run_clients(work, args.processes)  # warm-up: connections, caches
                tally, cpu = measure(replace(work, duration=args.duration), pids, args.processes)
            finally:
                if stock is not None:
                    stock.stop()
                for pid in pids if stock is None else []:
                    os.kill(pid, signal.SIGTERM)
                for child in children:
                    child.join(timeout=30)
                    if child.is_alive():
                        child.kill()
            served = sum(len(v) for v in tally.latencies.values())
            rows.append((variant, tally, cpu / max(served, 1) * 1e6))
            time.sleep(1)
        print(f"{'variant':<12} {'server CPU':>13}  {report(rows[0][1])[0]}")
        for variant, tally, cpu_us in rows:
            lines = report(tally)
            body = (
                lines[1]
                if len(tally.latencies) == 1
                else next(line for line in lines if line.startswith("all "))
            )
            print(f"{variant:<12} {cpu_us:>7,.0f} us/req  {body}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
