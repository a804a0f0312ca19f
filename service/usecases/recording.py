"""Recording a check the policy answered REVIEW: disputed entries no longer ask for
review, and per tenant of the caller an earlier verdict on the same (entry, upload hash)
counts: a rejected pair does not queue again, a pending or confirmed one reuses its hit,
new pairs make a new hit owned by the caller's tenant."""

from __future__ import annotations

import time
import uuid

from service import metrics
from service.domain import AuditEvent, Decision, HitState, Match, Principal
from service.policy import asks_review, decide
from service.store import PriorHit, Store


def decide_and_record(
    store: Store, principal: Principal, content_ref: str, matches: list[Match], notes: list[str]
) -> tuple[Decision, str]:
    """The final decision and the hit id it queued or reused ("" for none)."""
    decision, disputed = decide(matches), set[int]()
    if decision is Decision.REVIEW:  # always so when called from Checks.record_check
        pending_ids = sorted({m.entry_id for m in matches if asks_review(m)})
        disputed = store.disputed_among(pending_ids)
        decision = decide(matches, disputed)
        if decision is Decision.ALLOW:
            metrics.DISPUTED_MATCHES.inc()
            notes.append("matched only entries that moderators of several platforms disputed")
    if decision is not Decision.REVIEW:
        return decision, ""
    # Pending entries, and vetted ones that may not block (policy.asks_review).
    pending = [m for m in matches if asks_review(m, disputed)]
    # Hits belong to the caller's tenant: another platform's verdicts neither hide
    # this upload from this platform's moderators nor reveal themselves to it.
    prior = store.prior_hits([(m.entry_id, m.query_value) for m in pending], principal.tenant)
    rejected = [m for m in pending if _state(prior, m) is HitState.REJECTED]
    # Confirmed here but not yet vetted (more tenants must confirm): keep reviewing.
    waiting = [m for m in pending if _state(prior, m) in (HitState.PENDING, HitState.CONFIRMED)]
    new = [m for m in pending if (m.entry_id, m.query_value) not in prior]
    if new:
        hit_id, now = str(uuid.uuid4()), time.time()
        entries = ",".join(str(m.entry_id) for m in new)
        audit = AuditEvent.by(principal, "hit.created", f"hit {hit_id}", now, f"entries {entries}")
        store.create_hit(hit_id, principal.name, content_ref, new, now, principal.tenant, audit)
        return Decision.REVIEW, hit_id
    if waiting:
        return Decision.REVIEW, prior[(waiting[0].entry_id, waiting[0].query_value)].hit_id
    if rejected:
        notes.append("matched only entries whose moderators rejected this same upload")
    return Decision.ALLOW, ""


def _state(prior: dict[tuple[int, bytes], PriorHit], match: Match) -> HitState | None:
    found = prior.get((match.entry_id, match.query_value))
    return None if found is None else found.state
