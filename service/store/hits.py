"""Hits and their review: the store's `HitStore` and `DisputeStore` nouns. A hit records
an upload that matched list entries; moderators' verdicts vet or dispute those entries."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import final

from service.domain import (
    DEFAULT_TENANT,
    AuditEvent,
    DisputedEntry,
    Hit,
    HitState,
    Match,
    Verdict,
)
from service.store.checks import not_negative, positive, require
from service.store.records import DEFAULT_RULES, NewHit, PriorHit, Resolution, ReviewRules


class HitStore(ABC):
    @final
    def prior_hits(
        self, pairs: Sequence[tuple[int, bytes]], tenant: str | None = None
    ) -> dict[tuple[int, bytes], PriorHit]:
        """For (entry id, upload hash) pairs, the latest hit that recorded each pair
        (of `tenant`'s hits only, when given)."""
        return self._prior_hits(pairs, tenant) if pairs else {}

    @final
    def create_hit(
        self,
        hit_id: str,
        operator: str,
        content_ref: str,
        matches: Sequence[Match],
        now: float,
        tenant: str = DEFAULT_TENANT,
        audit: AuditEvent | None = None,
    ) -> None:
        require(bool(hit_id), "a hit needs an id")
        require(bool(matches), f"hit {hit_id} has no matches")
        self._create_hit(NewHit(hit_id, operator, content_ref, tuple(matches), now, tenant), audit)

    @final
    def get_hit(self, hit_id: str) -> Hit | None:
        return self._get_hit(hit_id)

    @final
    def list_hits(
        self,
        state: HitState | None,
        limit: int,
        before_seq: int | None,
        tenant: str | None = None,
    ) -> list[tuple[int, Hit]]:
        """Newest first, as (seq, hit) pairs; `before_seq` continues a listing;
        `tenant` keeps only that tenant's hits."""
        not_negative("the hit listing's limit", limit)
        return self._list_hits(state, limit, before_seq, tenant)

    @final
    def resolve_hit(
        self,
        hit_id: str,
        verdict: Verdict,
        note: str,
        resolved_by: str,
        now: float,
        tenant: str | None = None,
        rules: ReviewRules = DEFAULT_RULES,
        audit: AuditEvent | None = None,
    ) -> tuple[Hit, list[int]]:
        """Record the verdict. A confirmation agrees to the hit's entries matched by a
        whole part of the upload, and to those matched by a partial one only with
        `rules.vet_partial`; it vets the pending entries that now have agreed
        confirmations through whole parts from `rules.vet_tenants` distinct tenants, or
        through any part from `rules.vet_partial_tenants` tenants; a rejection
        disputes those with rejected hits from `rules.dispute_tenants` tenants. Returns
        the resolved hit and the ids of the entries it vetted, ascending. Raises NotFound
        (also for another tenant's hit when `tenant` is given), or Conflict when the hit
        is no longer pending."""
        positive("vet_tenants", rules.vet_tenants)
        positive("vet_partial_tenants", rules.vet_partial_tenants)
        positive("dispute_tenants", rules.dispute_tenants)
        resolution = Resolution(hit_id, verdict, note, resolved_by, now, tenant, rules)
        return self._resolve_hit(resolution, audit)

    @final
    def count_hits(self, state: HitState) -> int:
        return self._count_hits(state)

    @abstractmethod
    def _prior_hits(
        self, pairs: Sequence[tuple[int, bytes]], tenant: str | None
    ) -> dict[tuple[int, bytes], PriorHit]: ...

    @abstractmethod
    def _create_hit(self, hit: NewHit, audit: AuditEvent | None) -> None: ...

    @abstractmethod
    def _get_hit(self, hit_id: str) -> Hit | None: ...

    @abstractmethod
    def _list_hits(
        self, state: HitState | None, limit: int, before_seq: int | None, tenant: str | None
    ) -> list[tuple[int, Hit]]: ...

    @abstractmethod
    def _resolve_hit(
        self, resolution: Resolution, audit: AuditEvent | None
    ) -> tuple[Hit, list[int]]: ...

    @abstractmethod
    def _count_hits(self, state: HitState) -> int: ...


class DisputeStore(ABC):
    @final
    def disputed_among(self, entry_ids: Sequence[int]) -> set[int]:
        """Which of these entries are disputed."""
        return self._disputed_among(entry_ids) if entry_ids else set()

    @final
    def list_disputed(self, limit: int, after_id: int) -> list[DisputedEntry]:
        """Disputed entries in id order, starting after `after_id`."""
        not_negative("the disputed listing's limit", limit)
        return self._list_disputed(limit, after_id)

    @abstractmethod
    def _disputed_among(self, entry_ids: Sequence[int]) -> set[int]: ...

    @abstractmethod
    def _list_disputed(self, limit: int, after_id: int) -> list[DisputedEntry]: ...
