"""Cases in SQL: opening one adds its pending entries; withdrawing it erases their values
and the uploads' hashes that matched them, and closes hits left with nothing to review."""

from __future__ import annotations

from service.domain import (
    AuditEvent,
    CaseState,
    CaseStatus,
    EntryRow,
    EntryState,
    HitState,
)
from service.errors import NotFound
from service.store.cases import CaseStore
from service.store.records import CaseAuth, NewCase
from service.store.sql import rows
from service.store.sql.audit import insert_audit
from service.store.sql.database import Database

# The hourly case quota's count, run on every SubmitCase; index cases_by_submitter
# (migration 0004) serves it.
CASES_OPENED_SINCE = (
    "SELECT COUNT(*) AS opened, MIN(created_at) AS oldest FROM cases"
    " WHERE submitted_by = ? AND created_at >= ?"
)
# The hourly hash quota's count, run on SubmitCase when --max-hashes-per-hour is set;
# cases_by_submitter and entries_by_case serve it.
HASHES_SUBMITTED_SINCE = (
    "SELECT COUNT(*) AS hashes FROM entries WHERE case_id IN"
    " (SELECT case_id FROM cases WHERE submitted_by = ? AND created_at >= ?)"
)


class SQLCaseStore(CaseStore):
    _db: Database

    def _create_case(self, case: NewCase, audit: AuditEvent | None) -> list[int]:
        with self._db.change() as tx:
            tx.lock_change_log()
            insert_audit(tx, audit)
            tx.execute(
                "INSERT INTO cases (case_id, token_hash, state, submitted_by, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    case.case_id,
                    case.token_hash,
                    CaseState.ACTIVE.value,
                    case.submitted_by,
                    case.now,
                ),
            )
            seq = tx.record_change("added", len(case.hashes), case.now)
            pending = EntryState.PENDING.value
            return [
                tx.insert_returning(
                    "INSERT INTO entries (case_id, algorithm, value, state, created_at,"
                    " changed_seq) VALUES (?, ?, ?, ?, ?, ?)",
                    (case.case_id, h.algorithm.name, h.value, pending, case.now, seq),
                    "entry_id",
                )
                for h in case.hashes
            ]

    def _get_case_auth(self, case_id: str) -> CaseAuth | None:
        with self._db.read() as tx:
            row = tx.row("SELECT token_hash, state FROM cases WHERE case_id = ?", (case_id,))
        return None if row is None else CaseAuth(bytes(row["token_hash"]), CaseState(row["state"]))

    def _cases_opened_since(self, submitted_by: str, since: float) -> tuple[int, float | None]:
        with self._db.read() as tx:
            row = tx.aggregate(CASES_OPENED_SINCE, (submitted_by, since))
        return int(row["opened"]), row["oldest"]

    def _hashes_submitted_since(self, submitted_by: str, since: float) -> int:
        with self._db.read() as tx:
            row = tx.aggregate(HASHES_SUBMITTED_SINCE, (submitted_by, since))
        return int(row["hashes"])

    def _case_status(self, case_id: str) -> CaseStatus:
        with self._db.read() as tx:
            case = tx.row("SELECT state, created_at FROM cases WHERE case_id = ?", (case_id,))
            if case is None:
                raise NotFound(f"no case {case_id!r}")
            entries = tx.rows(
                "SELECT state, COUNT(*) AS n FROM entries WHERE case_id = ? GROUP BY state",
                (case_id,),
            )
            hits = tx.rows(
                "SELECT h.state AS state, COUNT(DISTINCT h.hit_id) AS n FROM hits h"
                " JOIN hit_matches m ON m.hit_id = h.hit_id"
                " JOIN entries e ON e.entry_id = m.entry_id"
                " WHERE e.case_id = ? GROUP BY h.state",
                (case_id,),
            )
        entry_counts = {r["state"]: int(r["n"]) for r in entries}
        hit_counts = {r["state"]: int(r["n"]) for r in hits}
        return CaseStatus(
            case_id=case_id,
            state=CaseState(case["state"]),
            created_at=case["created_at"],
            entries_pending=entry_counts.get(EntryState.PENDING.value, 0),
            entries_vetted=entry_counts.get(EntryState.VETTED.value, 0),
            entries_withdrawn=entry_counts.get(EntryState.WITHDRAWN.value, 0),
            hits_total=sum(hit_counts.values()),
            hits_confirmed=hit_counts.get(HitState.CONFIRMED.value, 0),
        )

    def _withdraw_case(self, case_id: str, now: float, audit: AuditEvent | None) -> list[EntryRow]:
        with self._db.change() as tx:
            tx.lock_change_log()
            if tx.row("SELECT state FROM cases WHERE case_id = ?", (case_id,)) is None:
                raise NotFound(f"no case {case_id!r}")
            insert_audit(tx, audit)
            withdrawn, _ = rows.entries(
                tx.execute(
                    f"SELECT {rows.ENTRY_COLUMNS} FROM entries"
                    " WHERE case_id = ? AND state != ? ORDER BY entry_id",
                    (case_id, EntryState.WITHDRAWN.value),
                )
            )
            tx.execute(
                "UPDATE cases SET state = ?, withdrawn_at = ? WHERE case_id = ?",
                (CaseState.WITHDRAWN.value, now, case_id),
            )
            if not withdrawn:  # withdrawn before: its entries and hits were settled then
                return []
            seq = tx.record_change("withdrawn", len(withdrawn), now)
            tx.execute(
                "UPDATE entries SET state = ?, value = NULL, withdrawn_at = ?,"
                " changed_seq = ? WHERE case_id = ? AND state != ?",
                (EntryState.WITHDRAWN.value, now, seq, case_id, EntryState.WITHDRAWN.value),
            )
            # The uploads' hashes that matched are near-copies of the victim's: erase them.
            tx.execute(
                "UPDATE hit_matches SET query_value = NULL WHERE entry_id IN"
                " (SELECT entry_id FROM entries WHERE case_id = ?)",
                (case_id,),
            )
            # Pending hits that matched only withdrawn entries need no review any more.
            tx.execute(
                "UPDATE hits SET state = ? WHERE state = ? AND hit_id IN"
                " (SELECT m.hit_id FROM hit_matches m JOIN entries e USING (entry_id)"
                "  WHERE e.case_id = ?)"
                " AND NOT EXISTS (SELECT 1 FROM hit_matches m2 JOIN entries e2"
                "  USING (entry_id) WHERE m2.hit_id = hits.hit_id AND e2.state != ?)",
                (
                    HitState.WITHDRAWN.value,
                    HitState.PENDING.value,
                    case_id,
                    EntryState.WITHDRAWN.value,
                ),
            )
            return withdrawn
