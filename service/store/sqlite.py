"""SQLite store: the embedded default, one file in the data directory.

WAL mode with synchronous=FULL, so a write is on disk when its call returns. Each
thread has its own connection; writes are serialised by a lock in this process and by
SQLite's busy timeout across processes (`serve --processes N`, `hashguard import` beside
a server): every write is one BEGIN IMMEDIATE transaction, which takes the write lock
up front and so waits (up to 30 s) instead of failing on a lock upgrade; and as writers
commit one at a time, change-log seqs become visible in order, which the followers
rely on.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from service.domain import AuditEvent, EntryState, HashValue
from service.store.records import ImportResult
from service.store.sql.audit import insert_audit
from service.store.sql.database import Database, Tx
from service.store.sql.dialect import Dialect
from service.store.sql.store import SQLStore

DB_FILENAME = "hashguard.sqlite3"
_IMPORT_BATCH = 50_000

SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    for_update="",
    returning=False,
    lock_change_log=None,
    lock_migrations=None,
    notify=None,
    changes_use_wall_clock=False,
    unique_violation=sqlite3.IntegrityError,
    array_parameters=False,
    no_index_prefix="+",
)


class SQLiteDatabase(Database):
    def __init__(self, path: Path) -> None:
        super().__init__(SQLITE)
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.RLock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # The busy timeout first: with several processes writing (`serve --processes
            # N`, `hashguard import` beside a server), even switching to WAL may have to
            # wait for another connection's lock rather than fail with "database is locked".
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """The thread's connection; reads outside a write see the last commit."""
        yield Tx(self._conn(), self.dialect)

    @contextmanager
    def change(self) -> Iterator[Tx]:
        """One IMMEDIATE transaction: committed on success, rolled back on any error."""
        with self._write_lock:
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn, self.dialect)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def run_script(self, tx: Tx, script: str) -> None:
        for statement in _split_sql(script):
            tx.conn.execute(statement)


class SQLiteStore(SQLStore):
    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / DB_FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(SQLiteDatabase(self.path))

    def _import_entries(
        self, hashes: Iterable[HashValue], vetted: bool, now: float, audit: AuditEvent | None
    ) -> ImportResult:
        state = EntryState.VETTED if vetted else EntryState.PENDING
        # An imported value already present is left alone, except that --vetted vets it
        # if it is still pending: one upsert statement does both.
        vetted_at = now if vetted else None
        with self._db.change() as tx:
            insert_audit(tx, audit)
            # One change for the new entries and one for the pending ones this vets; the
            # counts are filled in at the end and an empty change is dropped again.
            added_seq = tx.record_change("added", 0, now)
            vetted_seq = tx.record_change("vetted", 0, now) if vetted else 0
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
            conn: sqlite3.Connection = tx.conn
            conn.execute("PRAGMA cache_size = -262144")  # 256 MiB for the index B-trees
            before_rows = tx.aggregate("SELECT COUNT(*) AS n FROM entries")["n"]
            before_changes = conn.total_changes
            seen = 0
            batch: list[tuple[str, bytes, str, float, float | None, int]] = []
            for h in hashes:
                seen += 1
                batch.append((h.algorithm.name, h.value, state.value, now, vetted_at, added_seq))
                if len(batch) >= _IMPORT_BATCH:
                    conn.executemany(sql, batch)
                    batch = []
            conn.executemany(sql, batch)
            added = tx.aggregate("SELECT COUNT(*) AS n FROM entries")["n"] - before_rows
            changed = conn.total_changes - before_changes - added
            conn.execute("PRAGMA cache_size = -2000")
            for seq, count in ((added_seq, added), (vetted_seq, changed)):
                if seq:
                    tx.settle_change(seq, count)
        return ImportResult(added=added, vetted=changed, unchanged=seen - added - changed)


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
