"""Making, revoking and rotating API keys: the local `hashguard keys` commands, run
against the store directly by whoever holds the data directory or the database URL.

Every change is written to the audit log in the same transaction, as `cli:<user>`.
Revocation and rotation take effect on running servers within --key-cache-seconds: each
call checks its key against the key's row as read from the store at most that long ago
(service.access.principals).
"""

from __future__ import annotations

import getpass
import re
import time

from service.access.auth import digest, new_api_key, secret_for
from service.domain import DEFAULT_TENANT, AuditEvent, Role
from service.errors import InvalidInput, NotFound
from service.store import ApiKeyRecord, KeyStore

_TENANT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def local_actor(action: str, target: str, detail: str = "") -> AuditEvent:
    """The audit record of a command run on the server's machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid, e.g. in a container
        user = "unknown"
    return AuditEvent(f"cli:{user}", "local", "", action, target, time.time(), detail)


def validate_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise InvalidInput(
            f"tenant {tenant!r} must be 1-63 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return tenant


def create_api_key(
    store: KeyStore,
    role: Role,
    name: str | None = None,
    tenant: str = DEFAULT_TENANT,
    cases_per_hour: int | None = None,
    hashes_per_hour: int | None = None,
) -> str:
    """Store a new key's digest and return the key (the only time it is seen). The
    quotas, when given, replace the server's hourly submission quotas for this key."""
    for flag, value in (("cases-per-hour", cases_per_hour), ("hashes-per-hour", hashes_per_hour)):
        if value is not None and not 0 <= value <= 10**9:
            raise InvalidInput(f"--{flag} must be 0..1000000000 (0: no cap), got {value}")
    key_id, key = new_api_key()
    name = name or f"{role.value}-{key_id}"
    record = ApiKeyRecord(
        key_id,
        name,
        role,
        digest(key),
        time.time(),
        tenant=validate_tenant(tenant),
        cases_per_hour=cases_per_hour,
        hashes_per_hour=hashes_per_hour,
    )
    detail = f"role={role.value} tenant={tenant}" + "".join(
        f" {label}={value}"
        for label, value in (
            ("cases_per_hour", cases_per_hour),
            ("hashes_per_hour", hashes_per_hour),
        )
        if value is not None
    )
    store.add_api_key(record, local_actor("key.added", name, detail))
    return key


def revoke_api_key(store: KeyStore, name: str) -> ApiKeyRecord:
    return store.revoke_api_key(name, time.time(), local_actor("key.revoked", name))


def rotate_api_key(store: KeyStore, name: str) -> str:
    """Give the key `name` a new secret; returns the new key. The new one works at once;
    running servers refuse the old one within --key-cache-seconds."""
    record = next((k for k in store.list_api_keys() if k.name == name), None)
    if record is None:
        raise NotFound(f"no API key named {name!r}; `hashguard keys list` shows them")
    key = secret_for(record.key_id)
    store.rotate_api_key(name, digest(key), time.time(), local_actor("key.rotated", name))
    return key
