"""Checks every use case shares before it touches the store: string fields the store can
hold and errors may quote, and role checks that leave an audit row when they refuse."""

from __future__ import annotations

import time

from service.access.auth import require_role
from service.domain import AuditEvent, Principal, Role
from service.errors import InvalidInput, PermissionDenied
from service.runtime import Runtime

MAX_ID = 128  # case ids, case tokens and hit ids this server issues are far shorter


def text(name: str, value: str, most: int) -> None:
    """Refuse a string field the store could not hold or should not echo: longer than
    `most` characters, or with a NUL character (PostgreSQL's text cannot hold one; it
    failed the call, a REVIEW among them, with INTERNAL before this check)."""
    if len(value) > most:
        raise InvalidInput(f"{name} is longer than {most} characters")
    if "\x00" in value:
        raise InvalidInput(f"{name} must not contain NUL characters (\\x00)")


def privileged(
    runtime: Runtime, principal: Principal, role: Role, action: str, target: str
) -> None:
    """`require_role` for the review and admin calls, with an audit row
    (`<action>.denied`) when the key's role may not make the call; the denied call still
    takes a rate-limit token first, so denials cannot flood the log faster than the
    key's rate."""
    try:
        require_role(principal, role)
    except PermissionDenied as exc:
        runtime.limits.charge(principal)
        runtime.store.append_audit(
            AuditEvent.by(principal, f"{action}.denied", target, time.time(), str(exc))
        )
        raise
