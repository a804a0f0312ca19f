"""Connections and transactions, as the shared SQL sees them: a backend's `Database`
hands out `Tx` objects (one transaction each) that speak its `Dialect`."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from service.store.migrations import check_not_newer, load_migrations
from service.store.sql import rows
from service.store.sql.dialect import Dialect

log = logging.getLogger("hashguard.store")


class Tx:
    """One open transaction (or, for reads on SQLite, the thread's connection). Queries
    are written with `?` placeholders; results come back decoded by column name."""

    def __init__(self, conn: Any, dialect: Dialect, channel: str | None = None) -> None:
        self.conn = conn  # the driver's connection, for what only one backend does
        self.dialect = dialect
        self._channel = channel

    def execute(self, query: str, args: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the driver's cursor."""
        return self.conn.execute(self.dialect.sql(query), args)

    def many(self, query: str, arg_rows: Sequence[Sequence[Any]]) -> None:
        cursor = self.conn.cursor()
        try:
            cursor.executemany(self.dialect.sql(query), arg_rows)
        finally:
            cursor.close()

    def rows(self, query: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return rows.named(self.execute(query, args))

    def row(self, query: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(query, args)
        return found[0] if found else None

    def aggregate(self, query: str, args: Sequence[Any] = ()) -> dict[str, Any]:
        """The one row an aggregate query always returns."""
        row = self.row(query, args)
        if row is None:
            raise RuntimeError(f"an aggregate returned no row: {query[:80]}")
        return row

    def insert_returning(self, query: str, args: Sequence[Any], column: str) -> int:
        """Run an INSERT of one row and return `column` (an id the database gave it)."""
        if not self.dialect.returning:
            return int(self.execute(query, args).lastrowid or 0)
        return int(self.aggregate(f"{query} RETURNING {column}", args)[column])

    # -- the change log ---------------------------------------------------------------

    def lock_change_log(self) -> None:
        """Called first in a write that may append to the change log."""
        if self.dialect.lock_change_log:
            self.execute(self.dialect.lock_change_log)

    def record_change(self, kind: str, entries: int, now: float) -> int:
        """Append to the change log inside this write; returns the new seq, which the
        write stamps on the entries it changes."""
        at = time.time() if self.dialect.changes_use_wall_clock else now
        seq = self.insert_returning(
            "INSERT INTO changes (kind, entries, created_at) VALUES (?, ?, ?)",
            (kind, entries, at),
            "seq",
        )
        if self.dialect.notify and self._channel:
            self.execute(self.dialect.notify, (self._channel, str(seq)))
        return seq

    def settle_change(self, seq: int, entries: int) -> None:
        """A change row is taken before a write knows how many entries it touches (its
        seq is stamped on them): record the count, or drop the row if none changed."""
        if entries:
            self.execute("UPDATE changes SET entries = ? WHERE seq = ?", (entries, seq))
        else:
            self.execute("DELETE FROM changes WHERE seq = ?", (seq,))


class Database(ABC):
    """A backend's connections: `read()` for a few reads, `change()` for one write
    transaction (committed on success, rolled back on any error)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.channel: str | None = None  # set once the store id is known, if it notifies

    @abstractmethod
    def read(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def change(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def run_script(self, tx: Tx, script: str) -> None:
        """Run a whole migration file (many statements, no parameters)."""

    def migrate(self) -> None:
        """Apply the dialect's numbered migrations not applied yet, in one transaction;
        refuse a database written by a newer HashGuard."""
        migrations = load_migrations(self.dialect.name)
        with self.change() as tx:
            if self.dialect.lock_migrations:
                tx.execute(self.dialect.lock_migrations)
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = tx.row("SELECT version FROM schema_version")
            current = int(row["version"]) if row else 0
            if row is None:
                tx.execute("INSERT INTO schema_version (version) VALUES (0)")
            check_not_newer(current, len(migrations))
            for version, script in migrations[current:]:
                self.run_script(tx, script)
                tx.execute("UPDATE schema_version SET version = ?", (version,))
                log.info("applied %s migration %04d", self.dialect.name, version)
