"""API keys in SQL."""

from __future__ import annotations

from typing import Any

from service.domain import AuditEvent, Role
from service.errors import Conflict, NotFound
from service.store.keys import KeyStore
from service.store.records import ApiKeyRecord
from service.store.sql.audit import insert_audit
from service.store.sql.database import Database, Tx

_COLUMNS = (
    "key_id, name, role, secret_hash, created_at, revoked_at, tenant, rotated_at,"
    " cases_per_hour, hashes_per_hour"
)


class SQLKeyStore(KeyStore):
    _db: Database

    def _add_api_key(self, record: ApiKeyRecord, audit: AuditEvent | None) -> None:
        try:
            with self._db.change() as tx:
                tx.execute(
                    "INSERT INTO api_keys (key_id, name, role, secret_hash, created_at, tenant,"
                    " cases_per_hour, hashes_per_hour) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.key_id,
                        record.name,
                        record.role.value,
                        record.secret_hash,
                        record.created_at,
                        record.tenant,
                        record.cases_per_hour,
                        record.hashes_per_hour,
                    ),
                )
                insert_audit(tx, audit)
        except self._db.dialect.unique_violation:
            raise Conflict(f"an API key named {record.name!r} already exists") from None

    def _get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._db.read() as tx:
            row = tx.row(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return None if row is None else _api_key(row)

    def _list_api_keys(self) -> list[ApiKeyRecord]:
        with self._db.read() as tx:
            return [_api_key(r) for r in tx.rows(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name")]

    def _revoke_api_key(self, name: str, now: float, audit: AuditEvent) -> ApiKeyRecord:
        with self._db.change() as tx:
            record = _live_key(tx, name)
            tx.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (now, record.key_id))
            insert_audit(tx, audit)
        return record

    def _rotate_api_key(
        self, name: str, secret_hash: bytes, now: float, audit: AuditEvent
    ) -> ApiKeyRecord:
        with self._db.change() as tx:
            record = _live_key(tx, name)
            tx.execute(
                "UPDATE api_keys SET secret_hash = ?, rotated_at = ? WHERE key_id = ?",
                (secret_hash, now, record.key_id),
            )
            insert_audit(tx, audit)
        return record

    def _count_api_keys(self) -> int:
        with self._db.read() as tx:
            row = tx.aggregate("SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL")
        return int(row["n"])


def _live_key(tx: Tx, name: str) -> ApiKeyRecord:
    row = tx.row(f"SELECT {_COLUMNS} FROM api_keys WHERE name = ?", (name,))
    if row is None:
        raise NotFound(f"no API key named {name!r}; `hashguard keys list` shows them")
    record = _api_key(row)
    if record.revoked_at is not None:
        raise Conflict(f"API key {name!r} is already revoked")
    return record


def _api_key(row: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row["key_id"],
        name=row["name"],
        role=Role(row["role"]),
        secret_hash=bytes(row["secret_hash"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        tenant=row["tenant"],
        rotated_at=row["rotated_at"],
        cases_per_hour=row["cases_per_hour"],
        hashes_per_hour=row["hashes_per_hour"],
    )
