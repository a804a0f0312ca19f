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
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from service.domain import AuditEvent, EntryState, HashValue
from service.errors import Unavailable
from service.store.records import ImportResult
from service.store.sql import rows
from service.store.sql.audit import insert_audit
from service.store.sql.database import Database, Tx
from service.store.sql.dialect import Dialect
from service.store.sql.store import SQLStore

log = logging.getLogger("hashguard.store")

_CALL_WAIT_SECONDS = 3.0

# Advisory lock keys are two ints, (ours, the schema's hash), so lists in separate
# schemas of one database do not wait for each other.
POSTGRESQL = Dialect(
    name="postgresql",
    placeholder="%s",
    for_update=" FOR UPDATE",
    returning=True,
    lock_change_log="SELECT pg_advisory_xact_lock(74657, hashtext(current_schema()))",
    lock_migrations="SELECT pg_advisory_xact_lock(74658, hashtext(current_schema()))",
    notify="SELECT pg_notify(?, ?)",
    changes_use_wall_clock=True,
    unique_violation=psycopg.errors.UniqueViolation,
    array_parameters=True,
)


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


class PostgresDatabase(Database):
    def __init__(self, url: str, pool_size: int, connect_timeout: float, call_wait: float) -> None:
        """`call_wait`: how long a call waits for a connection before Unavailable."""
        super().__init__(POSTGRESQL)
        self.url = url
        self.where = describe_url(url)
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ValueError(f"--store is not a valid PostgreSQL URL: {exc}") from None
        self.connect_kwargs: dict[str, Any] = {}
        if "application_name" not in params:
            self.connect_kwargs["application_name"] = "hashguard"
        if "connect_timeout" not in params:
            self.connect_kwargs["connect_timeout"] = max(1, int(connect_timeout))
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=self.connect_kwargs,
            check=ConnectionPool.check_connection,
            timeout=call_wait,
            name="hashguard",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg.OperationalError as exc:
            self._pool.close()
            raise Unavailable(f"cannot connect to PostgreSQL at {self.where}: {exc}") from None

    @contextmanager
    def _tx(self) -> Iterator[Tx]:
        """One transaction on a pooled connection: committed on success, rolled back on
        any error. A lost connection becomes Unavailable."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield Tx(conn, self.dialect, self.channel)
        except psycopg.OperationalError as exc:
            raise Unavailable(
                f"the PostgreSQL connection ({self.where}) failed: {exc}. The call was "
                "not completed; retry it"
            ) from None

    def read(self) -> AbstractContextManager[Tx]:
        return self._tx()

    def change(self) -> AbstractContextManager[Tx]:
        return self._tx()

    def close(self) -> None:
        self._pool.close()

    def run_script(self, tx: Tx, script: str) -> None:
        tx.conn.execute(script.encode())  # bytes: no parameters, many statements


class PostgresStore(SQLStore):
    def __init__(
        self,
        url: str,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        call_wait: float = _CALL_WAIT_SECONDS,
    ) -> None:
        self._pg = PostgresDatabase(url, pool_size, connect_timeout, call_wait)
        self._listener: psycopg.Connection[Any] | None = None
        super().__init__(self._pg)
        self._pg.channel = f"hashguard_changes_{self.store_id()}"

    def close(self) -> None:
        self._drop_listener()
        super().close()

    def _import_entries(
        self, hashes: Iterable[HashValue], vetted: bool, now: float, audit: AuditEvent | None
    ) -> ImportResult:
        state = EntryState.VETTED if vetted else EntryState.PENDING
        with self._db.change() as tx:
            insert_audit(tx, audit)
            # Stage the file with COPY before taking the change-log lock, so other
            # replicas' writes wait only for the final INSERT ... SELECT.
            tx.execute(
                "CREATE TEMP TABLE import_stage (algorithm TEXT NOT NULL, value BYTEA NOT NULL)"
                " ON COMMIT DROP"
            )
            seen = 0
            with (
                tx.conn.cursor() as cur,
                cur.copy("COPY import_stage (algorithm, value) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(["text", "bytea"])
                for h in hashes:
                    seen += 1
                    copy.write_row((h.algorithm.name, h.value))
            tx.lock_change_log()
            added_seq = tx.record_change("added", 0, now)
            vetted_seq = tx.record_change("vetted", 0, now) if vetted else 0
            on_conflict = (
                "DO UPDATE SET state = 'vetted', vetted_at = excluded.vetted_at,"
                " changed_seq = %(vetted_seq)s WHERE entries.state = 'pending'"
                if vetted
                else "DO NOTHING"
            )
            # Named parameters: run on the driver's connection, as written.
            (counts,) = rows.named(
                tx.conn.execute(
                    "WITH written AS ("
                    " INSERT INTO entries (algorithm, value, state, created_at, vetted_at,"
                    "  changed_seq)"
                    " SELECT DISTINCT algorithm, value, %(state)s::text, %(now)s::float8,"
                    "  %(vetted_at)s::float8,"
                    "  %(added_seq)s::bigint FROM import_stage"
                    f" ON CONFLICT (algorithm, sha256(value)) WHERE case_id IS NULL {on_conflict}"
                    " RETURNING changed_seq)"
                    " SELECT COUNT(*) FILTER (WHERE changed_seq = %(added_seq)s) AS added,"
                    "  COUNT(*) FILTER (WHERE changed_seq = %(vetted_seq)s) AS vetted"
                    " FROM written",
                    {
                        "state": state.value,
                        "now": now,
                        "vetted_at": now if vetted else None,
                        "added_seq": added_seq,
                        "vetted_seq": vetted_seq,
                    },
                )
            )
            added, changed = int(counts["added"]), int(counts["vetted"])
            for seq, count in ((added_seq, added), (vetted_seq, changed)):
                if seq:
                    tx.settle_change(seq, count)
        return ImportResult(added=added, vetted=changed, unchanged=seen - added - changed)

    # -- waking followers -----------------------------------------------------------------

    signals_changes = True

    def wait_for_change(self, timeout: float) -> bool:
        """Wait on LISTEN for a replica's NOTIFY. A fresh or broken listening
        connection returns True at once, so the caller catches up after LISTEN is in
        place and nothing committed in between is missed."""
        if self._listener is None or self._listener.closed:
            try:
                self._listener = psycopg.connect(
                    self._pg.url, autocommit=True, **self._pg.connect_kwargs
                )
                self._listener.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(self._pg.channel or ""))
                )
            except psycopg.OperationalError as exc:
                log.warning("cannot LISTEN on %s (%s); retrying", self._pg.where, exc)
                self._drop_listener()
                time.sleep(min(timeout, 1.0))
            return True
        try:
            woken = any(True for _ in self._listener.notifies(timeout=timeout, stop_after=1))
        except psycopg.OperationalError as exc:
            log.warning("lost the LISTEN connection to %s (%s); reconnecting", self._pg.where, exc)
            self._drop_listener()
            return True
        return woken

    def _drop_listener(self) -> None:
        if self._listener is not None:
            with suppress(psycopg.Error):
                self._listener.close()
            self._listener = None
