"""The store contract: every backend (SQLite and PostgreSQL today, any future one) runs
these same checks on a real database of its own: migrations, durability, cases and
withdrawal, hits and their review, imports, the change log, keys, the audit log and the
interface's argument checks. What only one backend does lives in tests/test_store_sqlite.py
and tests/test_store_postgresql.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from service.domain import (
    AuditEvent,
    EntryState,
    HashValue,
    HitState,
    Match,
    MatchPart,
    Role,
    Span,
    Verdict,
)
from service.errors import Conflict, InvalidInput, NotFound
from service.signals.md5 import MD5 as MD5_TYPE
from service.signals.pdq import PDQ as PDQ_TYPE
from service.signals.vpdq import VPDQ
from service.signals.vpdq_frames import FrameHash, pack
from service.store import ApiKeyRecord, AuditQuery, ReviewRules, Store
from service.store.migrations import load_migrations
from service.store.postgresql import PostgresStore
from service.store.sql.cases import CASES_OPENED_SINCE
from service.store.sqlite import DB_FILENAME, SQLiteStore
from tests.postgres import fresh_schema

PDQ = HashValue(PDQ_TYPE, bytes(range(32)))
MD5 = HashValue(MD5_TYPE, bytes(16))


def pdq(i: int) -> HashValue:
    return HashValue(PDQ_TYPE, i.to_bytes(4, "big") * 8)


def match(entry_id: int, query: bytes = b"q" * 32, distance: int = 0) -> Match:
    return Match(entry_id, PDQ_TYPE, distance, EntryState.PENDING, query)


@dataclass
class Backend:
    """One backend on a database of this test's own."""

    name: str
    open: Callable[[], Store]  # a store on the database (again: as a restart would)
    raw: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]  # SQL outside HashGuard
    plan: Callable[[str, Sequence[Any]], str]  # the database's query plan, as text


def _sqlite(data_dir: Path) -> Backend:
    def raw(statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(data_dir / DB_FILENAME) as db:
            return db.execute(statement, args).fetchall()

    def plan(query: str, args: Sequence[Any]) -> str:
        return str(raw(f"EXPLAIN QUERY PLAN {query}", args))

    return Backend("sqlite", lambda: SQLiteStore(data_dir), raw, plan)


def _postgresql(url: str) -> Backend:
    def raw(statement: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as db:
            cursor = db.execute(statement.replace("?", "%s").encode(), args or None)
            return cursor.fetchall() if cursor.description else []

    def plan(query: str, args: Sequence[Any]) -> str:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("SET enable_seqscan = off")  # an empty table would be scanned anyway
            return str(db.execute(f"EXPLAIN {query.replace('?', '%s')}", args).fetchall())

    return Backend("postgresql", lambda: PostgresStore(url), raw, plan)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield _sqlite(tmp_path)
        return
    with fresh_schema() as (url, _schema):
        yield _postgresql(url)


@pytest.fixture
def store(backend: Backend) -> Iterator[Store]:
    opened = backend.open()
    yield opened
    opened.close()


def test_migrations_are_idempotent_and_refuse_a_newer_schema(backend: Backend) -> None:
    first = backend.open()
    second = backend.open()  # a restart, or a second replica: applies nothing, fails nothing
    assert first.store_id() == second.store_id() != ""
    second.close()
    assert backend.raw("SELECT version FROM schema_version", ()) == [
        (len(load_migrations(backend.name)),)
    ]
    backend.raw("UPDATE schema_version SET version = 99", ())
    with pytest.raises(Conflict, match="newer than this HashGuard knows"):
        backend.open()
    first.close()


def test_hourly_case_count_uses_the_submitter_index(store: Store, backend: Backend) -> None:
    assert "cases_by_submitter" in backend.plan(CASES_OPENED_SINCE, ("sub", 0.0))
    store.create_case("c1", b"t" * 32, "sub", [PDQ], 10.0)
    store.create_case("c2", b"t" * 32, "sub", [MD5], 20.0)
    store.create_case("c3", b"t" * 32, "other", [pdq(3)], 30.0)
    assert store.cases_opened_since("sub", 15.0) == (1, 20.0)
    assert store.cases_opened_since("sub", 0.0) == (2, 10.0)
    assert store.cases_opened_since("nobody", 0.0) == (0, None)


def test_writes_are_durable_across_reopen(backend: Backend) -> None:
    store = backend.open()
    ids = store.create_case("case-1", b"t" * 32, "sub", [PDQ, MD5], 1.0)
    store.close()
    reopened = backend.open()
    rows = [row for batch in reopened.iter_entries([EntryState.PENDING]) for row in batch]
    assert [(r.entry_id, r.algorithm, r.value) for r in rows] == [
        (ids[0], PDQ_TYPE, PDQ.value),
        (ids[1], MD5_TYPE, MD5.value),
    ]
    auth = reopened.get_case_auth("case-1")
    assert auth is not None and auth.token_hash == b"t" * 32 and auth.state.value == "active"
    assert reopened.get_case_auth("nope") is None
    reopened.close()


def test_case_lifecycle_and_the_change_log(store: Store, backend: Backend) -> None:
    ids = store.create_case("c", b"t" * 32, "sub", [PDQ, MD5], 1.0)
    assert store.change_head(0).seq == 1
    assert [(r.entry_id, r.state) for b in store.changed_entries(0, 1) for r in b] == [
        (i, EntryState.PENDING) for i in ids
    ]
    store.create_hit("h", "op", "ref", [match(ids[0])], 2.0)
    hit, vetted = store.resolve_hit("h", Verdict.CONFIRMED, "yes", "mod", 3.0)
    assert hit.state is HitState.CONFIRMED and vetted == [ids[0]]
    with pytest.raises(Conflict):
        store.resolve_hit("h", Verdict.REJECTED, "", "mod", 4.0)
    with pytest.raises(NotFound):
        store.resolve_hit("missing", Verdict.REJECTED, "", "mod", 4.0)
    head = store.change_head(1)
    assert head.seq == 2 and head.oldest_unapplied_at is not None
    assert store.change_head(2).oldest_unapplied_at is None  # nothing after 2 yet
    assert [(r.entry_id, r.state) for b in store.changed_entries(1, 2) for r in b] == [
        (ids[0], EntryState.VETTED)
    ]
    status = store.case_status("c")
    assert (status.entries_pending, status.entries_vetted, status.hits_confirmed) == (1, 1, 1)

    assert not store.withdrawn_since(2)
    withdrawn = store.withdraw_case("c", 5.0)
    assert [(e.entry_id, e.value) for e in withdrawn] == [(ids[0], PDQ.value), (ids[1], MD5.value)]
    assert store.withdraw_case("c", 6.0) == []  # twice is harmless and logs nothing
    assert store.change_head(0).seq == 3 and store.withdrawn_since(2)
    assert {(r.entry_id, r.state, r.value) for b in store.changed_entries(2, 3) for r in b} == {
        (i, EntryState.WITHDRAWN, b"") for i in ids
    }
    # The victim's hash values and the uploads' hashes that matched them are erased.
    assert backend.raw("SELECT value FROM entries", ()) == [(None,), (None,)]
    assert backend.raw("SELECT query_value FROM hit_matches", ()) == [(None,)]
    status = store.case_status("c")
    assert (status.state.value, status.entries_withdrawn) == ("withdrawn", 2)
    with pytest.raises(NotFound):
        store.withdraw_case("nope", 7.0)
    with pytest.raises(NotFound):
        store.case_status("nope")


def test_withdrawal_closes_hits_that_matched_only_its_entries(store: Store) -> None:
    (mine,) = store.create_case("mine", b"t" * 32, "sub", [PDQ], 1.0)
    (other,) = store.create_case("other", b"t" * 32, "sub", [MD5], 1.0)
    store.create_hit("only-mine", "op", "r1", [match(mine)], 2.0)
    store.create_hit("both", "op", "r2", [match(mine), match(other, b"z" * 32)], 2.0)
    store.withdraw_case("mine", 3.0)
    assert store.get_hit("only-mine").state is HitState.WITHDRAWN  # type: ignore[union-attr]
    assert store.get_hit("both").state is HitState.PENDING  # type: ignore[union-attr]
    assert store.count_hits(HitState.WITHDRAWN) == 1


def test_resolve_vets_only_pending_entries_and_only_once(store: Store) -> None:
    ids = store.create_case("c", b"t" * 32, "sub", [PDQ, MD5], 1.0)
    store.create_hit("h", "op", "ref", [match(i) for i in ids], 2.0)
    hit, vetted = store.resolve_hit("h", Verdict.CONFIRMED, "yes", "mod", 3.0)
    assert hit.state is HitState.CONFIRMED and vetted == sorted(ids)
    assert (hit.note, hit.resolved_by, hit.resolved_at) == ("yes", "mod", 3.0)
    assert all(m.entry_state is EntryState.VETTED for m in hit.matches)
    store.create_hit("h2", "op", "ref", [match(ids[0], b"w" * 32)], 4.0)
    _, again = store.resolve_hit("h2", Verdict.CONFIRMED, "", "mod", 5.0)
    assert again == []  # already vetted: nothing changes, nothing is logged
    assert store.change_head(0).seq == 2


def test_a_confirmation_vets_partial_matches_only_by_choice_and_from_more_tenants(
    store: Store,
) -> None:
    whole, strip = store.create_case("c", b"t" * 32, "sub", [PDQ, pdq(7)], 1.0)
    strip_match = Match(strip, PDQ_TYPE, 4, EntryState.PENDING, b"s" * 32, MatchPart.STRIP)
    store.create_hit("a1", "op-a", "r", [match(whole), strip_match], 2.0, tenant="a")
    hit, vetted = store.resolve_hit("a1", Verdict.CONFIRMED, "", "mod-a", 3.0)
    assert vetted == [whole]  # the strip was not agreed to
    assert {(m.entry_id, m.part, m.agreed) for m in hit.matches} == {
        (whole, MatchPart.WHOLE, True),
        (strip, MatchPart.STRIP, False),
    }
    by_choice = ReviewRules(vet_partial=True)  # two tenants' agreement for a partial match
    store.create_hit("b1", "op-b", "r", [strip_match], 4.0, tenant="b")
    store.create_hit("c1", "op-c", "r", [strip_match], 4.0, tenant="c")
    assert store.resolve_hit("b1", Verdict.CONFIRMED, "", "mod-b", 5.0, rules=by_choice)[1] == []
    hit, vetted = store.resolve_hit("c1", Verdict.CONFIRMED, "", "mod-c", 6.0, rules=by_choice)
    assert vetted == [strip] and hit.matches[0].agreed


def test_tenants_vet_and_dispute_by_the_rules(store: Store) -> None:
    rules = ReviewRules(vet_tenants=2, dispute_tenants=2)
    (entry,) = store.create_case("c", b"t" * 32, "sub", [PDQ], 1.0)
    store.create_hit("a1", "op-a", "r", [match(entry, b"a" * 32)], 2.0, tenant="a")
    store.create_hit("b1", "op-b", "r", [match(entry, b"b" * 32)], 2.0, tenant="b")
    with pytest.raises(NotFound):  # another tenant's hit is not found
        store.resolve_hit("a1", Verdict.REJECTED, "", "mod-b", 3.0, tenant="b", rules=rules)
    audit = AuditEvent("mod-a", "moderator", "a", "hit.resolved", "hit a1", 3.0, "rejected")
    store.resolve_hit("a1", Verdict.REJECTED, "", "mod-a", 3.0, "a", rules, audit)
    assert store.disputed_among([entry]) == set()  # one tenant is not enough
    store.resolve_hit("b1", Verdict.REJECTED, "", "mod-b", 4.0, "b", rules, audit)
    assert store.disputed_among([entry, entry + 1]) == {entry}
    (disputed,) = store.list_disputed(10, 0)
    assert (disputed.entry_id, disputed.state, disputed.disputed_at) == (
        entry,
        EntryState.PENDING,
        4.0,
    )
    assert (disputed.rejecting_tenants, disputed.confirming_tenants) == (2, 0)
    assert store.list_disputed(10, entry) == []
    outcome = store.read_audit(AuditQuery(action="entries."))
    assert [(e.action, e.target) for e in outcome] == [("entries.disputed", f"entries {entry}")]


def test_list_hits_pages_newest_first_and_prior_hits_find_the_latest(store: Store) -> None:
    (entry,) = store.create_case("c", b"t" * 32, "sub", [PDQ], 1.0)
    for i in range(7):
        tenant = "a" if i % 2 else "b"
        store.create_hit(f"h{i}", "op", f"r{i}", [match(entry, bytes([i]) * 32, i)], i, tenant)
    seen: list[str] = []
    before = None
    while page := store.list_hits(HitState.PENDING, 3, before):
        seen += [hit.hit_id for _, hit in page]
        before = page[-1][0]
    assert seen == [f"h{i}" for i in reversed(range(7))]
    assert [h.hit_id for _, h in store.list_hits(None, 10, None, tenant="a")] == ["h5", "h3", "h1"]
    key = (entry, bytes([2]) * 32)
    prior = store.prior_hits([key, (entry, b"x" * 32)])
    assert list(prior) == [key] and prior[key].hit_id == "h2"
    assert store.prior_hits([key], tenant="a") == {}
    assert store.prior_hits([]) == {}
    (h3,) = [h for _, h in store.list_hits(None, 10, None) if h.hit_id == "h3"]
    assert (h3.tenant, h3.content_ref, [m.distance for m in h3.matches]) == ("a", "r3", [3])


def test_import_is_one_transaction(store: Store) -> None:
    def hashes_then_failure() -> Iterator[HashValue]:
        yield PDQ
        yield MD5
        raise ValueError("line 3: broken")

    with pytest.raises(ValueError):
        store.import_entries(hashes_then_failure(), vetted=False, now=1.0)
    assert store.count_entries() == {}
    assert store.change_head(0).seq == 0
    result = store.import_entries([PDQ, MD5, PDQ], vetted=True, now=1.0)
    assert (result.added, result.vetted, result.unchanged) == (2, 0, 1)
    assert store.count_entries() == {
        (PDQ_TYPE, EntryState.VETTED): 1,
        (MD5_TYPE, EntryState.VETTED): 1,
    }


def test_import_counts_vets_and_is_idempotent(store: Store) -> None:
    first = store.import_entries([pdq(i) for i in range(100)] + [pdq(1)], False, 1.0)
    assert (first.added, first.vetted, first.unchanged) == (100, 0, 1)
    again = store.import_entries([pdq(i) for i in range(150)], True, 2.0)
    assert (again.added, again.vetted, again.unchanged) == (50, 100, 0)
    assert store.count_entries() == {(PDQ_TYPE, EntryState.VETTED): 150}
    head = store.change_head(0).seq
    states = {r.entry_id: r.state for b in store.changed_entries(0, head) for r in b}
    assert len(states) == 150 and set(states.values()) == {EntryState.VETTED}
    nothing = store.import_entries([pdq(i) for i in range(150)], True, 3.0)
    assert (nothing.added, nothing.vetted, nothing.unchanged) == (0, 0, 150)
    assert store.change_head(0).seq == head  # no empty changes are left in the log


def test_entries_and_changes_come_in_batches_in_order(store: Store) -> None:
    store.import_entries([pdq(i) for i in range(10)], False, 1.0)
    ids = store.create_case("c", b"t" * 32, "sub", [pdq(100), pdq(101)], 2.0)
    batches = list(store.iter_entries([EntryState.PENDING], batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 4]
    every = [r.entry_id for b in batches for r in b]
    assert every == sorted(every) and every[-2:] == ids
    store.withdraw_case("c", 3.0)
    assert [r.entry_id for b in store.iter_entries([EntryState.WITHDRAWN]) for r in b] == ids
    head = store.change_head(0).seq
    changed = list(store.changed_entries(0, head, batch_size=3))
    assert [len(b) for b in changed] == [3, 3, 3, 3]
    # In change order: the import's ten, then the case's two, now withdrawn.
    assert [r.state for b in changed for r in b][-2:] == [EntryState.WITHDRAWN] * 2


def test_api_keys(store: Store) -> None:
    record = ApiKeyRecord("k1", "forum", Role.OPERATOR, b"s" * 32, 1.0, tenant="forum-a")
    audit = AuditEvent("cli:root", "local", "", "key.added", "key forum", 1.0)
    store.add_api_key(record, audit)
    with pytest.raises(Conflict, match="already exists"):
        store.add_api_key(ApiKeyRecord("k2", "forum", Role.ADMIN, b"x" * 32, 2.0))
    assert store.get_api_key("k1") == record and store.get_api_key("k2") is None
    store.add_api_key(ApiKeyRecord("k3", "another", Role.MODERATOR, b"m" * 32, 3.0))
    assert [k.name for k in store.list_api_keys()] == ["another", "forum"]
    assert store.count_api_keys() == 2
    rotated = AuditEvent("cli:root", "local", "", "key.rotated", "key forum", 4.0)
    store.rotate_api_key("forum", b"n" * 32, 4.0, rotated)
    now = store.get_api_key("k1")
    assert now is not None and (now.secret_hash, now.rotated_at) == (b"n" * 32, 4.0)
    revoked = AuditEvent("cli:root", "local", "", "key.revoked", "key forum", 5.0)
    store.revoke_api_key("forum", 5.0, revoked)
    assert store.count_api_keys() == 1
    with pytest.raises(Conflict, match="already revoked"):
        store.revoke_api_key("forum", 6.0, revoked)
    with pytest.raises(Conflict, match="already revoked"):
        store.rotate_api_key("forum", b"o" * 32, 6.0, rotated)
    with pytest.raises(NotFound):
        store.revoke_api_key("nobody", 6.0, revoked)
    assert [e.action for e in store.read_audit(AuditQuery(actor="cli:root"))] == [
        "key.revoked",
        "key.rotated",
        "key.added",
    ]


def test_audit_log_filters_and_is_append_only(store: Store, backend: Backend) -> None:
    for i, action in enumerate(["hit.created", "hit.resolved", "case.submitted", "hits.listed"]):
        store.append_audit(AuditEvent("mod", "moderator", "a", action, f"t{i}", float(i), "d"))
    store.append_audit(AuditEvent("op", "operator", "b", "hit.created", "t9", 9.0))
    newest = store.read_audit(AuditQuery())
    assert [e.target for e in newest] == ["t9", "t3", "t2", "t1", "t0"]
    assert newest[1].seq > newest[2].seq and newest[1].detail == "d"
    assert [e.target for e in store.read_audit(AuditQuery(action="hit."))] == ["t9", "t1", "t0"]
    assert [e.target for e in store.read_audit(AuditQuery(action="hit.created"))] == ["t9", "t0"]
    assert [e.target for e in store.read_audit(AuditQuery(actor="mod", since=2.0))] == ["t3", "t2"]
    assert len(store.read_audit(AuditQuery(limit=2))) == 2
    for statement in ("UPDATE audit_log SET actor = 'someone-else'", "DELETE FROM audit_log"):
        with pytest.raises((sqlite3.DatabaseError, psycopg.Error), match="append-only"):
            backend.raw(statement, ())
    assert len(store.read_audit(AuditQuery())) == 5


def test_arguments_are_checked_once_for_every_backend(store: Store) -> None:
    """The interface's public methods refuse what no backend could do right, with
    INVALID_ARGUMENT, before any SQL runs (and never by an `assert`)."""
    refused: list[Callable[[], object]] = [
        lambda: store.create_case("c", b"t" * 32, "sub", [], 1.0),
        lambda: store.create_case("", b"t" * 32, "sub", [PDQ], 1.0),
        lambda: store.create_hit("h", "op", "ref", [], 1.0),
        lambda: list(store.iter_entries([])),
        lambda: list(store.iter_entries([EntryState.PENDING], batch_size=0)),
        lambda: list(store.changed_entries(0, 1, batch_size=0)),
        lambda: store.list_hits(None, -1, None),
        lambda: store.list_disputed(-1, 0),
        lambda: store.read_audit(AuditQuery(limit=-1)),
        lambda: store.resolve_hit("h", Verdict.CONFIRMED, "", "m", 1.0, rules=ReviewRules(0, 2)),
        lambda: store.add_api_key(ApiKeyRecord("k", "n", Role.ADMIN, b"", 1.0)),
    ]
    for call in refused:
        with pytest.raises(InvalidInput):
            call()
    assert store.count_entries() == {} and store.change_head(0).seq == 0


def video(seconds: int, seed: int) -> HashValue:
    """A vpdq value of `seconds` frames: past what a B-tree entry may hold from 74 on."""
    frames = [
        FrameHash(bytes((seed * 31 + n * 7 + i) % 256 for i in range(32)), 90, float(n))
        for n in range(seconds)
    ]
    return HashValue(VPDQ, pack(frames))


def test_variable_length_values_and_video_spans(store: Store) -> None:
    """A vpdq value of an hour (133 KB) is stored, imported (idempotently: PostgreSQL
    keeps imported values unique by their SHA-256) and read back whole; a hit keeps the
    seconds each video match spans, and photos' matches keep none."""
    long, short = video(3600, 1), video(5, 2)
    assert len(long.value) == 3600 * 37
    ids = store.create_case("c", b"t" * 32, "sub", [long, short, PDQ], 1.0)
    assert store.import_entries([video(3600, 3), short], vetted=False, now=2.0).added == 2
    again = store.import_entries([video(3600, 3), short], vetted=True, now=3.0)
    assert (again.added, again.vetted, again.unchanged) == (0, 2, 0)
    rows = {r.entry_id: r for b in store.iter_entries([EntryState.PENDING]) for r in b}
    assert rows[ids[0]].value == long.value and rows[ids[1]].value == short.value
    span = Span(12.25, 17.5, 30.0, 35.0)
    segment = Match(ids[0], VPDQ, 9, EntryState.PENDING, b"k" * 32, MatchPart.SEGMENT, span=span)
    store.create_hit("h", "op", "ref", [segment, match(ids[2])], 4.0)
    hit = store.get_hit("h")
    assert hit is not None
    assert {m.entry_id: (m.part, m.span) for m in hit.matches} == {
        ids[0]: (MatchPart.SEGMENT, span),
        ids[2]: (MatchPart.WHOLE, None),
    }
