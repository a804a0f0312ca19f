"""Matches + entry states -> decision. Pure functions: no I/O, no clock.

The rule that keeps the victims' channel from becoming a censorship tool lives here:
only an entry a moderator has vetted can BLOCK; an unvetted entry can at most ask for
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
    """Keep the closest match for each entry (several upload hashes can hit one entry,
    e.g. the 8 dihedral PDQ variants), ordered by distance then entry id."""
    best: dict[int, Match] = {}
    for match in matches:
        current = best.get(match.entry_id)
        if current is None or match.distance < current.distance:
            best[match.entry_id] = match
    return sorted(best.values(), key=lambda m: (m.distance, m.entry_id))


def decide(matches: Iterable[Match], disputed: Collection[int] = ()) -> Decision:
    """BLOCK on any vetted entry, else REVIEW on any pending entry that is not disputed,
    else ALLOW. A disputed entry (rejected by moderators of several tenants) stops
    asking for review, so a bad submission cannot keep flooding every platform's queue."""
    matches = list(matches)
    if any(m.entry_state is EntryState.VETTED for m in matches):
        return Decision.BLOCK
    if any(m.entry_state is EntryState.PENDING and m.entry_id not in disputed for m in matches):
        return Decision.REVIEW
    return Decision.ALLOW
