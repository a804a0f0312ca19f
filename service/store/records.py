"""The value types of the store interface: what callers hand to it and get back, besides
the domain types (service.domain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from service.domain import DEFAULT_TENANT, CaseState, HashValue, HitState, Match, Role, Verdict


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
    cases_per_hour: int | None = None  # None: the server's --max-cases-per-hour
    hashes_per_hour: int | None = None  # None: the server's --max-hashes-per-hour


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


# What a backend receives for the writes with many arguments (the public methods keep
# their keyword signatures; see service/store/cases.py and hits.py).


@dataclass(frozen=True, slots=True)
class NewCase:
    case_id: str
    token_hash: bytes
    submitted_by: str
    hashes: tuple[HashValue, ...]
    now: float


@dataclass(frozen=True, slots=True)
class NewHit:
    hit_id: str
    operator: str
    content_ref: str
    matches: tuple[Match, ...]
    now: float
    tenant: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """A moderator's verdict on a hit; `tenant`, when given, is the only tenant whose
    hit may be resolved."""

    hit_id: str
    verdict: Verdict
    note: str
    resolved_by: str
    now: float
    tenant: str | None
    rules: ReviewRules
