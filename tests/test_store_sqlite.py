"""What only the SQLite store does (tests/test_store_contract.py checks the rest): WAL
with full sync on one file, and migrations split into statements by SQLite itself."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from service.domain import HashValue
from service.signals.md5 import MD5 as MD5_TYPE
from service.store.sqlite import DB_FILENAME, SQLiteStore, _split_sql


def test_the_database_is_one_wal_file_in_the_data_directory(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    store.create_case("c", b"t" * 32, "sub", [HashValue(MD5_TYPE, bytes(16))], 1.0)
    with sqlite3.connect(tmp_path / "data" / DB_FILENAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1
    store.close()


def test_migration_statements_end_where_sqlite_says() -> None:
    script = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x TEXT DEFAULT 'one; two');\n"
        "CREATE TRIGGER t BEFORE DELETE ON a BEGIN SELECT RAISE(ABORT, 'no'); END;\n"
        "-- trailing comment\n"
    )
    statements = _split_sql(script)
    assert len(statements) == 2 and statements[1].endswith("END;")
    with pytest.raises(RuntimeError, match="unterminated statement"):
        _split_sql("CREATE TABLE b (x TEXT)")
