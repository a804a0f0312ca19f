"""API keys: the store's `KeyStore` noun. Secrets are stored hashed (service.auth)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import final

from service.domain import AuditEvent
from service.store.checks import require
from service.store.records import ApiKeyRecord


class KeyStore(ABC):
    @final
    def add_api_key(self, record: ApiKeyRecord, audit: AuditEvent | None = None) -> None:
        """Raises Conflict if the name is taken."""
        require(bool(record.key_id and record.name), "an API key needs an id and a name")
        require(bool(record.secret_hash), f"API key {record.name!r} has no secret hash")
        self._add_api_key(record, audit)

    @final
    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._get_api_key(key_id)

    @final
    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones too, by name."""
        return self._list_api_keys()

    @final
    def revoke_api_key(self, name: str, now: float, audit: AuditEvent) -> ApiKeyRecord:
        """Raises NotFound for an unknown name, Conflict if already revoked."""
        return self._revoke_api_key(name, now, audit)

    @final
    def rotate_api_key(
        self, name: str, secret_hash: bytes, now: float, audit: AuditEvent
    ) -> ApiKeyRecord:
        """Replace a live key's secret (its id and name stay); the old one stops working.
        Raises like `revoke_api_key`."""
        require(bool(secret_hash), f"the new secret of API key {name!r} has no hash")
        return self._rotate_api_key(name, secret_hash, now, audit)

    @final
    def count_api_keys(self) -> int:
        """Keys not revoked."""
        return self._count_api_keys()

    @abstractmethod
    def _add_api_key(self, record: ApiKeyRecord, audit: AuditEvent | None) -> None: ...

    @abstractmethod
    def _get_api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    @abstractmethod
    def _list_api_keys(self) -> list[ApiKeyRecord]: ...

    @abstractmethod
    def _revoke_api_key(self, name: str, now: float, audit: AuditEvent) -> ApiKeyRecord: ...

    @abstractmethod
    def _rotate_api_key(
        self, name: str, secret_hash: bytes, now: float, audit: AuditEvent
    ) -> ApiKeyRecord: ...

    @abstractmethod
    def _count_api_keys(self) -> int: ...
