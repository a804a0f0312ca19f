"""Matches + entry states -> decision. Pure functions: no I/O, no clock.

The rule that keeps the victims' channel from becoming a censorship tool lives here:
only an entry a moderator has vetted can BLOCK, and only through a match of a whole part
of the upload (service.domain.MatchPart); an unvetted entry, or a vetted one matched
only by a part of the upload (a strip a benign picture may share), can at most ask for
REVIEW.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from service.domain import Algorithm, Decision, EntryState, Match


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Largest Hamming distance that counts as a match, per perceptual algorithm."""

    pdq: int = 38
    phash: int = 0
    pdq_window: int = 38

    def radius(self, algorithm: Algorithm) -> int:
        if algorithm is Algorithm.PDQ:
            return self.pdq
        if algorithm is Algorithm.PHASH:
            return self.phash
        if algorithm is Algorithm.PDQ_WINDOW:
            return self.pdq_window
        return 0


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
    """A vetted entry matched by a whole part of the upload."""
    return match.entry_state is EntryState.VETTED and not match.part.partial


def asks_review(match: Match, disputed: Collection[int] = ()) -> bool:
    """A pending entry nobody disputed, or a vetted one matched only by a part of the
    upload: a moderator must look, since a benign picture can share a strip."""
    if match.entry_state is EntryState.VETTED:
        return match.part.partial
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
