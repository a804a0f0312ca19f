"""The audit log: the store's `AuditLog` noun. Append-only: the schema's triggers refuse
updates and deletes (migration 0003)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import final

from service.domain import AuditEvent
from service.store.checks import not_negative, require
from service.store.records import AuditQuery


class AuditLog(ABC):
    @final
    def append_audit(self, event: AuditEvent) -> None:
        require(bool(event.action), "an audit event needs an action")
        self._append_audit(event)

    @final
    def read_audit(self, query: AuditQuery) -> list[AuditEvent]:
        """Newest first."""
        not_negative("the audit query's limit", query.limit)
        return self._read_audit(query)

    @abstractmethod
    def _append_audit(self, event: AuditEvent) -> None: ...

    @abstractmethod
    def _read_audit(self, query: AuditQuery) -> list[AuditEvent]: ...
