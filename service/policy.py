"""Matches + entry states -> decision. Pure functions: no I/O, no clock.

The rule that keeps the victims' channel from becoming a censorship tool lives here:
only an entry a moderator has vetted can BLOCK, and only through a match of a whole part
of the upload (service.domain.MatchPart) and on a hash type that may block
(SignalType.can_block); an unvetted entry, or a vetted one matched only by a part of the
upload (a strip a benign picture may share) or on a type that may not block, can at most
ask for REVIEW.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from service.domain import Decision, EntryState, Match
from service.signals.base import IndexKind, SignalType
from service.signals.registry import SIGNALS


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Largest Hamming distance that counts as a match, per hash type. A type left out
    has its default (SignalType.default_threshold); an EXACT type is always 0."""

    radii: Mapping[SignalType, int] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: object, signals: Iterable[SignalType] = SIGNALS) -> Thresholds:
        """Each type's radius from the settings field it names (`threshold_setting`)."""
        return cls(
            {s: int(getattr(settings, s.threshold_setting)) for s in signals if s.threshold_setting}
        )

    def radius(self, signal: SignalType) -> int:
        if signal.index_kind is IndexKind.EXACT:
            return 0
        return self.radii.get(signal, signal.default_threshold)


def best_per_entry(matches: Iterable[Match]) -> list[Match]:
    """Keep one match for each entry (several upload hashes can hit one entry, e.g. the
    8 dihedral PDQ variants): the closest whole-part match, else the closest partial
    one, since what a match may decide depends on its part. Ordered by distance then
    entry id."""
    best: dict[int, Match] = {}
    for match in matches:
        current = best.get(match.entry_id)
        if current is None or _rank(match) < _rank(current):
            best[match.entry_id] = match
    return sorted(best.values(), key=lambda m: (m.distance, m.entry_id))


def _rank(match: Match) -> tuple[bool, int]:
    return match.part.partial, match.distance


def blocks(match: Match) -> bool:
    """A vetted entry matched by a whole part of the upload, on a type that may block,
    within the distance its confirmation vouches for (Match.beyond_vetting)."""
    return (
        match.entry_state is EntryState.VETTED
        and not match.part.partial
        and match.algorithm.can_block
        and not match.beyond_vetting
    )


def asks_review(match: Match, disputed: Collection[int] = ()) -> bool:
    """A pending entry nobody disputed, or a vetted one that may not block: matched only
    by a part of the upload (a moderator must look, since a benign picture can share a
    strip), beyond what its confirmation vouches for, or on a hash type whose matches may
    only ask for review."""
    if match.entry_state is EntryState.VETTED:
        return not blocks(match)
    return match.entry_state is EntryState.PENDING and match.entry_id not in disputed


def decide(matches: Iterable[Match], disputed: Collection[int] = ()) -> Decision:
    """BLOCK on a vetted entry matched by a whole part, else REVIEW on any match that
    asks for review (`asks_review`), else ALLOW. A disputed entry (rejected by
    moderators of several tenants) stops asking for review, so a bad submission cannot
    keep flooding every platform's queue."""
    matches = list(matches)
    if any(blocks(m) for m in matches):
        return Decision.BLOCK
    if any(asks_review(m, disputed) for m in matches):
        return Decision.REVIEW
    return Decision.ALLOW
