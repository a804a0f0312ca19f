"""PostgreSQL for tests: the local server (127.0.0.1:5432, user postgres, trust auth,
database `test`), one fresh schema per test or module, dropped afterwards.

Under CI=true a server that does not answer fails the test; elsewhere it is skipped with
the reason. HASHGUARD_TEST_POSTGRES overrides the server's URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

ADMIN_URL = os.environ.get("HASHGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = f"no PostgreSQL server answers at {ADMIN_URL} ({exc})".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}: the PostgreSQL tests must run in CI")
        pytest.skip(f"{reason}; these tests run in CI")


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """(store URL, schema name). The URL puts the store in the schema and names its
    connections after it, so a test can find and terminate exactly those."""
    admin = admin_connection()
    schema = f"hg_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{ADMIN_URL}?options=-csearch_path%3D{schema}&application_name={schema}", schema
    finally:
        # Connections left by a killed replica would keep locks: end them first.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (schema,),
        )
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def connection_count(schema: str) -> int:
    """How many backend connections the store in `schema` holds right now."""
    with admin_connection() as admin:
        row = admin.execute(
            "SELECT COUNT(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (schema,),
        ).fetchone()
    return int(row[0]) if row else 0


def terminate_connections(schema: str) -> int:
    """End every backend connection of the store in `schema`, as a database restart
    would; returns how many there were."""
    with admin_connection() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (schema,),
        ).fetchall()
    return len(rows)
