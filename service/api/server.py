"""Assemble and run the gRPC server explicitly: services, health, reflection, metrics."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc
from prometheus_client import start_http_server

from service.allocator import Trimmer
from service.api.interceptors import ErrorAndMetricsInterceptor
from service.api.servicers import MatchServicer, ReviewServicer, SubmissionServicer
from service.api.tls import server_credentials
from service.app import HashGuard
from service.config import Settings

log = logging.getLogger("hashguard.server")

SERVICE_NAMES = tuple(
    pb.DESCRIPTOR.services_by_name[name].full_name
    for name in ("MatchService", "SubmissionService", "ReviewService")
)
# Room for the protobuf framing around an image of max_message_bytes.
_ENVELOPE_BYTES = 64 * 1024


@dataclass
class RunningServer:
    server: grpc.Server
    health: health.HealthServicer
    port: int


def create_server(app: HashGuard, settings: Settings) -> RunningServer:
    """Build and start the gRPC server; returns it with the port actually bound."""
    limit = settings.max_message_bytes + _ENVELOPE_BYTES
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="grpc"),
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
    pb_grpc.add_MatchServiceServicer_to_server(MatchServicer(app), server)
    pb_grpc.add_SubmissionServiceServicer_to_server(SubmissionServicer(app), server)
    pb_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(app), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
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
        raise OSError(f"cannot listen for gRPC on {address}: the port is in use or not allowed")
    server.start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, port)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def serve(settings: Settings, app: HashGuard) -> int:
    """Run until SIGTERM or SIGINT: then report NOT_SERVING, stop taking calls, let
    in-flight ones finish within the grace period, close the store and return 0."""
    try:
        metrics_server, _ = start_http_server(settings.metrics_port, addr=settings.host)
    except OSError as exc:
        raise OSError(
            f"cannot serve metrics on {settings.host}:{settings.metrics_port}: {exc.strerror}"
        ) from None
    try:
        running = create_server(app, settings)
    except OSError:
        metrics_server.shutdown()
        raise
    metrics_port = metrics_server.server_port
    if settings.tls_cert:
        mutual = " with client certificates required" if settings.tls_client_ca else ""
        log.info("the gRPC port serves TLS only%s", mutual)
    app.start_background()
    trimmer = Trimmer(settings.malloc_trim_interval)
    trimmer.start()
    print(
        f"hashguard listening on {settings.host}:{running.port} (gRPC) and "
        f"http://{settings.host}:{metrics_port}/metrics; data in {settings.data_path}",
        flush=True,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    log.info("shutting down: finishing in-flight calls for up to %ss", settings.grace_seconds)
    running.health.enter_graceful_shutdown()
    running.server.stop(settings.grace_seconds).wait()
    metrics_server.shutdown()
    trimmer.stop()
    app.stop_background()
    app.store.close()
    print("hashguard stopped", flush=True)
    return 0
