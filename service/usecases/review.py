"""Moderators review hits: list their tenant's hits, confirm or reject one. A
confirmation vets an entry once `--vet-tenants` distinct tenants confirmed it."""

from __future__ import annotations

import time

from service.domain import AuditEvent, Hit, HitState, Principal, Role, Verdict
from service.errors import InvalidInput, NotFound
from service.runtime import Runtime
from service.store import ReviewRules
from service.usecases.guards import MAX_ID, privileged, text
from service.usecases.paging import decode_page_token, encode_page_token, page_limit

MAX_NOTE = 4096


class Review:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def list_hits(
        self, principal: Principal, state: HitState | None, page_size: int, page_token: str
    ) -> tuple[list[Hit], str]:
        privileged(self.runtime, principal, Role.MODERATOR, "hits.list", "hits")
        self.runtime.limits.charge(principal)
        limit = page_limit(page_size)
        before = decode_page_token(page_token, "hits") if page_token else None
        rows = self.runtime.store.list_hits(state, limit + 1, before, tenant_scope(principal))
        next_token = encode_page_token(rows[limit - 1][0], "hits") if len(rows) > limit else ""
        hits = [hit for _, hit in rows[:limit]]
        self.runtime.store.append_audit(
            AuditEvent.by(
                principal,
                "hits.listed",
                "hits " + ",".join(h.hit_id for h in hits),
                time.time(),
                f"state={state.value if state else 'all'}",
            )
        )
        return hits, next_token

    def resolve_hit(
        self,
        principal: Principal,
        hit_id: str,
        verdict: Verdict,
        note: str,
        vet_partial: bool = False,
    ) -> tuple[Hit, list[int]]:
        """A moderator's verdict on one of its tenant's hits. A confirmation agrees to the
        entries matched by a whole part of the upload, and to those matched only by a
        part (a strip) when `vet_partial` says so (docs/SECURITY.md)."""
        target = f"hit {hit_id[:MAX_ID]}"
        privileged(self.runtime, principal, Role.MODERATOR, "hit.resolve", target)
        self.runtime.limits.charge(principal)
        if not hit_id:
            raise InvalidInput("hit_id is required")
        text("hit_id", hit_id, MAX_ID)
        text("note", note, MAX_NOTE)
        now = time.time()
        detail = verdict.value + (" +partial" if vet_partial else "")
        audit = AuditEvent.by(principal, "hit.resolved", f"hit {hit_id}", now, detail)
        settings = self.runtime.settings
        rules = ReviewRules(
            settings.vet_tenants,
            settings.dispute_tenants,
            settings.vet_partial_tenants,
            vet_partial and verdict is Verdict.CONFIRMED,
        )
        store = self.runtime.store
        try:
            hit, vetted = store.resolve_hit(
                hit_id, verdict, note, principal.name, now, tenant_scope(principal), rules, audit
            )
        except NotFound:
            # Another tenant's hit answers as an unknown one, but the audit log says which.
            found = store.get_hit(hit_id)
            why = f"tenant {found.tenant}'s hit" if found is not None else "no such hit"
            store.append_audit(AuditEvent.by(principal, "hit.resolve.denied", target, now, why))
            raise
        # This hit's distance for what it vetted (the store keeps the smallest of every
        # confirmation; the follower brings that here within a moment).
        agreed = {m.entry_id: m.distance for m in hit.matches if m.agreed}
        matcher = self.runtime.matcher
        self.runtime.follower.vet_local(
            {i: d for i, d in agreed.items() if i in vetted or matcher.is_vetted(i)}
        )
        return hit, vetted


def tenant_scope(principal: Principal) -> str | None:
    """The tenant whose hits the caller may see: its own, or every one for admins."""
    return None if principal.sees_every_tenant else principal.tenant
