"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import fresh_schema


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL store URL in a schema of its own (see tests/postgres.py)."""
    with fresh_schema() as (url, _schema):
        yield url
