"""The gRPC server HashGuard shipped before grpc.aio (grpc.server with a pool of worker
threads, each call or open stream holding one), kept only so loadtests/server_variants.py
can measure the shipped asyncio server against it. servicers.py and interceptors.py are
the old service/api modules as they were; nothing in service/ imports this package."""

from __future__ import annotations

import multiprocessing
import os
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc

from loadtests.sync_server.interceptors import ErrorAndMetricsInterceptor
from loadtests.sync_server.servicers import MatchServicer, ReviewServicer, SubmissionServicer
from service.app import HashGuard
from service.config import Settings
from service.replica.snapshot import snapshot_dir
from service.store import open_store


def sync_process(data_dir: Path, port: int, ready: multiprocessing.Queue[int]) -> None:
    """One old-style server on `port` (shared with SO_REUSEPORT), limits off like the
    load generator's `hashguard serve`; puts its pid on `ready` once it serves."""
    settings = Settings(data_dir=str(data_dir), rate_limits="", max_cases_per_hour=0)
    store = open_store(settings.store, settings.data_path, settings.pool_size)
    app = HashGuard(store, settings, snapshot_dir(settings.data_path))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers),
        interceptors=[ErrorAndMetricsInterceptor()],
        options=[
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            ("grpc.so_reuseport", 1),
        ],
    )
    pb_grpc.add_MatchServiceServicer_to_server(MatchServicer(app), server)  # type: ignore[no-untyped-call]
    pb_grpc.add_SubmissionServiceServicer_to_server(SubmissionServicer(app), server)  # type: ignore[no-untyped-call]
    pb_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(app), server)  # type: ignore[no-untyped-call]
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.put(os.getpid())
    server.wait_for_termination()
