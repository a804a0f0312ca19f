"""What only the PostgreSQL store does (tests/test_store_contract.py checks the rest), on a
real server in a schema of its own per test: replicas migrating together, change seqs
committing in order under concurrent writers (the advisory lock), NOTIFY waking other
replicas, and outages."""

from __future__ import annotations

import threading
import time

import pytest

from service.domain import AuditEvent, HashValue
from service.signals.md5 import MD5 as MD5_TYPE
from service.signals.pdq import PDQ as PDQ_TYPE
from service.store.postgresql import PostgresStore

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

PDQ = HashValue(PDQ_TYPE, bytes(range(32)))
MD5 = HashValue(MD5_TYPE, bytes(16))


def pdq(i: int) -> HashValue:
    return HashValue(PDQ_TYPE, i.to_bytes(4, "big") * 8)


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


def test_a_commit_on_one_replica_wakes_another(pg_url: str) -> None:
    """The writer's NOTIFY (sent in the same transaction as its change) wakes a replica
    waiting on LISTEN at commit; without a commit the wait times out."""
    writer, waiter = PostgresStore(pg_url, pool_size=1), PostgresStore(pg_url, pool_size=1)
    try:
        assert waiter.signals_changes
        assert waiter.wait_for_change(5.0)  # a fresh LISTEN: catch up at once
        assert not waiter.wait_for_change(0.2)  # nothing committed since
        writer.create_case("c", b"t" * 32, "sub", [PDQ], 1.0)
        assert waiter.wait_for_change(10.0)
        writer.append_audit(AuditEvent("a", "admin", "", "hits.listed", "", 1.0))
        assert not waiter.wait_for_change(0.2)  # the audit log is not the list: no NOTIFY
    finally:
        writer.close()
        waiter.close()


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
    from service.config import Settings
    from service.domain import Decision, Role
    from service.errors import Unavailable
    from service.runtime import Runtime
    from service.usecases.cases import Cases
    from service.usecases.check import Checks
    from tests.postgres import admin_connection, fresh_schema, terminate_connections

    with fresh_schema() as (url, schema):
        role = f"{schema}_user"
        admin = admin_connection()
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT ALL ON SCHEMA {schema} TO {role}")
        store = PostgresStore(url.replace("postgres@", f"{role}@"), pool_size=2, call_wait=0.5)
        try:
            runtime = Runtime(store, Settings())
            checks, keys = Checks(runtime), runtime.keys
            operator = create_api_key(store, Role.OPERATOR)
            submitter = create_api_key(store, Role.SUBMITTER)
            Cases(runtime).submit_case(keys.authenticate(submitter), [PDQ])
            store.import_entries([pdq(5)], True, 1.0)
            runtime.follower.catch_up()
            principal = keys.authenticate(operator)

            admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
            terminate_connections(schema)
            blocked = checks.check_upload(keys.authenticate(operator), None, [pdq(5)], "")
            assert blocked.decision is Decision.BLOCK
            far = HashValue(PDQ_TYPE, b"\xff" * 32)
            assert checks.check_upload(principal, None, [far], "").decision is Decision.ALLOW
            with pytest.raises(Unavailable, match="retry"):
                checks.check_upload(principal, None, [PDQ], "")  # REVIEW must record a hit
            with pytest.raises(Unavailable):
                runtime.follower.catch_up()

            admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT -1")
            deadline = time.monotonic() + 30  # the pool reconnects with a backoff
            while True:
                try:
                    review = checks.check_upload(keys.authenticate(operator), None, [PDQ], "")
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
