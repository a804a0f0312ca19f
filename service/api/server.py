"""Assemble and run the gRPC server explicitly: services, health, reflection, metrics.

One grpc.aio server per process: calls are coroutines on one event loop, so an open
stream or a waiting call costs no thread; store calls run in a pool of `--workers`
threads, image checks and batch searches in one of `--check-workers` shared fairly
between tenants (docs/ARCHITECTURE.md, "Concurrency")."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc
from prometheus_client import start_http_server

from service.allocator import Trimmer
from service.api.convert import check_hash_types
from service.api.interceptors import ErrorAndMetricsInterceptor
from service.api.introspection import HealthServicer, enable_reflection
from service.api.servicers import MatchServicer, ReviewServicer, SubmissionServicer
from service.api.tls import server_credentials
from service.config import Settings
from service.metrics import replica_registry
from service.runtime import Runtime

log = logging.getLogger("hashguard.server")

SERVICE_NAMES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in ("MatchService", "SubmissionService", "ReviewService")
)
# Room for the protobuf framing around an image of max_message_bytes.
_ENVELOPE_BYTES = 64 * 1024


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int


async def create_server(runtime: Runtime, settings: Settings) -> RunningServer:
    """Build and start the gRPC server on the running loop; returns it with the port
    actually bound. Refuses to start when the hash types and the proto enum disagree."""
    check_hash_types()
    limit = settings.max_message_bytes + _ENVELOPE_BYTES
    server = grpc.aio.server(
        migration_thread_pool=runtime.pool,
        interceptors=[ErrorAndMetricsInterceptor()],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # Off unless asked for, so a second server on a taken port fails loudly;
            # on, N processes share the port and the kernel spreads connections over
            # them: one Python process uses about one core (docs/BENCHMARKS.md).
            ("grpc.so_reuseport", settings.reuse_port),
        ],
    )
    pb_grpc.add_MatchServiceServicer_to_server(MatchServicer(runtime), server)
    pb_grpc.add_SubmissionServiceServicer_to_server(SubmissionServicer(runtime), server)
    pb_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(runtime), server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection((*SERVICE_NAMES, health.SERVICE_NAME), server)
    address = f"{_host(settings.host)}:{settings.port}"
    credentials = server_credentials(settings)
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError:  # grpc's way of saying the bind failed
        port = 0
    if port == 0:
        runtime.pool.shutdown(wait=False)
        runtime.check_pool.shutdown(wait=False)
        raise OSError(f"cannot listen for gRPC on {address}: the port is in use or not allowed")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, port)


def listening_line(settings: Settings, port: int, metrics_port: int, note: str = "") -> str:
    """What tools and tests wait for on stdout (tests/support.py reads the ports)."""
    return (
        f"hashguard listening on {settings.host}:{port} (gRPC) and "
        f"http://{settings.host}:{metrics_port}/metrics; data in {settings.data_path}{note}"
    )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


# Called by a serving process of `--processes N` once it serves: (gRPC port, port of its
# own /metrics on loopback, which the supervisor reads and sums).
OnReady = Callable[[int, int], None]


def serve(settings: Settings, runtime: Runtime, on_ready: OnReady | None = None) -> int:
    """Run until SIGTERM or SIGINT: then report NOT_SERVING, stop taking calls, let
    in-flight ones finish within the grace period, close the store and return 0.
    With `on_ready` (one of several processes), /metrics listens on a free loopback
    port for the supervisor instead of on --metrics-port, and `on_ready` is told."""
    host, port = (settings.host, settings.metrics_port) if on_ready is None else ("127.0.0.1", 0)
    try:
        metrics_server, _ = start_http_server(
            port, addr=host, registry=replica_registry(runtime.metrics)
        )
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    try:
        run_event_loop(
            _serve(settings, runtime, metrics_server.server_port, on_ready), settings.event_loop
        )
    finally:
        metrics_server.shutdown()
    runtime.store.close()
    if on_ready is None:
        print("hashguard stopped", flush=True)
    return 0


def run_event_loop(main: Coroutine[Any, Any, None], kind: str) -> None:
    """Run `main` on uvloop when asked for and installed, else on asyncio's own loop;
    grpc.aio runs on either (docs/BENCHMARKS.md compares them)."""
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: serving on asyncio's event loop")
        else:
            log.info("event loop: uvloop")
            uvloop.run(main)
            return
    log.info("event loop: asyncio")
    asyncio.run(main)


async def _serve(
    settings: Settings, runtime: Runtime, metrics_port: int, on_ready: OnReady | None
) -> None:
    running = await create_server(runtime, settings)
    if settings.tls_cert:
        mutual = " with client certificates required" if settings.tls_client_ca else ""
        log.info("the gRPC port serves TLS only%s", mutual)
    runtime.start_background()
    # Everything made so far lives as long as the process (modules, numba's and grpc's
    # objects, the list's structures): out of the garbage collector's sight, a full
    # collection walks only what calls made since, well under 1 ms instead of about
    # 0.2 s with every call in flight waiting (docs/BENCHMARKS.md, issue 19).
    gc.freeze()
    trimmer = Trimmer(settings.malloc_trim_interval)
    trimmer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if on_ready is not None:
        on_ready(running.port, metrics_port)
    else:
        print(listening_line(settings, running.port, metrics_port), flush=True)
    await stop.wait()
    log.info("shutting down: finishing in-flight calls for up to %ss", settings.grace_seconds)
    await running.health.enter_graceful_shutdown()
    await running.server.stop(settings.grace_seconds)
    runtime.check_pool.shutdown(wait=True, cancel_futures=True)
    runtime.pool.shutdown(wait=True, cancel_futures=True)
    trimmer.stop()
    runtime.stop_background()
