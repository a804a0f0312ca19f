"""The SQLite store on a real database file: migrations, durability, withdrawal, paging."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.domain import Algorithm, EntryState, HashValue, HitState, Match, Verdict
from service.errors import Conflict, NotFound
from service.store.migrations import load_migrations
from service.store.sql_shared import CASES_OPENED_SINCE
from service.store.sqlite import DB_FILENAME, SQLiteStore

PDQ = HashValue(Algorithm.PDQ, bytes(range(32)))
MD5 = HashValue(Algorithm.MD5, bytes(16))


def test_migrations_are_idempotent_and_refuse_newer_schema(tmp_path: Path) -> None:
    SQLiteStore(tmp_path).close()
    SQLiteStore(tmp_path).close()  # second start applies nothing and fails nothing
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [
            (len(load_migrations("sqlite")),)
        ]
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(Conflict, match="newer than this HashGuard knows"):
        SQLiteStore(tmp_path)


def test_hourly_case_count_uses_the_submitter_index(tmp_path: Path) -> None:
    SQLiteStore(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        plan = db.execute(f"EXPLAIN QUERY PLAN {CASES_OPENED_SINCE}", ("sub", 0.0)).fetchall()
    assert any("cases_by_submitter" in row[-1] for row in plan), plan


def test_writes_are_durable_across_reopen(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    ids = store.create_case("case-1", b"t" * 32, "sub", [PDQ, MD5], 1.0)
    store.close()
    reopened = SQLiteStore(tmp_path)
    rows = [row for batch in reopened.iter_entries([EntryState.PENDING]) for row in batch]
    assert [(r.entry_id, r.algorithm, r.value) for r in rows] == [
        (ids[0], Algorithm.PDQ, PDQ.value),
        (ids[1], Algorithm.MD5, MD5.value),
    ]
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_withdrawal_erases_values_and_closes_hits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    ids = store.create_case("case-1", b"t" * 32, "sub", [PDQ], 1.0)
    match = Match(ids[0], Algorithm.PDQ, 3, EntryState.PENDING, b"q" * 32)
    store.create_hit("hit-1", "op", "ref", [match], 2.0)
    withdrawn = store.withdraw_case("case-1", 3.0)
    assert [(e.entry_id, e.value) for e in withdrawn] == [(ids[0], PDQ.value)]
    assert store.withdraw_case("case-1", 4.0) == []  # twice is harmless
    assert store.get_hit("hit-1").state is HitState.WITHDRAWN  # type: ignore[union-attr]
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        assert db.execute("SELECT value FROM entries").fetchall() == [(None,)]
        assert db.execute("SELECT query_value FROM hit_matches").fetchall() == [(None,)]
    with pytest.raises(NotFound):
        store.withdraw_case("nope", 5.0)


def test_resolve_vets_only_pending_entries_and_only_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    ids = store.create_case("c", b"t" * 32, "sub", [PDQ, MD5], 1.0)
    matches = [Match(i, Algorithm.PDQ, 0, EntryState.PENDING, b"q" * 32) for i in ids]
    store.create_hit("h", "op", "ref", matches, 2.0)
    hit, vetted = store.resolve_hit("h", Verdict.CONFIRMED, "yes", "mod", 3.0)
    assert hit.state is HitState.CONFIRMED and vetted == sorted(ids)
    assert all(m.entry_state is EntryState.VETTED for m in hit.matches)
    with pytest.raises(Conflict):
        store.resolve_hit("h", Verdict.REJECTED, "", "mod", 4.0)
    with pytest.raises(NotFound):
        store.resolve_hit("missing", Verdict.REJECTED, "", "mod", 4.0)


def test_list_hits_pages_newest_first_without_gaps(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)
    (entry,) = store.create_case("c", b"t" * 32, "sub", [PDQ], 1.0)
    for i in range(7):
        store.create_hit(
            f"h{i}",
            "op",
            f"r{i}",
            [Match(entry, Algorithm.PDQ, i, EntryState.PENDING, bytes([i]) * 32)],
            float(i),
        )
    seen, before = [], None
    while True:
        page = store.list_hits(HitState.PENDING, 3, before)
        if not page:
            break
        seen += [hit.hit_id for _, hit in page]
        before = page[-1][0]
    assert seen == [f"h{i}" for i in reversed(range(7))]
    prior = store.prior_hits([(entry, bytes([2]) * 32), (entry, b"x" * 32)])
    key = (entry, bytes([2]) * 32)
    assert list(prior) == [key] and prior[key].hit_id == "h2"


def test_import_is_one_transaction(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path)

    def hashes_then_failure():
        yield PDQ
        yield MD5
        raise ValueError("line 3: broken")

    with pytest.raises(ValueError):
        store.import_entries(hashes_then_failure(), vetted=False, now=1.0)
    assert store.count_entries() == {}
    result = store.import_entries([PDQ, MD5, PDQ], vetted=True, now=1.0)
    assert (result.added, result.vetted, result.unchanged) == (2, 0, 1)
    assert store.count_entries() == {
        (Algorithm.PDQ, EntryState.VETTED): 1,
        (Algorithm.MD5, EntryState.VETTED): 1,
    }
