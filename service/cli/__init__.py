"""The `hashguard` command. Its groups live in modules of their own: serve.py (serve, web,
health), victim.py (hash, submit, case), operator.py (check, hits), keys.py (keys, audit,
disputed) and lists.py (import, export); common.py holds the flags they share."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import grpc
from hashguard.v1 import hashguard_pb2 as pb

from service.cli import keys, lists, operator, serve, victim
from service.cli.common import Parser
from service.errors import HashGuardError
from service.signals.registry import REGISTRY

EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        REGISTRY.check_enum(pb.HashAlgorithm.keys())  # or say what is missing, and stop
        return int(args.handler(args) or 0)
    except HashGuardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="hashguard",
        description="Hash-matching service that stops re-uploads of intimate images "
        "shared without consent.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In the order `hashguard --help` lists them.
    serve.add_serve(commands)
    serve.add_web(commands)
    serve.add_health(commands)
    keys.add_keys(commands)
    victim.add_hash(commands)
    victim.add_submit(commands)
    operator.add_check(commands)
    victim.add_case(commands)
    operator.add_hits(commands)
    lists.add_import(commands)
    lists.add_export(commands)
    keys.add_audit(commands)
    keys.add_disputed(commands)
    return parser
