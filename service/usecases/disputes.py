"""Admins list disputed entries: entries moderators of several tenants rejected, the
candidates for withdrawal by an admin's own investigation (docs/SECURITY.md)."""

from __future__ import annotations

import time

from service.domain import AuditEvent, DisputedEntry, Principal, Role
from service.runtime import Runtime
from service.usecases.guards import privileged
from service.usecases.paging import decode_page_token, encode_page_token, page_limit


class Disputes:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def list_disputed(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[DisputedEntry], str]:
        privileged(self.runtime, principal, Role.ADMIN, "disputed.list", "entries")
        self.runtime.limits.charge(principal)
        limit = page_limit(page_size)
        after = decode_page_token(page_token, "disputed") if page_token else 0
        rows = self.runtime.store.list_disputed(limit + 1, after)
        entries = rows[:limit]
        next_token = (
            encode_page_token(entries[-1].entry_id, "disputed") if len(rows) > limit else ""
        )
        self.runtime.store.append_audit(
            AuditEvent.by(
                principal,
                "disputed.listed",
                "entries " + ",".join(str(e.entry_id) for e in entries),
                time.time(),
            )
        )
        return entries, next_token
