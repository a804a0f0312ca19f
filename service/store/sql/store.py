"""`SQLStore`: the whole store in SQL, one class per noun over one `Database`. A backend
subclasses it to supply its `Database` and its bulk import."""

from __future__ import annotations

from service.store.base import Store
from service.store.sql.audit import SQLAuditLog
from service.store.sql.cases import SQLCaseStore
from service.store.sql.database import Database
from service.store.sql.entries import SQLEntryLog
from service.store.sql.hits import SQLDisputeStore, SQLHitStore
from service.store.sql.keys import SQLKeyStore


class SQLStore(
    SQLEntryLog, SQLCaseStore, SQLHitStore, SQLDisputeStore, SQLKeyStore, SQLAuditLog, Store
):
    def __init__(self, db: Database) -> None:
        """Bring the schema up to date, then learn the database's id."""
        self._db = db
        try:
            db.migrate()
            with db.read() as tx:
                row = tx.row("SELECT store_id FROM store_identity")
            if row is None:
                raise RuntimeError("the store_identity table is empty")
        except BaseException:
            db.close()
            raise
        self._store_id = str(row["store_id"])

    def store_id(self) -> str:
        return self._store_id

    def close(self) -> None:
        self._db.close()
