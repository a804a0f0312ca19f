"""The queries the SQLite and PostgreSQL stores run alike, written once: the reads, cases,
hits and their reviews, keys and the audit log.

A store mixes this in and provides `_read()`: a connection for a few reads (SQLite: the
thread's connection; PostgreSQL: a pooled transaction), `_change()`: one write
transaction, and the few hooks where the two differ (`_lock_change_log`, `_FOR_UPDATE`,
`_record_change`, `_insert_returning_id`). Queries use `?` placeholders, which
`_PLACEHOLDER` rewrites for drivers that want another style. What stays in each store is
what is truly its own: connections, migrations, bulk imports and, on PostgreSQL,
LISTEN/NOTIFY.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from service.domain import (
    DEFAULT_TENANT,
    Algorithm,
    AuditEvent,
    CaseState,
    CaseStatus,
    DisputedEntry,
    EntryRow,
    EntryState,
    HashValue,
    Hit,
    HitState,
    Match,
    MatchPart,
    Role,
    Verdict,
)
from service.errors import Conflict, NotFound
from service.store import records
from service.store.base import (
    DEFAULT_RULES,
    ApiKeyRecord,
    AuditQuery,
    CaseAuth,
    ChangeHead,
    PriorHit,
    ReviewRules,
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

    def _many(self, conn: Any, query: str, rows: Sequence[Sequence[Any]]) -> None:
        cursor = conn.cursor()
        try:
            cursor.executemany(self._sql(query), rows)
        finally:
            cursor.close()

    # What differs between the two in a write that changes the list: PostgreSQL serialises
    # change-log writers with an advisory lock and locks the row it reviews (SQLite has one
    # writer at a time anyway), and notifies replicas of each new change.
    _FOR_UPDATE = ""

    def _lock_change_log(self, conn: Any) -> None:
        """Called first in a write that may append to the change log."""

    def _record_change(self, conn: Any, kind: str, entries: int, now: float) -> int:
        """Append to the change log inside the caller's write; returns the new seq."""
        raise NotImplementedError

    def _insert_returning_id(self, conn: Any, query: str, args: Sequence[Any]) -> int:
        """Run an INSERT of one row and return the id the database gave it."""
        raise NotImplementedError

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

    # -- cases ------------------------------------------------------------------------------

    def create_case(
        self,
        case_id: str,
        token_hash: bytes,
        submitted_by: str,
        hashes: Sequence[HashValue],
        now: float,
        audit: AuditEvent | None = None,
    ) -> list[int]:
        with self._change() as conn:
            self._lock_change_log(conn)
            self._insert_audit(conn, audit)
            conn.execute(
                self._sql(
                    "INSERT INTO cases (case_id, token_hash, state, submitted_by, created_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                ),
                (case_id, token_hash, CaseState.ACTIVE.value, submitted_by, now),
            )
            seq = self._record_change(conn, "added", len(hashes), now)
            return [
                self._insert_returning_id(
                    conn,
                    "INSERT INTO entries (case_id, algorithm, value, state, created_at,"
                    " changed_seq) VALUES (?, ?, ?, ?, ?, ?)",
                    (case_id, h.algorithm.value, h.value, EntryState.PENDING.value, now, seq),
                )
                for h in hashes
            ]

    def withdraw_case(
        self, case_id: str, now: float, audit: AuditEvent | None = None
    ) -> list[EntryRow]:
        with self._change() as conn:
            self._lock_change_log(conn)
            row = conn.execute(
                self._sql("SELECT state FROM cases WHERE case_id = ?"), (case_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no case {case_id!r}")
            self._insert_audit(conn, audit)
            entries = [
                EntryRow(r[0], Algorithm(r[1]), bytes(r[2]), EntryState(r[3]))
                for r in conn.execute(
                    self._sql(
                        "SELECT entry_id, algorithm, value, state FROM entries"
                        " WHERE case_id = ? AND state != ? ORDER BY entry_id"
                    ),
                    (case_id, EntryState.WITHDRAWN.value),
                ).fetchall()
            ]
            conn.execute(
                self._sql("UPDATE cases SET state = ?, withdrawn_at = ? WHERE case_id = ?"),
                (CaseState.WITHDRAWN.value, now, case_id),
            )
            if not entries:  # withdrawn before: its entries and hits were settled then
                return []
            seq = self._record_change(conn, "withdrawn", len(entries), now)
            conn.execute(
                self._sql(
                    "UPDATE entries SET state = ?, value = NULL, withdrawn_at = ?,"
                    " changed_seq = ? WHERE case_id = ? AND state != ?"
                ),
                (EntryState.WITHDRAWN.value, now, seq, case_id, EntryState.WITHDRAWN.value),
            )
            # The uploads' hashes that matched are near-copies of the victim's: erase them.
            conn.execute(
                self._sql(
                    "UPDATE hit_matches SET query_value = NULL WHERE entry_id IN"
                    " (SELECT entry_id FROM entries WHERE case_id = ?)"
                ),
                (case_id,),
            )
            # Pending hits that matched only withdrawn entries need no review any more.
            conn.execute(
                self._sql(
                    "UPDATE hits SET state = ? WHERE state = ? AND hit_id IN"
                    " (SELECT m.hit_id FROM hit_matches m JOIN entries e USING (entry_id)"
                    "  WHERE e.case_id = ?)"
                    " AND NOT EXISTS (SELECT 1 FROM hit_matches m2 JOIN entries e2"
                    "  USING (entry_id) WHERE m2.hit_id = hits.hit_id AND e2.state != ?)"
                ),
                (
                    HitState.WITHDRAWN.value,
                    HitState.PENDING.value,
                    case_id,
                    EntryState.WITHDRAWN.value,
                ),
            )
            return entries

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

    def _agree(self, conn: Any, hit_id: str, partial_too: bool) -> None:
        """Mark what a confirmation agrees to: its matches through whole parts, and
        through partial ones when the moderator chose so."""
        whole = [p.value for p in MatchPart if not p.partial]
        of_part = "" if partial_too else f" AND part IN ({','.join('?' * len(whole))})"
        conn.execute(
            self._sql(f"UPDATE hit_matches SET agreed = 1 WHERE hit_id = ?{of_part}"),
            (hit_id, *([] if partial_too else whole)),
        )

    def _entries_vetted(self, conn: Any, hit_id: str, rules: ReviewRules) -> list[int]:
        """The pending entries this hit agreed to that now have agreed confirmations
        through whole parts from `rules.vet_tenants` distinct tenants, or through any
        part from `rules.vet_partial_tenants` (run after the hit's own state is written)."""
        whole = [p.value for p in MatchPart if not p.partial]
        marks = ",".join("?" * len(whole))
        rows = conn.execute(
            self._sql(
                "SELECT m.entry_id FROM hit_matches m JOIN hits h ON h.hit_id = m.hit_id"
                " JOIN entries e ON e.entry_id = m.entry_id"
                " WHERE e.state = 'pending' AND h.state = 'confirmed' AND m.agreed = 1"
                " AND m.entry_id IN"
                "  (SELECT entry_id FROM hit_matches WHERE hit_id = ? AND agreed = 1)"
                " GROUP BY m.entry_id"
                f" HAVING COUNT(DISTINCT CASE WHEN m.part IN ({marks}) THEN h.tenant END) >= ?"
                " OR COUNT(DISTINCT h.tenant) >= ?"
                " ORDER BY m.entry_id"
            ),
            (hit_id, *whole, rules.vet_tenants, max(rules.vet_tenants, rules.vet_partial_tenants)),
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

    # -- hits -------------------------------------------------------------------------------

    def create_hit(
        self,
        hit_id: str,
        operator: str,
        content_ref: str,
        matches: Sequence[Match],
        now: float,
        tenant: str = DEFAULT_TENANT,
        audit: AuditEvent | None = None,
    ) -> None:
        with self._change() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO hits (hit_id, operator, content_ref, state, created_at, tenant)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (hit_id, operator, content_ref, HitState.PENDING.value, now, tenant),
            )
            self._insert_audit(conn, audit)
            self._many(
                conn,
                "INSERT INTO hit_matches (hit_id, entry_id, algorithm, query_value, distance,"
                " part) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (hit_id, m.entry_id, m.algorithm.value, m.query_value, m.distance, m.part.value)
                    for m in matches
                ],
            )

    def get_hit(self, hit_id: str) -> Hit | None:
        with self._read() as conn:
            return self._hit(conn, hit_id)

    def list_hits(
        self,
        state: HitState | None,
        limit: int,
        before_seq: int | None,
        tenant: str | None = None,
    ) -> list[tuple[int, Hit]]:
        where: list[str] = ["1 = 1"]
        args: list[str | int] = []
        if tenant is not None:
            where.append("tenant = ?")
            args.append(tenant)
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        if before_seq is not None:
            where.append("seq < ?")
            args.append(before_seq)
        with self._read() as conn:
            rows = conn.execute(
                self._sql(
                    f"SELECT {records.HIT_COLUMNS} FROM hits WHERE {' AND '.join(where)}"
                    " ORDER BY seq DESC LIMIT ?"
                ),
                (*args, limit),
            ).fetchall()
            hits = self._hits_from_rows(conn, rows)
        return list(zip([int(row[0]) for row in rows], hits, strict=True))

    def resolve_hit(
        self,
        hit_id: str,
        verdict: Verdict,
        note: str,
        resolved_by: str,
        now: float,
        tenant: str | None = None,
        rules: ReviewRules = DEFAULT_RULES,
        audit: AuditEvent | None = None,
    ) -> tuple[Hit, list[int]]:
        with self._change() as conn:
            self._lock_change_log(conn)
            row = conn.execute(
                self._sql(f"SELECT state, tenant FROM hits WHERE hit_id = ?{self._FOR_UPDATE}"),
                (hit_id,),
            ).fetchone()
            if row is None or (tenant is not None and row[1] != tenant):
                raise NotFound(f"no hit {hit_id!r}")
            if row[0] != HitState.PENDING.value:
                raise Conflict(f"hit {hit_id} is already {row[0]}; only pending hits resolve")
            state = HitState.CONFIRMED if verdict is Verdict.CONFIRMED else HitState.REJECTED
            conn.execute(
                self._sql(
                    "UPDATE hits SET state = ?, note = ?, resolved_by = ?, resolved_at = ?"
                    " WHERE hit_id = ?"
                ),
                (state.value, note, resolved_by, now, hit_id),
            )
            self._insert_audit(conn, audit)
            vetted: list[int] = []
            if state is HitState.CONFIRMED:
                self._agree(conn, hit_id, rules.vet_partial)
                vetted = self._entries_vetted(conn, hit_id, rules)
                if vetted:
                    seq = self._record_change(conn, "vetted", len(vetted), now)
                    conn.execute(
                        self._sql(
                            "UPDATE entries SET state = ?, vetted_at = ?, changed_seq = ?"
                            f" WHERE entry_id IN ({','.join('?' * len(vetted))})"
                        ),
                        (EntryState.VETTED.value, now, seq, *vetted),
                    )
                self._audit_outcome(conn, audit, "entries.vetted", vetted)
            else:
                disputed = self._dispute(conn, hit_id, rules.dispute_tenants, now)
                self._audit_outcome(conn, audit, "entries.disputed", disputed)
            hit = self._hit(conn, hit_id)
        if hit is None:  # unreachable: the row was read inside this transaction
            raise NotFound(f"no hit {hit_id!r}")
        return hit, sorted(vetted)

    def _hit(self, conn: Any, hit_id: str) -> Hit | None:
        row = conn.execute(
            self._sql(f"SELECT {records.HIT_COLUMNS} FROM hits WHERE hit_id = ?"), (hit_id,)
        ).fetchone()
        return None if row is None else self._hits_from_rows(conn, [row])[0]

    def _hits_from_rows(self, conn: Any, rows: Sequence[tuple[Any, ...]]) -> list[Hit]:
        """Build hits with their matches, fetched in one query for the whole page."""
        if not rows:
            return []
        hit_ids = [row[1] for row in rows]
        matches = conn.execute(
            self._sql(
                "SELECT m.hit_id, m.entry_id, m.algorithm, m.distance, e.state, m.part,"
                " m.agreed FROM hit_matches m JOIN entries e USING (entry_id)"
                f" WHERE m.hit_id IN ({','.join('?' * len(hit_ids))})"
                " ORDER BY m.distance, m.entry_id"
            ),
            hit_ids,
        )
        return records.hits(rows, matches.fetchall())

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
