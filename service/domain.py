"""Plain domain types shared by every layer: hashes, states, roles and records.

A hash's type (`algorithm`) is a service.signals plug-in (SignalType), compared by
identity; this module only names it for the type checker, so the plug-ins may use
these types without an import cycle."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from service.signals.base import SignalType


class EntryState(enum.StrEnum):
    PENDING = "pending"
    VETTED = "vetted"
    WITHDRAWN = "withdrawn"


class CaseState(enum.StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class HitState(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Verdict(enum.StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Decision(enum.StrEnum):
    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"


class Role(enum.StrEnum):
    OPERATOR = "operator"
    MODERATOR = "moderator"
    SUBMITTER = "submitter"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class HashValue:
    """One hash. `quality` is PDQ's 0-100 quality, or None when unknown."""

    algorithm: SignalType
    value: bytes
    quality: int | None = None

    @property
    def hex(self) -> str:
        return self.value.hex()


class MatchPart(enum.StrEnum):
    """Which part of an upload matched an entry (docs/SECURITY.md, "What a confirmation
    vets"). A whole part stands for the whole picture the moderator sees; a partial one
    for only some of it (a strip...), which a benign picture can share with an abusive
    one. New kinds of query (rotations, panels...) add a value here and say whether they
    are partial; the review rules follow from `partial` alone."""

    WHOLE = "whole"  # the upload as sent (or the hashes an operator supplied)
    DIHEDRAL = "dihedral"  # the whole upload rotated by 90/180/270 degrees or mirrored
    INNER = "inner"  # the photo inside its bars, or with pasted boxes painted over
    STRIP = "strip"  # the top or bottom strip of the upload (where captions sit)
    ROTATED = "rotated"  # the upload turned back by a small angle read from its corners
    PANEL = "panel"  # one rectangle inside the upload: a collage tile, a screenshot's photo
    # A run of seconds of an uploaded video matched a run of a listed one (a clip, part of
    # a compilation), not the video as a whole: a benign video can share a few seconds
    # with a listed one (a compilation that also holds other material, a shared scene).
    SEGMENT = "segment"

    @property
    def partial(self) -> bool:
        """True when the matched hash stands for only part of the picture: a confirmation
        vets such a match only by the moderator's explicit choice, it needs more tenants,
        and alone it never BLOCKs."""
        return self in _PARTIAL_PARTS


_PARTIAL_PARTS = frozenset({MatchPart.STRIP, MatchPart.ROTATED, MatchPart.PANEL, MatchPart.SEGMENT})


@dataclass(frozen=True, slots=True)
class Span:
    """Which seconds of a video matched: of the upload and of the listed video, so a
    moderator can look at that part."""

    upload_start: float
    upload_end: float
    listed_start: float
    listed_end: float


@dataclass(frozen=True, slots=True)
class Query:
    """One hash looked up for an upload, with the part of the upload it was computed from."""

    algorithm: SignalType
    value: bytes
    part: MatchPart = MatchPart.WHOLE
    # Where in the upload, for the parts that are not the whole of it, in words a
    # moderator reads ("x 52-98 %, y 0-48 %", "turned back 5.0°"); empty otherwise.
    region: str = ""


@dataclass(frozen=True, slots=True)
class Match:
    """An upload hash that lies within the threshold of a list entry."""

    entry_id: int
    algorithm: SignalType
    distance: int
    entry_state: EntryState
    query_value: bytes  # the upload's hash that matched (kept for hit de-duplication)
    part: MatchPart = MatchPart.WHOLE  # which part of the upload that hash stands for
    region: str = ""  # where in the upload that part is (Query.region)
    # A vetted entry matched farther than its threshold less the distance at which a
    # moderator confirmed it: a BLOCK here might not be within the threshold of anything
    # a moderator saw (one hash placed between a benign and an abusive picture), so it
    # asks for REVIEW instead (service/policy.py).
    beyond_vetting: bool = False
    span: Span | None = None  # for a video: which seconds matched


class EntryRow(NamedTuple):
    """A list entry as the store holds it (a withdrawn entry's value is empty). A
    NamedTuple, not a dataclass: millions are made at start-up."""

    entry_id: int
    algorithm: SignalType
    value: bytes
    state: EntryState
    # For a vetted entry: the smallest distance of the confirmations that vetted it
    # (0 when unknown: imported as vetted); see Match.beyond_vetting.
    vet_distance: int = 0


DEFAULT_TENANT = "default"  # the tenant of keys made before tenants existed


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the API key's name, role and tenant (the platform it acts for)."""

    name: str
    role: Role
    tenant: str = DEFAULT_TENANT
    # The key's own hourly submission quotas (None: the server's settings).
    cases_per_hour: int | None = None
    hashes_per_hour: int | None = None

    @property
    def sees_every_tenant(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case_id: str
    state: CaseState
    created_at: float
    entries_pending: int
    entries_vetted: int
    entries_withdrawn: int
    hits_total: int
    hits_confirmed: int


@dataclass(frozen=True, slots=True)
class HitMatch:
    entry_id: int
    algorithm: SignalType
    distance: int
    entry_state: EntryState
    part: MatchPart = MatchPart.WHOLE
    # Once the hit is confirmed: whether the confirmation counted for this entry (whole
    # parts always; partial ones only when the moderator chose to vet them too).
    agreed: bool = False
    region: str = ""  # where in the upload the part that matched is (Query.region)
    span: Span | None = None  # for a video: which seconds matched (Match.span)


@dataclass(frozen=True, slots=True)
class Hit:
    hit_id: str
    state: HitState
    operator: str
    content_ref: str
    created_at: float
    matches: tuple[HitMatch, ...] = field(default_factory=tuple)
    note: str = ""
    resolved_by: str = ""
    resolved_at: float | None = None
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True, slots=True)
class DisputedEntry:
    """A pending entry that moderators of several tenants rejected: it no longer asks
    for review, and admins look into it (docs/SECURITY.md)."""

    entry_id: int
    algorithm: SignalType
    state: EntryState
    disputed_at: float
    rejecting_tenants: int
    confirming_tenants: int


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit-log row: who (key name, role, tenant), what (action, the ids it
    concerns, a short detail), when. Never image bytes, hash values or case tokens."""

    actor: str
    role: str
    tenant: str
    action: str
    target: str
    at: float
    detail: str = ""
    seq: int = 0  # set when read back from the store

    @classmethod
    def by(
        cls, principal: Principal, action: str, target: str, at: float, detail: str = ""
    ) -> AuditEvent:
        return cls(
            principal.name, principal.role.value, principal.tenant, action, target, at, detail
        )
