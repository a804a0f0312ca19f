"""SQLite store: the embedded default, one file in the data directory.

WAL mode with synchronous=FULL, so a write is on disk when its call returns. Each
thread has its own connection; writes are serialised by a lock in this process and by
SQLite's busy timeout across processes (e.g. `hashguard import` beside a server).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from service.domain import (
    AuditEvent,
    EntryRow,
    EntryState,
    HashValue,
)
from service.errors import Conflict
from service.store import records
from service.store.base import (
    ApiKeyRecord,
    ImportResult,
    Store,
)
from service.store.migrations import check_not_newer, load_migrations
from service.store.sql_shared import SharedSQL

DB_FILENAME = "hashguard.sqlite3"
_IMPORT_BATCH = 50_000


class SQLiteStore(SharedSQL, Store):
    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / DB_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._migrate()

    # -- connections and transactions -------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The thread's connection; reads outside a write see the last commit."""
        yield self._conn()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: committed on success, rolled back on any error."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _change(self) -> AbstractContextManager[sqlite3.Connection]:
        return self._write()

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def _migrate(self) -> None:
        migrations = load_migrations("sqlite")
        with self._write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            check_not_newer(current, len(migrations))
            for version, sql in migrations[current:]:
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (version,))

    # -- API keys -----------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord, audit: AuditEvent | None = None) -> None:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO api_keys (key_id, name, role, secret_hash, created_at, tenant)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.name,
                        record.role.value,
                        record.secret_hash,
                        record.created_at,
                        record.tenant,
                    ),
                )
                self._insert_audit(conn, audit)
        except sqlite3.IntegrityError:
            raise Conflict(f"an API key named {record.name!r} already exists") from None

    # -- cases and entries --------------------------------------------------------------

    def iter_entries(
        self, states: Sequence[EntryState], batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        marks = ",".join("?" * len(states))
        wanted = [s.value for s in states]
        after = -1
        while True:
            # `+state` keeps SQLite on the rowid order instead of the state index, which
            # would need a sort per batch (2x slower on a million entries).
            rows = (
                self._conn()
                .execute(
                    f"SELECT entry_id, algorithm, value, state FROM entries"
                    f" WHERE entry_id > ? AND +state IN ({marks}) ORDER BY entry_id LIMIT ?",
                    (after, *wanted, batch_size),
                )
                .fetchall()
            )
            if not rows:
                return
            yield [records.entry_row(r) for r in rows]
            after = rows[-1][0]

    def import_entries(
        self,
        hashes: Iterable[HashValue],
        vetted: bool,
        now: float,
        audit: AuditEvent | None = None,
    ) -> ImportResult:
        state = EntryState.VETTED if vetted else EntryState.PENDING
        # An imported value already present is left alone, except that --vetted vets it
        # if it is still pending: one upsert statement does both.
        vetted_at = now if vetted else None
        with self._write() as conn:
            self._insert_audit(conn, audit)
            # One change for the new entries and one for the pending ones this vets; the
            # counts are filled in at the end and an empty change is dropped again.
            added_seq = self._record_change(conn, "added", 0, now)
            vetted_seq = self._record_change(conn, "vetted", 0, now) if vetted else 0
            on_conflict = (
                "DO UPDATE SET state = 'vetted', vetted_at = excluded.vetted_at,"
                f" changed_seq = {vetted_seq} WHERE entries.state = 'pending'"
                if vetted
                else "DO NOTHING"
            )
            sql = (
                "INSERT INTO entries (algorithm, value, state, created_at, vetted_at,"
                " changed_seq) VALUES (?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (algorithm, value) WHERE case_id IS NULL {on_conflict}"
            )
            conn.execute("PRAGMA cache_size = -262144")  # 256 MiB for the index B-trees
            before_rows = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            before_changes = conn.total_changes
            seen = 0
            batch: list[tuple[str, bytes, str, float, float | None, int]] = []
            for h in hashes:
                seen += 1
                batch.append((h.algorithm.value, h.value, state.value, now, vetted_at, added_seq))
                if len(batch) >= _IMPORT_BATCH:
                    conn.executemany(sql, batch)
                    batch = []
            conn.executemany(sql, batch)
            added = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - before_rows
            changed = conn.total_changes - before_changes - added
            conn.execute("PRAGMA cache_size = -2000")
            for seq, count in ((added_seq, added), (vetted_seq, changed)):
                if seq:
                    self._settle_change(conn, seq, count)
        return ImportResult(added=added, vetted=changed, unchanged=seen - added - changed)

    # -- hits -----------------------------------------------------------------------------

    # -- the change log ---------------------------------------------------------------------

    def _record_change(self, conn: sqlite3.Connection, kind: str, entries: int, now: float) -> int:
        """SQLite runs one writer at a time, so seqs commit in order."""
        cursor = conn.execute(
            "INSERT INTO changes (kind, entries, created_at) VALUES (?, ?, ?)",
            (kind, entries, now),
        )
        return int(cursor.lastrowid or 0)

    def _insert_returning_id(
        self, conn: sqlite3.Connection, query: str, args: Sequence[Any]
    ) -> int:
        # lastrowid, not RETURNING: SQLite has RETURNING only from 3.35, and Python may
        # be built against an older one.
        return int(conn.execute(query, args).lastrowid or 0)

    def store_id(self) -> str:
        return str(self._conn().execute("SELECT store_id FROM store_identity").fetchone()[0])


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, letting SQLite judge where each one ends (so
    a ';' inside a comment or string does not split it)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise RuntimeError(f"migration ends with an unterminated statement: {buffer[:80]!r}")
    return statements
