"""Open the store named by the `store` setting: `sqlite` or a postgresql:// URL."""

from __future__ import annotations

from pathlib import Path

from service.store.base import Store


def open_store(store: str, data_dir: str | Path, pool_size: int = 8) -> Store:
    """SQLite keeps its file in `data_dir`; PostgreSQL is shared by every replica."""
    from service.store.postgresql import is_postgresql_url

    if store == "sqlite":
        from service.store.sqlite import SQLiteStore

        return SQLiteStore(data_dir)
    if is_postgresql_url(store):
        from service.store.postgresql import PostgresStore

        return PostgresStore(store, pool_size=pool_size)
    raise ValueError(
        "--store must be 'sqlite' or a PostgreSQL URL (postgresql://user@host:5432/dbname)"
    )
