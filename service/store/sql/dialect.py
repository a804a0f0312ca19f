"""What differs between SQL databases in the queries both stores share, as data: one
`Dialect` value per backend instead of hooks overridden in subclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str  # also the folder of its migrations
    placeholder: str  # queries are written with `?`; rewritten to this
    # Appended to a SELECT that reads a row the same transaction then changes.
    for_update: str
    # INSERT ... RETURNING for new ids; otherwise the driver's lastrowid. (SQLite has
    # RETURNING only from 3.35, and Python may be built against an older one.)
    returning: bool
    # Run first in a write that may append to the change log, so that change seqs commit
    # in the order they are drawn (None: the database has one writer at a time anyway).
    lock_change_log: str | None
    lock_migrations: str | None  # replicas starting together migrate one at a time
    notify: str | None  # a statement (channel, seq) that wakes other replicas at commit
    # Stamp each change with the clock when it is written rather than the caller's `now`
    # (what the PostgreSQL store has always done; `oldest_unapplied_at` reads it).
    changes_use_wall_clock: bool
    # The exception a UNIQUE constraint raises.
    unique_violation: type[Exception]
    # Filters `column IN (values)` as one array parameter rather than one per value.
    array_parameters: bool
    # Put before a column to keep the planner off its index (SQLite: `+column`).
    no_index_prefix: str = ""

    def sql(self, query: str) -> str:
        return query if self.placeholder == "?" else query.replace("?", self.placeholder)

    def scan_filter(self, column: str, values: list[Any]) -> tuple[str, list[Any]]:
        """A `column is one of values` condition, and its arguments, for a scan in id
        order: on SQLite it keeps the planner on the rowid order instead of the column's
        index, which would sort every batch (2x slower on a million entries)."""
        if self.array_parameters:
            return f"{column} = ANY(?)", [values]
        marks = ",".join("?" * len(values))
        return f"{self.no_index_prefix}{column} IN ({marks})", list(values)
