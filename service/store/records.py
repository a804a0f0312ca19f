"""What the SQLite and PostgreSQL stores share: column lists, and turning result rows
into domain objects. The SQL each runs stays in its own module (placeholders, locking
and transactions differ); what a row means is defined once, here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.domain import (
    Algorithm,
    CaseState,
    CaseStatus,
    EntryRow,
    EntryState,
    Hit,
    HitMatch,
    HitState,
    MatchPart,
)

ALGORITHMS = {a.value: a for a in Algorithm}
ENTRY_STATES = {s.value: s for s in EntryState}
PAST_EVERY_ID = 2**63 - 1  # (seq, id) paging: nothing of the starting seq itself
HIT_COLUMNS = (
    "seq, hit_id, operator, content_ref, state, created_at, note, resolved_by, resolved_at, tenant"
)
ENTRY_COLUMNS = "entry_id, algorithm, value, state"


def entry_row(row: Sequence[Any]) -> EntryRow:
    """An ENTRY_COLUMNS row; a withdrawn entry's value is NULL."""
    return EntryRow(int(row[0]), ALGORITHMS[row[1]], bytes(row[2] or b""), ENTRY_STATES[row[3]])


def hit_match(row: Sequence[Any]) -> tuple[str, HitMatch]:
    """A (hit_id, entry_id, algorithm, distance, entry state, part, agreed) row."""
    part = MatchPart(row[5])
    return row[0], HitMatch(
        int(row[1]), ALGORITHMS[row[2]], row[3], ENTRY_STATES[row[4]], part, bool(row[6])
    )


def hits(rows: Sequence[Sequence[Any]], match_rows: Sequence[Sequence[Any]]) -> list[Hit]:
    """HIT_COLUMNS rows with their matches (rows from hit_match's query, in order)."""
    matches: dict[str, list[HitMatch]] = {row[1]: [] for row in rows}
    for match_row in match_rows:
        hit_id, match = hit_match(match_row)
        matches[hit_id].append(match)
    return [
        Hit(
            hit_id=row[1],
            operator=row[2],
            content_ref=row[3],
            state=HitState(row[4]),
            created_at=row[5],
            note=row[6],
            resolved_by=row[7],
            resolved_at=row[8],
            tenant=row[9],
            matches=tuple(matches[row[1]]),
        )
        for row in rows
    ]


def case_status(
    case_id: str,
    case_row: Sequence[Any],
    entry_counts: Mapping[str, int],
    hit_counts: Mapping[str, int],
) -> CaseStatus:
    """A case's (state, created_at) row and its entry and hit counts by state."""
    return CaseStatus(
        case_id=case_id,
        state=CaseState(case_row[0]),
        created_at=case_row[1],
        entries_pending=entry_counts.get(EntryState.PENDING.value, 0),
        entries_vetted=entry_counts.get(EntryState.VETTED.value, 0),
        entries_withdrawn=entry_counts.get(EntryState.WITHDRAWN.value, 0),
        hits_total=sum(hit_counts.values()),
        hits_confirmed=hit_counts.get(HitState.CONFIRMED.value, 0),
    )
