"""Data from before tenants (schema version 2) keeps working after migration 0003: old
keys and hits belong to the tenant 'default'. (That the audit log is append-only in both
stores is checked by tests/test_store_contract.py.)"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from service.access.auth import digest, new_api_key
from service.store.migrations import load_migrations
from service.store.sqlite import DB_FILENAME
from tests.postgres import fresh_schema
from tests.support import ServerProcess, Stubs, bearer, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

OLD_VERSION = 2


def _old_key_rows() -> tuple[str, list[tuple[str, tuple[Any, ...]]]]:
    """An operator key and a pending hit as schema version 2 held them."""
    key_id, key = new_api_key()
    now = time.time()
    return key, [
        (
            "INSERT INTO api_keys (key_id, name, role, secret_hash, created_at)"
            " VALUES (?, 'old-operator', 'operator', ?, ?)",
            (key_id, digest(key), now),
        ),
        (
            "INSERT INTO hits (hit_id, operator, content_ref, state, created_at)"
            " VALUES ('old-hit', 'old-operator', 'ref', 'pending', ?)",
            (now,),
        ),
    ]


def _make_old_sqlite(data_dir: Path) -> str:
    key, rows = _old_key_rows()
    with sqlite3.connect(data_dir / DB_FILENAME) as db:
        for _, script in load_migrations("sqlite")[:OLD_VERSION]:
            db.executescript(script)
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (?)", (OLD_VERSION,))
        for statement, args in rows:
            db.execute(statement, args)
    return key


def _make_old_postgresql(url: str) -> str:
    key, rows = _old_key_rows()
    with psycopg.connect(url, autocommit=True) as db:
        for _, script in load_migrations("postgresql")[:OLD_VERSION]:
            db.execute(script.encode())
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (%s)", (OLD_VERSION,))
        for statement, args in rows:
            db.execute(statement.replace("?", "%s"), args)
    return key


@pytest.fixture(params=["sqlite", "postgresql"])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[list[str], str]]:
    """(--data-dir/--store arguments, the old operator key) of a version-2 store."""
    if request.param == "sqlite":
        yield ["--data-dir", str(tmp_path)], _make_old_sqlite(tmp_path)
        return
    with fresh_schema() as (url, _schema):
        yield ["--data-dir", str(tmp_path), "--store", url], _make_old_postgresql(url)


def test_keys_and_hits_without_a_tenant_still_work(old_store: tuple[list[str], str]) -> None:
    store_args, old_key = old_store
    data_dir = Path(store_args[1])
    moderator = (
        run_cli("keys", "add", *store_args, "--role", "moderator", "--name", "new-moderator")
        .stdout.strip()
        .splitlines()[-1]
    )  # no --tenant: the default tenant, like the old keys
    server = ServerProcess(data_dir, extra_args=store_args[2:]).start()
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            reply = stubs.match.CheckUpload(
                pb.CheckUploadRequest(
                    hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_MD5, value=bytes(range(16)))]
                ),
                metadata=bearer(old_key),
            )
            assert reply.decision == pb.DECISION_ALLOW
            hits = stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(moderator)).hits
            assert [(h.hit_id, h.tenant) for h in hits] == [("old-hit", "default")]
            with pytest.raises(grpc.RpcError) as denied:  # roles still hold for old keys
                stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(old_key))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        assert server.stop() == 0, server.log()
    listing = run_cli("keys", "list", *store_args).stdout
    assert "old-operator\toperator\tdefault\t" in listing
