"""`hashguard keys add|list|revoke|rotate`, `hashguard audit` and `hashguard disputed`: the
commands for whoever runs the service (docs/SECURITY.md). The first two read and write
the store directly; `disputed` asks a server with an admin key."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from service.access.keys import create_api_key, local_actor, revoke_api_key, rotate_api_key
from service.cli.common import (
    api_key,
    client_tls,
    data_dir_flags,
    enum_name,
    opened_store,
    remote_flags,
)
from service.domain import DEFAULT_TENANT, Role
from service.errors import InvalidInput
from service.store import AuditQuery


def add_keys(commands: Any) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True, metavar="ACTION"
    )
    add = keys.add_parser("add", help="create an API key; prints it once, on the last line")
    data_dir_flags(add)
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--name", help="a unique name for the key (default: role-<id>)")
    add.add_argument(
        "--tenant",
        default=DEFAULT_TENANT,
        help=f"the platform the key acts for (default {DEFAULT_TENANT!r}); moderators see "
        "only their tenant's hits",
    )
    for flag, server_flag in (
        ("cases", "--max-cases-per-hour"),
        ("hashes", "--max-hashes-per-hour"),
    ):
        add.add_argument(
            f"--{flag}-per-hour",
            type=int,
            help=f"this key's own hourly {flag} quota instead of the server's {server_flag} "
            "(0: no cap); give the web tier's submitter key headroom this way",
        )
    add.set_defaults(handler=cmd_keys_add)
    list_ = keys.add_parser("list", help="list API keys (names, roles, tenants; no secrets)")
    data_dir_flags(list_)
    list_.set_defaults(handler=cmd_keys_list)
    revoke = keys.add_parser(
        "revoke", help="revoke a key; running servers refuse it within --key-cache-seconds"
    )
    revoke.add_argument("name")
    data_dir_flags(revoke)
    revoke.set_defaults(handler=cmd_keys_revoke)
    rotate = keys.add_parser(
        "rotate",
        help="give a key a new secret (printed once, on the last line); the old one stops "
        "within --key-cache-seconds",
    )
    rotate.add_argument("name")
    data_dir_flags(rotate)
    rotate.set_defaults(handler=cmd_keys_rotate)


def add_audit(commands: Any) -> None:
    audit = commands.add_parser("audit", help="read the audit log, newest first")
    data_dir_flags(audit)
    audit.add_argument("--actor", help="only this key name (or cli:<user>, case-token)")
    audit.add_argument("--action", help="only this action, or a prefix ending in '.' (hit.)")
    audit.add_argument(
        "--since", help="only records from this time on: ISO 8601 (UTC if no zone) or Unix seconds"
    )
    audit.add_argument("--limit", type=int, default=100, help="at most this many records")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.set_defaults(handler=cmd_audit)


def add_disputed(commands: Any) -> None:
    disputed = commands.add_parser(
        "disputed", help="list entries several tenants' moderators rejected (admin key)"
    )
    disputed.add_argument("--limit", type=int, default=50)
    remote_flags(disputed)
    disputed.set_defaults(handler=cmd_disputed)


def cmd_keys_add(args: argparse.Namespace) -> int:
    with opened_store(args, create=True) as store:
        key = create_api_key(
            store,
            Role(args.role),
            args.name,
            args.tenant,
            args.cases_per_hour,
            args.hashes_per_hour,
        )
    return _show_new_key(f"created {args.role} key for tenant {args.tenant!r}", key)


def cmd_keys_list(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        keys = store.list_api_keys()
        store.append_audit(local_actor("keys.listed", f"{len(keys)} keys"))
    print("name\trole\ttenant\tkey id\tcreated\tstatus\tquotas")
    for k in keys:
        status = f"revoked {_when(k.revoked_at)}" if k.revoked_at is not None else "active"
        if k.rotated_at is not None and k.revoked_at is None:
            status += f" (rotated {_when(k.rotated_at)})"
        quotas = _quotas(k.cases_per_hour, k.hashes_per_hour)
        print(
            f"{k.name}\t{k.role.value}\t{k.tenant}\t{k.key_id}\t{_when(k.created_at)}\t"
            f"{status}\t{quotas}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        record = revoke_api_key(store, args.name)
    print(f"revoked {record.role.value} key {record.name!r} (tenant {record.tenant})")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    with opened_store(args) as store:
        key = rotate_api_key(store, args.name)
    return _show_new_key(
        f"rotated key {args.name!r}; running servers refuse the old secret within their "
        "--key-cache-seconds",
        key,
    )


def _show_new_key(what: str, key: str) -> int:
    """The key on stdout's last line, the words about it on stderr."""
    print(f"{what}; the key is shown only now, store it safely:", file=sys.stderr)
    print(key)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1")
    query = AuditQuery(args.actor, args.action, _parse_since(args.since), args.limit)
    with opened_store(args) as store:
        events = store.read_audit(query)
        store.append_audit(local_actor("audit.read", f"{len(events)} records"))
    for e in events:
        if args.json:
            print(json.dumps(asdict(e)))
        else:
            print(
                f"{e.seq}\t{_when(e.at)}\t{e.actor}\t{e.role}\t{e.tenant or '-'}\t{e.action}"
                f"\t{e.target}\t{e.detail}"
            )
    if not events:
        print("no audit records match", file=sys.stderr)
    return 0


def cmd_disputed(args: argparse.Namespace) -> int:
    from hashguard.v1 import hashguard_pb2 as pb

    from service.client import Client

    with Client(args.target, api_key(args), tls=client_tls(args)) as client:
        reply = client.review.ListDisputedEntries(
            pb.ListDisputedEntriesRequest(page_size=args.limit),
            metadata=client.metadata,
            timeout=client.timeout,
        )
    for e in reply.entries:
        print(
            f"entry {e.entry_id}  {enum_name(pb.HashAlgorithm, e.algorithm)}  "
            f"{enum_name(pb.EntryState, e.state)}  "
            f"disputed {e.disputed_at.ToDatetime():%Y-%m-%d %H:%M}"
            f"  rejected by {e.rejecting_tenants} tenants, confirmed by {e.confirming_tenants}"
        )
    if not reply.entries:
        print("no disputed entries", file=sys.stderr)
    return 0


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since {text!r} is neither ISO 8601 (2026-11-25T17:00) nor Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _quotas(cases: int | None, hashes: int | None) -> str:
    """A key's own hourly quotas, or "server" where it uses the server's settings."""
    shown = [f"{n}/h {what}" for n, what in ((cases, "cases"), (hashes, "hashes")) if n is not None]
    return ", ".join(shown) or "server"
