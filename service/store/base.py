"""The persistence interface, implemented by the SQLite and PostgreSQL stores.

Every method is one transaction: when it returns, the change is durable. Every change to
the list (entries added, vetted, withdrawn) also appends to the change log in that same
transaction, which is how every replica's in-memory list follows the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from service.domain import (
    DEFAULT_TENANT,
    Algorithm,
    AuditEvent,
    CaseState,
    CaseStatus,
    DisputedEntry,
    EntryRow,
    EntryState,
    HashValue,
    Hit,
    HitState,
    Match,
    Role,
    Verdict,
)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    name: str
    role: Role
    secret_hash: bytes
    created_at: float
    revoked_at: float | None = None
    tenant: str = DEFAULT_TENANT
    rotated_at: float | None = None


@dataclass(frozen=True, slots=True)
class ReviewRules:
    """How a verdict counts (docs/SECURITY.md, "What a confirmation vets"): how many
    distinct tenants' confirmations through a whole part of their uploads vet an entry,
    how many when partial matches (strips...) count too, how many tenants' rejections
    make a pending entry disputed; and the moderator's choice for this verdict: whether
    the confirmation also agrees to the entries matched only by a part of the upload."""

    vet_tenants: int = 1
    dispute_tenants: int = 2
    vet_partial_tenants: int = 2
    vet_partial: bool = False


DEFAULT_RULES = ReviewRules()


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for reading the audit log, newest first."""

    actor: str | None = None
    action: str | None = None  # exact, or a prefix ending in '.' ("hit.")
    since: float | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class CaseAuth:
    """What is needed to authorise a case-token call."""

    token_hash: bytes
    state: CaseState


@dataclass(frozen=True, slots=True)
class ImportResult:
    added: int
    vetted: int  # existing imported entries that this import vetted
    unchanged: int


class ChangeHead(NamedTuple):
    """Where the change log stands, as seen by a replica that has applied `after`."""

    seq: int  # the newest committed change (0: none yet)
    oldest_unapplied_at: float | None  # commit time of the first change after `after`


@dataclass(frozen=True, slots=True)
class PriorHit:
    """An earlier hit that paired this entry with this upload hash."""

    hit_id: str
    state: HitState


class Store(ABC):
    @abstractmethod
    def close(self) -> None: ...

    # API keys
    @abstractmethod
    def add_api_key(self, record: ApiKeyRecord, audit: AuditEvent | None = None) -> None:
        """Raises Conflict if the name is taken."""

    @abstractmethod
    def get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    @abstractmethod
    def list_api_keys(self) -> list[ApiKeyRecord]: ...

    @abstractmethod
    def revoke_api_key(self, name: str, now: float, audit: AuditEvent) -> ApiKeyRecord:
        """Raises NotFound for an unknown name, Conflict if already revoked."""

    @abstractmethod
    def rotate_api_key(
        self, name: str, secret_hash: bytes, now: float, audit: AuditEvent
    ) -> ApiKeyRecord:
        """Replace a live key's secret (its id and name stay); the old one stops working."""

    @abstractmethod
    def count_api_keys(self) -> int: ...

    # Cases and entries
    @abstractmethod
    def create_case(
        self,
        case_id: str,
        token_hash: bytes,
        submitted_by: str,
        hashes: Sequence[HashValue],
        now: float,
        audit: AuditEvent | None = None,
    ) -> list[int]:
        """Store the case and one pending entry per hash; returns the entry ids."""

    @abstractmethod
    def get_case_auth(self, case_id: str) -> CaseAuth | None: ...

    @abstractmethod
    def cases_opened_since(self, submitted_by: str, since: float) -> tuple[int, float | None]:
        """How many cases `submitted_by` opened at or after `since`, and when the oldest
        of them was opened (None if none): the submitter's hourly quota."""

    @abstractmethod
    def case_status(self, case_id: str) -> CaseStatus: ...

    @abstractmethod
    def withdraw_case(
        self, case_id: str, now: float, audit: AuditEvent | None = None
    ) -> list[EntryRow]:
        """Mark the case withdrawn, erase its hash values (tombstones remain) and close
        hits that matched only its entries. Returns the entries withdrawn now (their
        `value` is the erased one, so the caller can drop them from indexes)."""

    @abstractmethod
    def iter_entries(
        self, states: Sequence[EntryState], batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        """Entries in the given states, in id order, in batches."""

    @abstractmethod
    def import_entries(
        self,
        hashes: Iterable[HashValue],
        vetted: bool,
        now: float,
        audit: AuditEvent | None = None,
    ) -> ImportResult:
        """Add list entries with no case, in one transaction. Re-importing a value is a
        no-op, except that --vetted vets an imported entry still pending."""

    @abstractmethod
    def count_entries(self) -> dict[tuple[Algorithm, EntryState], int]: ...

    # Hits
    @abstractmethod
    def prior_hits(
        self, pairs: Sequence[tuple[int, bytes]], tenant: str | None = None
    ) -> dict[tuple[int, bytes], PriorHit]:
        """For (entry id, upload hash) pairs, the latest hit that recorded each pair
        (of `tenant`'s hits only, when given)."""

    @abstractmethod
    def create_hit(
        self,
        hit_id: str,
        operator: str,
        content_ref: str,
        matches: Sequence[Match],
        now: float,
        tenant: str = DEFAULT_TENANT,
        audit: AuditEvent | None = None,
    ) -> None: ...

    @abstractmethod
    def get_hit(self, hit_id: str) -> Hit | None: ...

    @abstractmethod
    def list_hits(
        self,
        state: HitState | None,
        limit: int,
        before_seq: int | None,
        tenant: str | None = None,
    ) -> list[tuple[int, Hit]]:
        """Newest first, as (seq, hit) pairs; `before_seq` continues a listing;
        `tenant` keeps only that tenant's hits."""

    @abstractmethod
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
        the resolved hit and the ids of the entries it vetted. Raises NotFound (also
        for another tenant's hit when `tenant` is given), or Conflict when the hit is
        no longer pending."""

    # Disputed entries
    @abstractmethod
    def disputed_among(self, entry_ids: Sequence[int]) -> set[int]: ...

    @abstractmethod
    def list_disputed(self, limit: int, after_id: int) -> list[DisputedEntry]:
        """Disputed entries in id order, starting after `after_id`."""

    # The audit log
    @abstractmethod
    def append_audit(self, event: AuditEvent) -> None: ...

    @abstractmethod
    def read_audit(self, query: AuditQuery) -> list[AuditEvent]: ...

    @abstractmethod
    def count_hits(self, state: HitState) -> int: ...

    # The change log (docs/DEPLOY.md, "How replicas converge")
    @abstractmethod
    def store_id(self) -> str:
        """A random id made when the database was created: names it for snapshots."""

    @abstractmethod
    def change_head(self, after: int) -> ChangeHead:
        """The newest committed change. Every change up to it is committed too."""

    @abstractmethod
    def changed_entries(
        self, after: int, upto: int, batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        """Entries whose last change lies in (after, upto], in their current state
        (withdrawn ones with an empty value), in batches. An entry changed again while
        this runs moves past `upto` and shows up in the next call instead."""

    @abstractmethod
    def withdrawn_since(self, after: int) -> bool:
        """Whether a case was withdrawn after change `after` (snapshots then rewrite)."""

    signals_changes = False  # whether wait_for_change can be woken by a commit

    def wait_for_change(self, timeout: float) -> bool:
        """Block until a change may have been committed (True) or `timeout` passes
        (False). A store that cannot signal changes returns False at once."""
        return False
