"""Result rows decoded by column name (the query's own names or aliases), never by
position, so a reordered SELECT cannot silently swap fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.domain import EntryRow, EntryState
from service.signals.registry import REGISTRY

ALGORITHMS = REGISTRY.by_name
ENTRY_STATES = {s.value: s for s in EntryState}
ENTRY_COLUMNS = "entry_id, algorithm, value, state"


def names(cursor: Any) -> list[str]:
    return [column[0] for column in cursor.description]


def named(cursor: Any) -> list[dict[str, Any]]:
    """All rows of a cursor as {column: value}."""
    found: Sequence[Sequence[Any]] = cursor.fetchall()
    if not found:
        return []
    columns = names(cursor)
    return [dict(zip(columns, row, strict=True)) for row in found]


def entries(cursor: Any) -> tuple[list[EntryRow], dict[str, Any] | None]:
    """ENTRY_COLUMNS rows (a withdrawn entry's value is NULL) as EntryRows, and the last
    row by name, where a paged read continues. Positions are looked up by name once per
    batch, not per row: start-up decodes millions of these."""
    found: Sequence[Sequence[Any]] = cursor.fetchall()
    if not found:
        return [], None
    columns = names(cursor)
    at = {name: i for i, name in enumerate(columns)}
    i, a, v, s = at["entry_id"], at["algorithm"], at["value"], at["state"]
    d = at.get("vet_distance")  # selected by the change log's reads
    decoded = [
        EntryRow(
            int(r[i]),
            ALGORITHMS[r[a]],
            bytes(r[v] or b""),
            ENTRY_STATES[r[s]],
            0 if d is None else int(r[d]),
        )
        for r in found
    ]
    return decoded, dict(zip(columns, found[-1], strict=True))
