"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.index.hamming import warm_up_kernels
from tests.postgres import fresh_schema


@pytest.fixture(scope="session", autouse=True)
def compiled_index_search() -> None:
    """Compile the index's search once before any test: on a fresh checkout numba has no
    cache yet, and servers that tests start side by side would each compile it (~10 s
    apiece on 2 cores) instead of loading the cache this writes."""
    warm_up_kernels()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL store URL in a schema of its own (see tests/postgres.py)."""
    with fresh_schema() as (url, _schema):
        yield url
