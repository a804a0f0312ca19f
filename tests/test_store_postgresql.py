"""The PostgreSQL store on a real server, in a schema of its own per test: migrations,
the change log's order under concurrent writers, imports, withdrawal, hits."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from service.domain import Algorithm, EntryState, HashValue, HitState, Match, Verdict
from service.errors import Conflict, NotFound
from service.store.migrations import load_migrations
from service.store.postgresql import PostgresStore
from service.store.sql_shared import CASES_OPENED_SINCE

PDQ = HashValue(Algorithm.PDQ, bytes(range(32)))
MD5 = HashValue(Algorithm.MD5, bytes(16))


def pdq(i: int) -> HashValue:
    return HashValue(Algorithm.PDQ, i.to_bytes(4, "big") * 8)


def test_migrations_are_idempotent_and_refuse_newer_schema(pg_url: str) -> None:
    first = PostgresStore(pg_url)
    second = PostgresStore(pg_url)  # a second replica applies nothing and fails nothing
    assert first.store_id() == second.store_id()
    second.close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [
            (len(load_migrations("postgresql")),)
        ]
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(Conflict, match="newer than this HashGuard knows"):
        PostgresStore(pg_url)
    first.close()


def test_hourly_case_count_uses_the_submitter_index(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("SET enable_seqscan = off")  # an empty table would be scanned anyway
        query = CASES_OPENED_SINCE.replace("?", "%s")
        plan = db.execute(f"EXPLAIN {query}", ("sub", 0.0)).fetchall()
    assert any("cases_by_submitter" in row[0] for row in plan), plan


def test_replicas_starting_together_migrate_once(pg_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresStore(pg_url, pool_size=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and len({s.store_id() for s in stores}) == 1
    for store in stores:
        store.close()


def test_case_lifecycle_and_change_log(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    ids = store.create_case("c", b"t" * 32, "sub", [PDQ, MD5], 1.0)
    assert store.change_head(0).seq == 1
    rows = [r for batch in store.changed_entries(0, 1) for r in batch]
    assert [(r.entry_id, r.state) for r in rows] == [(i, EntryState.PENDING) for i in ids]

    match = Match(ids[0], Algorithm.PDQ, 3, EntryState.PENDING, b"q" * 32)
    store.create_hit("h", "op", "ref", [match], 2.0)
    hit, vetted = store.resolve_hit("h", Verdict.CONFIRMED, "yes", "mod", 3.0)
    assert hit.state is HitState.CONFIRMED and vetted == [ids[0]]
    with pytest.raises(Conflict):
        store.resolve_hit("h", Verdict.REJECTED, "", "mod", 4.0)
    head = store.change_head(1)
    assert head.seq == 2 and head.oldest_unapplied_at is not None
    assert [(r.entry_id, r.state) for b in store.changed_entries(1, 2) for r in b] == [
        (ids[0], EntryState.VETTED)
    ]

    withdrawn = store.withdraw_case("c", 5.0)
    assert sorted(e.entry_id for e in withdrawn) == ids
    assert store.withdraw_case("c", 6.0) == []  # twice is harmless and logs nothing
    assert store.change_head(0).seq == 3 and store.withdrawn_since(2)
    later = [r for b in store.changed_entries(2, 3) for r in b]
    assert {(r.entry_id, r.state, r.value) for r in later} == {
        (i, EntryState.WITHDRAWN, b"") for i in ids
    }
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT value FROM entries").fetchall() == [(None,), (None,)]
        assert db.execute("SELECT query_value FROM hit_matches").fetchall() == [(None,)]
    with pytest.raises(NotFound):
        store.withdraw_case("nope", 7.0)
    store.close()


def test_import_counts_vets_and_is_idempotent(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    first = store.import_entries([pdq(i) for i in range(100)] + [pdq(1)], False, 1.0)
    assert (first.added, first.vetted, first.unchanged) == (100, 0, 1)
    again = store.import_entries([pdq(i) for i in range(150)], True, 2.0)
    assert (again.added, again.vetted, again.unchanged) == (50, 100, 0)
    assert store.count_entries() == {(Algorithm.PDQ, EntryState.VETTED): 150}
    head = store.change_head(0).seq
    states = {r.entry_id: r.state for b in store.changed_entries(0, head) for r in b}
    assert len(states) == 150 and set(states.values()) == {EntryState.VETTED}
    nothing = store.import_entries([pdq(i) for i in range(150)], True, 3.0)
    assert (nothing.added, nothing.vetted, nothing.unchanged) == (0, 0, 150)
    assert store.change_head(0).seq == head  # no empty changes are left in the log
    store.close()


def test_change_seqs_commit_in_order_under_concurrent_writers(pg_url: str) -> None:
    """A follower that saw seq N must have seen every lower seq: with writers on many
    threads (as on many replicas), record the head after every commit and check that
    every seq up to it is visible at that moment."""
    stores = [PostgresStore(pg_url, pool_size=2) for _ in range(4)]
    observer = PostgresStore(pg_url, pool_size=1)
    problems: list[str] = []
    stop = threading.Event()

    def write(store: PostgresStore, n: int) -> None:
        for i in range(25):
            store.create_case(f"c{n}-{i}", b"t" * 32, "sub", [pdq(n * 1000 + i)], 1.0)

    def observe() -> None:
        while not stop.is_set():
            head = observer.change_head(0).seq
            seen = {r.entry_id for b in observer.changed_entries(0, head) for r in b}
            if len(seen) != head:  # one entry per case: seq k added exactly one entry
                problems.append(f"head {head} but {len(seen)} entries visible")

    watcher = threading.Thread(target=observe)
    watcher.start()
    writers = [threading.Thread(target=write, args=(s, n)) for n, s in enumerate(stores)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    stop.set()
    watcher.join(30)
    assert not problems, problems[:3]
    assert observer.change_head(0).seq == 100
    for store in [*stores, observer]:
        store.close()


def test_unreachable_server_is_a_clear_error() -> None:
    from service.errors import Unavailable

    with pytest.raises(
        Unavailable, match=r"cannot connect to PostgreSQL at 127\.0\.0\.1:1/x"
    ) as err:
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/x", connect_timeout=1)
    assert "secret" not in str(err.value)


def test_checks_are_answered_from_memory_while_the_database_is_unreachable() -> None:
    """The replica's own database user is locked out and its connections ended (as in
    an outage): checks go on with the list in memory and the keys last read; a call
    that must write says UNAVAILABLE; once the database is back, everything works."""
    from service.access.keys import create_api_key
    from service.app import HashGuard
    from service.config import Settings
    from service.domain import Decision, Role
    from service.errors import Unavailable
    from tests.postgres import admin_connection, fresh_schema, terminate_connections

    with fresh_schema() as (url, schema):
        role = f"{schema}_user"
        admin = admin_connection()
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT ALL ON SCHEMA {schema} TO {role}")
        store = PostgresStore(url.replace("postgres@", f"{role}@"), pool_size=2, call_wait=0.5)
        try:
            app = HashGuard(store, Settings())
            operator = create_api_key(store, Role.OPERATOR)
            submitter = create_api_key(store, Role.SUBMITTER)
            app.submit_case(app.authenticate(submitter), [PDQ])
            store.import_entries([pdq(5)], True, 1.0)
            app.follower.catch_up()
            principal = app.authenticate(operator)

            admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
            terminate_connections(schema)
            blocked = app.check_upload(app.authenticate(operator), None, [pdq(5)], "")
            assert blocked.decision is Decision.BLOCK
            far = HashValue(Algorithm.PDQ, b"\xff" * 32)
            assert app.check_upload(principal, None, [far], "").decision is Decision.ALLOW
            with pytest.raises(Unavailable, match="retry"):
                app.check_upload(principal, None, [PDQ], "")  # REVIEW must record a hit
            with pytest.raises(Unavailable):
                app.follower.catch_up()

            admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
            deadline = time.monotonic() + 30  # the pool reconnects with a backoff
            while True:
                try:
                    review = app.check_upload(app.authenticate(operator), None, [PDQ], "")
                    break
                except Unavailable:
                    assert time.monotonic() < deadline, "the store never came back"
                    time.sleep(0.2)
            assert review.decision is Decision.REVIEW and review.hit_id
        finally:
            store.close()
            admin.execute(f"DROP OWNED BY {role} CASCADE")
            admin.execute(f"DROP ROLE {role}")
            admin.close()
