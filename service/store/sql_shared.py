"""The queries the SQLite and PostgreSQL stores run identically, written once: the
reads, and settling a change-log row inside a write.

A store mixes this in and provides `_read()`: a connection for a few reads (SQLite: the
thread's connection; PostgreSQL: a pooled transaction), and `_change()`: one write
transaction for changes that do not touch the list (keys, the audit log). Queries use
`?` placeholders, which `_PLACEHOLDER` rewrites for drivers that want another style.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from service.domain import (
    Algorithm,
    AuditEvent,
    CaseState,
    CaseStatus,
    DisputedEntry,
    EntryState,
    HitState,
    Role,
)
from service.errors import Conflict, NotFound
from service.store import records
from service.store.base import (
    ApiKeyRecord,
    AuditQuery,
    CaseAuth,
    ChangeHead,
    EntryRow,
    PriorHit,
)

_KEY_COLUMNS = "key_id, name, role, secret_hash, created_at, revoked_at, tenant, rotated_at"
_AUDIT_COLUMNS = "seq, at, actor, role, tenant, action, target, detail"

# The hourly case quota's count, run on every SubmitCase; index cases_by_submitter
# (migration 0004) serves it.
CASES_OPENED_SINCE = (
    "SELECT COUNT(*), MIN(created_at) FROM cases WHERE submitted_by = ? AND created_at >= ?"
)


class SharedSQL:
    _PLACEHOLDER = "?"

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _change(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _one(self, query: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._read() as conn:
            row: tuple[Any, ...] | None = conn.execute(self._sql(query), args).fetchone()
            return row

    def _all(self, query: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._read() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(self._sql(query), args).fetchall()
            return rows

    def _sql(self, query: str) -> str:
        return query if self._PLACEHOLDER == "?" else query.replace("?", self._PLACEHOLDER)

    # -- API keys and cases -----------------------------------------------------------------

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._one(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return None if row is None else _api_key(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        return [
            _api_key(r) for r in self._all(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY name")
        ]

    def revoke_api_key(self, name: str, now: float, audit: AuditEvent) -> ApiKeyRecord:
        with self._change() as conn:
            record = self._live_key(conn, name)
            conn.execute(
                self._sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?"),
                (now, record.key_id),
            )
            self._insert_audit(conn, audit)
        return record

    def rotate_api_key(
        self, name: str, secret_hash: bytes, now: float, audit: AuditEvent
    ) -> ApiKeyRecord:
        with self._change() as conn:
            record = self._live_key(conn, name)
            conn.execute(
                self._sql("UPDATE api_keys SET secret_hash = ?, rotated_at = ? WHERE key_id = ?"),
                (secret_hash, now, record.key_id),
            )
            self._insert_audit(conn, audit)
        return record

    def _live_key(self, conn: Any, name: str) -> ApiKeyRecord:
        row = conn.execute(
            self._sql(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE name = ?"), (name,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no API key named {name!r}; `hashguard keys list` shows them")
        record = _api_key(row)
        if record.revoked_at is not None:
            raise Conflict(f"API key {name!r} is already revoked")
        return record

    def count_api_keys(self) -> int:
        row = self._one("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(row[0]) if row else 0

    def cases_opened_since(self, submitted_by: str, since: float) -> tuple[int, float | None]:
        row = self._one(CASES_OPENED_SINCE, (submitted_by, since))
        return (int(row[0]), row[1]) if row else (0, None)

    def get_case_auth(self, case_id: str) -> CaseAuth | None:
        row = self._one("SELECT token_hash, state FROM cases WHERE case_id = ?", (case_id,))
        return None if row is None else CaseAuth(bytes(row[0]), CaseState(row[1]))

    def case_status(self, case_id: str) -> CaseStatus:
        with self._read() as conn:
            case = conn.execute(
                self._sql("SELECT state, created_at FROM cases WHERE case_id = ?"), (case_id,)
            ).fetchone()
            if case is None:
                raise NotFound(f"no case {case_id!r}")
            counts = dict(
                conn.execute(
                    self._sql(
                        "SELECT state, COUNT(*) FROM entries WHERE case_id = ? GROUP BY state"
                    ),
                    (case_id,),
                ).fetchall()
            )
            hits = dict(
                conn.execute(
                    self._sql(
                        "SELECT h.state, COUNT(DISTINCT h.hit_id) FROM hits h"
                        " JOIN hit_matches m ON m.hit_id = h.hit_id"
                        " JOIN entries e ON e.entry_id = m.entry_id"
                        " WHERE e.case_id = ? GROUP BY h.state"
                    ),
                    (case_id,),
                ).fetchall()
            )
        return records.case_status(case_id, case, counts, hits)

    def count_entries(self) -> dict[tuple[Algorithm, EntryState], int]:
        rows = self._all("SELECT algorithm, state, COUNT(*) FROM entries GROUP BY algorithm, state")
        return {(Algorithm(a), EntryState(s)): int(n) for a, s, n in rows}

    # -- hits -------------------------------------------------------------------------------

    def prior_hits(
        self, pairs: Sequence[tuple[int, bytes]], tenant: str | None = None
    ) -> dict[tuple[int, bytes], PriorHit]:
        found: dict[tuple[int, bytes], PriorHit] = {}
        if not pairs:
            return found
        of_tenant = "" if tenant is None else " AND h.tenant = ?"
        query = self._sql(
            "SELECT h.hit_id, h.state FROM hit_matches m JOIN hits h USING (hit_id)"
            f" WHERE m.entry_id = ? AND m.query_value = ?{of_tenant}"
            " ORDER BY h.seq DESC LIMIT 1"
        )
        with self._read() as conn:
            for entry_id, query_value in pairs:
                args = (
                    (entry_id, query_value) if tenant is None else (entry_id, query_value, tenant)
                )
                row = conn.execute(query, args).fetchone()
                if row is not None:
                    found[(entry_id, query_value)] = PriorHit(row[0], HitState(row[1]))
        return found

    def count_hits(self, state: HitState) -> int:
        row = self._one("SELECT COUNT(*) FROM hits WHERE state = ?", (state.value,))
        return int(row[0]) if row else 0

    def _entries_reaching(self, conn: Any, hit_id: str, state: HitState, tenants: int) -> list[int]:
        """The pending entries of hit `hit_id` that now have hits in `state` from at
        least `tenants` distinct tenants (run after the hit's own state is written)."""
        rows = conn.execute(
            self._sql(
                "SELECT m.entry_id FROM hit_matches m JOIN hits h ON h.hit_id = m.hit_id"
                " JOIN entries e ON e.entry_id = m.entry_id"
                " WHERE e.state = 'pending' AND h.state = ?"
                " AND m.entry_id IN (SELECT entry_id FROM hit_matches WHERE hit_id = ?)"
                " GROUP BY m.entry_id HAVING COUNT(DISTINCT h.tenant) >= ?"
                " ORDER BY m.entry_id"
            ),
            (state.value, hit_id, tenants),
        ).fetchall()
        return [int(r[0]) for r in rows]

    def _dispute(self, conn: Any, hit_id: str, tenants: int, now: float) -> list[int]:
        """Mark the hit's pending entries rejected by `tenants` tenants as disputed;
        returns the ids newly disputed."""
        reached = self._entries_reaching(conn, hit_id, HitState.REJECTED, tenants)
        if not reached:
            return []
        marks = ",".join("?" * len(reached))
        new = conn.execute(
            self._sql(
                f"SELECT entry_id FROM entries WHERE entry_id IN ({marks})"
                " AND disputed_at IS NULL ORDER BY entry_id"
            ),
            reached,
        ).fetchall()
        disputed = [int(r[0]) for r in new]
        if disputed:
            conn.execute(
                self._sql(
                    "UPDATE entries SET disputed_at = ?"
                    f" WHERE entry_id IN ({','.join('?' * len(disputed))})"
                ),
                (now, *disputed),
            )
        return disputed

    # -- disputed entries ---------------------------------------------------------------

    def disputed_among(self, entry_ids: Sequence[int]) -> set[int]:
        if not entry_ids:
            return set()
        rows = self._all(
            "SELECT entry_id FROM entries WHERE disputed_at IS NOT NULL"
            f" AND entry_id IN ({','.join('?' * len(entry_ids))})",
            list(entry_ids),
        )
        return {int(r[0]) for r in rows}

    def list_disputed(self, limit: int, after_id: int) -> list[DisputedEntry]:
        rows = self._all(
            "SELECT e.entry_id, e.algorithm, e.state, e.disputed_at,"
            " (SELECT COUNT(DISTINCT h.tenant) FROM hit_matches m JOIN hits h"
            "  ON h.hit_id = m.hit_id WHERE m.entry_id = e.entry_id AND h.state = 'rejected'),"
            " (SELECT COUNT(DISTINCT h.tenant) FROM hit_matches m JOIN hits h"
            "  ON h.hit_id = m.hit_id WHERE m.entry_id = e.entry_id AND h.state = 'confirmed')"
            " FROM entries e WHERE e.disputed_at IS NOT NULL AND e.entry_id > ?"
            " ORDER BY e.entry_id LIMIT ?",
            (after_id, limit),
        )
        return [
            DisputedEntry(int(r[0]), Algorithm(r[1]), EntryState(r[2]), r[3], int(r[4]), int(r[5]))
            for r in rows
        ]

    # -- the audit log ------------------------------------------------------------------

    def _insert_audit(self, conn: Any, event: AuditEvent | None) -> None:
        """Append inside the caller's transaction, so the record commits with the change."""
        if event is None:
            return
        conn.execute(
            self._sql(
                "INSERT INTO audit_log (at, actor, role, tenant, action, target, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                event.at,
                event.actor,
                event.role,
                event.tenant,
                event.action,
                event.target,
                event.detail,
            ),
        )

    def _audit_outcome(
        self, conn: Any, cause: AuditEvent | None, action: str, entry_ids: Sequence[int]
    ) -> None:
        """Record what a change led to (entries vetted or disputed), as its actor."""
        if cause is not None and entry_ids:
            target = "entries " + ",".join(map(str, entry_ids))
            self._insert_audit(conn, replace(cause, action=action, target=target, detail=""))

    def append_audit(self, event: AuditEvent) -> None:
        with self._change() as conn:
            self._insert_audit(conn, event)

    def read_audit(self, query: AuditQuery) -> list[AuditEvent]:
        where, args = ["1 = 1"], []  # type: tuple[list[str], list[Any]]
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
        rows = self._all(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE {' AND '.join(where)}"
            " ORDER BY seq DESC LIMIT ?",
            (*args, query.limit),
        )
        return [AuditEvent(r[2], r[3], r[4], r[5], r[6], r[1], r[7], seq=int(r[0])) for r in rows]

    # -- the change log ---------------------------------------------------------------------

    def _settle_change(self, conn: Any, seq: int, entries: int) -> None:
        """A change row is taken before a write knows how many entries it touches (its
        seq is stamped on them): record the count, or drop the row if none changed."""
        if entries:
            conn.execute(self._sql("UPDATE changes SET entries = ? WHERE seq = ?"), (entries, seq))
        else:
            conn.execute(self._sql("DELETE FROM changes WHERE seq = ?"), (seq,))

    def change_head(self, after: int) -> ChangeHead:
        row = self._one(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes),"
            " (SELECT created_at FROM changes WHERE seq > ? ORDER BY seq LIMIT 1)",
            (after,),
        )
        assert row is not None  # an aggregate always returns a row
        return ChangeHead(int(row[0]), row[1])

    def withdrawn_since(self, after: int) -> bool:
        row = self._one(
            "SELECT EXISTS (SELECT 1 FROM changes WHERE seq > ? AND kind = 'withdrawn')",
            (after,),
        )
        return bool(row and row[0])

    def changed_entries(
        self, after: int, upto: int, batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        last_seq, last_id = after, records.PAST_EVERY_ID  # nothing of change `after` itself
        while True:
            rows = self._all(
                f"SELECT {records.ENTRY_COLUMNS}, changed_seq FROM entries"
                " WHERE (changed_seq, entry_id) > (?, ?) AND changed_seq <= ?"
                " ORDER BY changed_seq, entry_id LIMIT ?",
                (last_seq, last_id, upto, batch_size),
            )
            if not rows:
                return
            yield [records.entry_row(r) for r in rows]
            last_seq, last_id = rows[-1][4], rows[-1][0]


def _api_key(row: Sequence[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], Role(row[2]), bytes(row[3]), row[4], row[5], row[6], row[7])
