"""`hashguard serve` (the gRPC service), `hashguard web` (the victims' pages and the
moderators' console) and `hashguard health` (the standard gRPC health check)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import grpc

from service.cli.common import client_tls, connection_flags
from service.client.tls import open_channel
from service.config import SETTINGS, WEB_SETTINGS, Setting, load_settings, load_web_settings
from service.signals.registry import SIGNALS


def add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the gRPC service")
    _setting_flags(serve, SETTINGS, quote_defaults=False)
    serve.set_defaults(handler=cmd_serve)


def add_web(commands: Any) -> None:
    web = commands.add_parser("web", help="serve the victims' pages and the moderators' console")
    _setting_flags(web, WEB_SETTINGS, quote_defaults=True)
    web.set_defaults(handler=cmd_web)


def _setting_flags(
    parser: argparse.ArgumentParser, table: Sequence[Setting], quote_defaults: bool
) -> None:
    """One flag per setting; unset flags stay None so env and defaults apply."""
    for setting in table:
        default = repr(setting.default) if quote_defaults else str(setting.default)
        parser.add_argument(
            setting.flag,
            type=setting.type,
            default=None,
            help=f"{setting.help} (env {setting.env}; default {default})",
        )


def add_health(commands: Any) -> None:
    health = commands.add_parser(
        "health", help="ask a server whether it is serving (exit 0) or not (exit 1)"
    )
    connection_flags(health)
    health.add_argument("--timeout", type=float, default=3.0, help="seconds to wait")
    health.set_defaults(handler=cmd_health)


def cmd_serve(args: argparse.Namespace) -> int:
    # The server's modules load only for `serve`: the other commands stay light.
    from service.allocator import cap_arenas
    from service.api.server import serve
    from service.api.supervisor import Supervisor, usable_cores
    from service.index.hamming import default_kernel, warm_up_kernels
    from service.replica.snapshot import snapshot_dir
    from service.runtime import Runtime, load_list
    from service.store import open_store
    from service.store.sqlite import DB_FILENAME

    settings = load_settings({s.name: getattr(args, s.name) for s in SETTINGS})
    cap_arenas(settings.malloc_arena_max)  # before any thread starts
    processes = settings.processes or usable_cores()
    log = logging.getLogger("hashguard")
    if settings.store == "sqlite" and not (settings.data_path / DB_FILENAME).exists():
        log.warning(
            "no store in %s yet: starting with a new, empty one there (if you meant an "
            "existing store, stop and check --data-dir)",
            settings.data_path,
        )
    if default_kernel() == "compiled":
        # Compiling the search loops takes seconds on a first start (then numba's cache
        # makes it quick); timed apart so the load time below is the list's own.
        log.info("index search loops ready in %.2fs", warm_up_kernels())
    started = time.perf_counter()
    store = open_store(settings.store, settings.data_path, settings.pool_size)
    try:
        # Loaded once, before any fork: with --processes N every process shares it.
        loaded = load_list(store, settings, snapshot_dir(settings.data_path))
        runtime = None
        if processes == 1:
            runtime = Runtime(store, settings, snapshot_dir(settings.data_path), loaded=loaded)
        has_keys = store.count_api_keys() > 0
    except BaseException:
        store.close()
        raise
    sizes = ", ".join(f"{s.name} {loaded.matcher.size(s)}" for s in SIGNALS)
    log.info(
        "loaded the list in %.2fs from the %s (%s); applied changes up to %d",
        time.perf_counter() - started,
        loaded.source,
        sizes,
        loaded.seq if runtime is None else runtime.follower.applied_seq,
    )
    if not has_keys:
        log.warning(
            "no API keys yet: every call but GetCase/WithdrawCase will be refused; create "
            "one with: hashguard keys add --data-dir %s --role operator",
            settings.data_dir,
        )
    if runtime is not None:
        return serve(settings, runtime)
    store.close()  # each serving process opens its own connections
    log.info("starting %d serving processes on one port", processes)
    return Supervisor(settings, loaded, processes).run()


def cmd_web(args: argparse.Namespace) -> int:
    from service.web.server import serve

    return serve(load_web_settings({s.name: getattr(args, s.name) for s in WEB_SETTINGS}))


def cmd_health(args: argparse.Namespace) -> int:
    """The standard gRPC health check, for container health checks without extra tools."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with open_channel(args.target, client_tls(args)) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types miss Check
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"not serving: {exc.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(status)
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1
