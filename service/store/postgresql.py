"""PostgreSQL store: one database shared by every replica (`--store postgresql://...`).

psycopg 3 with a connection pool; a pooled connection is checked before each use, so
one the server dropped (restart, pg_terminate_backend) is replaced rather than failing
a call. Connection failures become `Unavailable` (gRPC UNAVAILABLE: retry).

Every transaction that changes the list first takes one transaction-level advisory lock,
then draws its change seq, so seqs commit in the order they are drawn: a replica that
has seen seq N has seen every change below N (docs/DEPLOY.md explains why). The same
transaction sends a NOTIFY that wakes the other replicas' followers at commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from service.domain import (
    AuditEvent,
    EntryRow,
    EntryState,
    HashValue,
)
from service.errors import Conflict, Unavailable
from service.store import records
from service.store.base import (
    ApiKeyRecord,
    ImportResult,
    Store,
)
from service.store.migrations import check_not_newer, load_migrations
from service.store.sql_shared import SharedSQL

log = logging.getLogger("hashguard.store")

# Two-int advisory lock keys: (ours, the schema's hash), so lists in separate schemas of
# one database do not wait for each other.
_LOCK_SQL = "SELECT pg_advisory_xact_lock(74657, hashtext(current_schema()))"
_CALL_WAIT_SECONDS = 3.0
_MIGRATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(74658, hashtext(current_schema()))"


def is_postgresql_url(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))


def describe_url(url: str) -> str:
    """host:port/dbname of a URL, without user or password, for messages and logs."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable PostgreSQL URL"
    host, port = params.get("host", "localhost"), params.get("port", 5432)
    return f"{host}:{port}/{params.get('dbname', '')}"


class PostgresStore(SharedSQL, Store):
    _PLACEHOLDER = "%s"

    def __init__(
        self,
        url: str,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        call_wait: float = _CALL_WAIT_SECONDS,
    ) -> None:
        """`call_wait`: how long a call waits for a connection before Unavailable."""
        self._url = url
        self._where = describe_url(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ValueError(f"--store is not a valid PostgreSQL URL: {exc}") from None
        self._connect_kwargs: dict[str, Any] = {}
        if "application_name" not in params:
            self._connect_kwargs["application_name"] = "hashguard"
        if "connect_timeout" not in params:
            self._connect_kwargs["connect_timeout"] = max(1, int(connect_timeout))
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=self._connect_kwargs,
            check=ConnectionPool.check_connection,
            timeout=call_wait,
            name="hashguard",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg.OperationalError as exc:
            self._pool.close()
            raise Unavailable(f"cannot connect to PostgreSQL at {self._where}: {exc}") from None
        self._listener: psycopg.Connection[Any] | None = None
        try:
            self._migrate()
            self._store_id = self._read_store_id()
        except BaseException:
            self._pool.close()
            raise
        self._channel = f"hashguard_changes_{self._store_id}"

    # -- connections and transactions -------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection: committed on success, rolled back on
        any error. A lost connection becomes Unavailable."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise Unavailable(
                f"the PostgreSQL connection ({self._where}) failed: {exc}. The call was "
                "not completed; retry it"
            ) from None

    def _read(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx()

    def _change(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        return self._tx()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._pool.close()

    def _migrate(self) -> None:
        migrations = load_migrations("postgresql")
        with self._tx() as conn:
            # Replicas starting together migrate one at a time.
            conn.execute(_MIGRATION_LOCK_SQL)
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = row[0] if row else 0
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
            check_not_newer(current, len(migrations))
            for version, script in migrations[current:]:
                conn.execute(script.encode())  # a whole file: no parameters, many statements
                conn.execute("UPDATE schema_version SET version = %s", (version,))
                log.info("applied PostgreSQL migration %04d", version)

    def _read_store_id(self) -> str:
        row = self._one("SELECT store_id FROM store_identity")
        if row is None:
            raise RuntimeError("the store_identity table is empty")
        return str(row[0])

    _FOR_UPDATE = " FOR UPDATE"

    def _lock_change_log(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(_LOCK_SQL)

    def _record_change(
        self, conn: psycopg.Connection[Any], kind: str, entries: int, now: float = 0.0
    ) -> int:
        """The caller already holds the change-log lock. Stamped with the clock at writing
        (as before the stores shared resolve_hit), not the caller's `now`."""
        row = conn.execute(
            "INSERT INTO changes (kind, entries, created_at) VALUES (%s, %s, %s) RETURNING seq",
            (kind, entries, time.time()),
        ).fetchone()
        assert row is not None
        conn.execute("SELECT pg_notify(%s, %s)", (self._channel, str(row[0])))
        return int(row[0])

    def _insert_returning_id(
        self, conn: psycopg.Connection[Any], query: str, args: Sequence[Any]
    ) -> int:
        row = conn.execute(self._sql(query) + " RETURNING entry_id", args).fetchone()
        assert row is not None
        return int(row[0])

    # -- API keys -----------------------------------------------------------------------

    def add_api_key(self, record: ApiKeyRecord, audit: AuditEvent | None = None) -> None:
        try:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO api_keys (key_id, name, role, secret_hash, created_at, tenant)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
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
        except psycopg.errors.UniqueViolation:
            raise Conflict(f"an API key named {record.name!r} already exists") from None

    # -- cases and entries --------------------------------------------------------------

    def iter_entries(
        self, states: Sequence[EntryState], batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        wanted = [s.value for s in states]
        after = -1
        while True:
            rows = self._all(
                "SELECT entry_id, algorithm, value, state FROM entries"
                " WHERE entry_id > %s AND state = ANY(%s) ORDER BY entry_id LIMIT %s",
                (after, wanted, batch_size),
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
        with self._tx() as conn:
            self._insert_audit(conn, audit)
            # Stage the file with COPY before taking the change-log lock, so other
            # replicas' writes wait only for the final INSERT ... SELECT.
            conn.execute(
                "CREATE TEMP TABLE import_stage (algorithm TEXT NOT NULL, value BYTEA NOT NULL)"
                " ON COMMIT DROP"
            )
            seen = 0
            with (
                conn.cursor() as cur,
                cur.copy("COPY import_stage (algorithm, value) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text", "bytea"])
                for h in hashes:
                    seen += 1
                    copy.write_row((h.algorithm.value, h.value))
            conn.execute(_LOCK_SQL)
            added_seq = self._record_change(conn, "added", 0)
            vetted_seq = self._record_change(conn, "vetted", 0) if vetted else 0
            on_conflict = (
                "DO UPDATE SET state = 'vetted', vetted_at = excluded.vetted_at,"
                " changed_seq = %(vetted_seq)s WHERE entries.state = 'pending'"
                if vetted
                else "DO NOTHING"
            )
            row = conn.execute(
                "WITH written AS ("
                " INSERT INTO entries (algorithm, value, state, created_at, vetted_at,"
                "  changed_seq)"
                " SELECT DISTINCT algorithm, value, %(state)s::text, %(now)s::float8,"
                "  %(vetted_at)s::float8,"
                "  %(added_seq)s::bigint FROM import_stage"
                f" ON CONFLICT (algorithm, value) WHERE case_id IS NULL {on_conflict}"
                " RETURNING changed_seq)"
                " SELECT COUNT(*) FILTER (WHERE changed_seq = %(added_seq)s),"
                "  COUNT(*) FILTER (WHERE changed_seq = %(vetted_seq)s) FROM written",
                {
                    "state": state.value,
                    "now": now,
                    "vetted_at": now if vetted else None,
                    "added_seq": added_seq,
                    "vetted_seq": vetted_seq,
                },
            ).fetchone()
            assert row is not None
            added, changed = int(row[0]), int(row[1])
            for seq, count in ((added_seq, added), (vetted_seq, changed)):
                if seq:
                    self._settle_change(conn, seq, count)
        return ImportResult(added=added, vetted=changed, unchanged=seen - added - changed)

    # -- hits -----------------------------------------------------------------------------

    # -- the change log ---------------------------------------------------------------------

    def store_id(self) -> str:
        return self._store_id

    signals_changes = True

    def wait_for_change(self, timeout: float) -> bool:
        """Wait on LISTEN for a replica's NOTIFY. A fresh or broken listening
        connection returns True at once, so the caller catches up after LISTEN is in
        place and nothing committed in between is missed."""
        if self._listener is None or self._listener.closed:
            try:
                self._listener = psycopg.connect(self._url, autocommit=True, **self._connect_kwargs)
                self._listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
            except psycopg.OperationalError as exc:
                log.warning("cannot LISTEN on %s (%s); retrying", self._where, exc)
                self._drop_listener()
                time.sleep(min(timeout, 1.0))
            return True
        try:
            woken = any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except psycopg.OperationalError as exc:
            log.warning("lost the LISTEN connection to %s (%s); reconnecting", self._where, exc)
            self._drop_listener()
            return True
        return woken

    def _drop_listener(self) -> None:
        if self._listener is not None:
            with suppress(psycopg.Error):
                self._listener.close()
            self._listener = None
