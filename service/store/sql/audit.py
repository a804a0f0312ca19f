"""The audit log in SQL. Other writes append their record through `insert_audit`, inside
their own transaction, so the record commits with the change it describes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from service.domain import AuditEvent
from service.store.audit import AuditLog
from service.store.records import AuditQuery
from service.store.sql.database import Database, Tx

_COLUMNS = "seq, at, actor, role, tenant, action, target, detail"


def insert_audit(tx: Tx, event: AuditEvent | None) -> None:
    if event is None:
        return
    tx.execute(
        "INSERT INTO audit_log (at, actor, role, tenant, action, target, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.at, event.actor, event.role, event.tenant, event.action, event.target, event.detail),
    )


def audit_outcome(tx: Tx, cause: AuditEvent | None, action: str, entry_ids: Sequence[int]) -> None:
    """Record what a change led to (entries vetted or disputed), as its actor."""
    if cause is not None and entry_ids:
        target = "entries " + ",".join(map(str, entry_ids))
        insert_audit(tx, replace(cause, action=action, target=target, detail=""))


class SQLAuditLog(AuditLog):
    _db: Database

    def _append_audit(self, event: AuditEvent) -> None:
        with self._db.change() as tx:
            insert_audit(tx, event)

    def _read_audit(self, query: AuditQuery) -> list[AuditEvent]:
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if query.actor is not None:
            where.append("actor = ?")
            args.append(query.actor)
        if query.action is not None and query.action.endswith("."):
            where.append(f"substr(action, 1, {len(query.action)}) = ?")
            args.append(query.action)
        elif query.action is not None:
            where.append("action = ?")
            args.append(query.action)
        if query.since is not None:
            where.append("at >= ?")
            args.append(query.since)
        with self._db.read() as tx:
            found = tx.rows(
                f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)}"
                " ORDER BY seq DESC LIMIT ?",
                (*args, query.limit),
            )
        return [
            AuditEvent(
                actor=r["actor"],
                role=r["role"],
                tenant=r["tenant"],
                action=r["action"],
                target=r["target"],
                at=r["at"],
                detail=r["detail"],
                seq=int(r["seq"]),
            )
            for r in found
        ]
