"""Flags and helpers every `hashguard` command group shares: the store a local command
opens, the server and TLS a remote command dials, the API key, proto enum names."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from service.client.tls import ClientTls
from service.errors import HashGuardError
from service.store import Store


def data_dir_flags(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --store of every command that opens the store itself."""
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("HASHGUARD_DATA_DIR", "./hashguard-data"),
        help="the server's data directory (env HASHGUARD_DATA_DIR)",
    )
    parser.add_argument(
        "--store",
        default=os.environ.get("HASHGUARD_STORE", "sqlite"),
        help="'sqlite' (in --data-dir) or the servers' postgresql:// URL (env HASHGUARD_STORE)",
    )


@contextmanager
def opened_store(args: argparse.Namespace, create: bool = False) -> Iterator[Store]:
    """The store the flags name, closed when the command is done with it. A SQLite
    --data-dir that holds no store yet is refused (a mistyped path must not quietly read
    an empty list), unless `create` (the commands that set a store up: `keys add`,
    `import`), which then say that they made a new one."""
    from service.store import open_store
    from service.store.sqlite import DB_FILENAME

    if args.store == "sqlite" and not (Path(args.data_dir) / DB_FILENAME).exists():
        if not create:
            raise HashGuardError(
                f"there is no HashGuard store in {args.data_dir!r} (no {DB_FILENAME}): check "
                "--data-dir (env HASHGUARD_DATA_DIR) or --store"
            )
        print(
            f"note: no HashGuard store in {args.data_dir!r} yet, so a new, empty one was "
            "made there; if you meant an existing store, check --data-dir",
            file=sys.stderr,
        )
    store = open_store(args.store, args.data_dir, pool_size=2)
    try:
        yield store
    finally:
        store.close()


# What a usage error may show of a value the user typed: never one that could be a
# secret (an API key, a case token, a password in a URL), only its length.
_SECRET_LIKE = re.compile(r"^(hg_|postgres(ql)?://)|^[A-Za-z0-9_\-]{20,}$")


def _redacted(value: str) -> str:
    if value.startswith("-"):
        name, has_value, _ = value.partition("=")
        return f"{name}=<value not shown>" if has_value else name
    if _SECRET_LIKE.search(value) or len(value) > 40:
        return f"<{len(value)} characters not shown>"
    return value


class Parser(argparse.ArgumentParser):
    """argparse that never echoes a value that could be a secret in a usage error: a
    mistyped flag (`--keys "$OPERATOR_KEY"`) used to print the whole key."""

    def error(self, message: str) -> NoReturn:
        unrecognised = "unrecognized arguments: "
        if message.startswith(unrecognised):
            words = message[len(unrecognised) :].split(" ")
            message = unrecognised + " ".join(_redacted(w) for w in words)
        else:
            message = re.sub(r"'([^']*)'", lambda m: f"'{_redacted(m.group(1))}'", message)
        super().error(message)


def connection_flags(parser: argparse.ArgumentParser) -> None:
    """--target and the TLS flags of every command that calls a server."""
    parser.add_argument("--target", default="127.0.0.1:50051", help="HOST:PORT of the service")
    tls = parser.add_argument_group("TLS (the server's --tls-cert)")
    tls.add_argument("--tls", action="store_true", help="use TLS, trusting the system's CAs")
    for flag, env, text in (
        ("--tls-ca", "HASHGUARD_TLS_CA", "PEM CA that signed the server's certificate"),
        ("--tls-cert", "HASHGUARD_CLIENT_CERT", "PEM client certificate, for mutual TLS"),
        ("--tls-key", "HASHGUARD_CLIENT_KEY", "PEM key of --tls-cert"),
        ("--tls-server-name", None, "name to check the server certificate against"),
    ):
        default = os.environ.get(env, "") if env else ""
        tls.add_argument(flag, default=default, help=text + (f" (env {env})" if env else ""))


def remote_flags(parser: argparse.ArgumentParser) -> None:
    """connection_flags and --key: a command that calls a server with an API key."""
    connection_flags(parser)
    parser.add_argument(
        "--key",
        default=os.environ.get("HASHGUARD_KEY"),
        help="API key (or env HASHGUARD_KEY, which keeps it out of shell history)",
    )


def client_tls(args: argparse.Namespace) -> ClientTls:
    return ClientTls(args.tls, args.tls_ca, args.tls_cert, args.tls_key, args.tls_server_name)


def api_key(args: argparse.Namespace) -> str:
    if not args.key:
        raise HashGuardError("--key (or env HASHGUARD_KEY) is required")
    return str(args.key)


def enum_name(enum: object, value: int) -> str:
    """`HASH_ALGORITHM_PDQ` -> `PDQ`."""
    full: str = enum.Name(value)  # type: ignore[attr-defined]
    return full.split("_", 2)[-1] if full.count("_") >= 2 else full
