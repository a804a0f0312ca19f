"""Hits, their review and disputed entries in SQL. A confirmation agrees to the entries
the moderator saw matched (whole parts; partial ones by choice) and vets a pending entry
once enough tenants agreed to it; enough tenants' rejections dispute it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.domain import (
    AuditEvent,
    DisputedEntry,
    EntryState,
    Hit,
    HitMatch,
    HitState,
    MatchPart,
    Span,
    Verdict,
)
from service.errors import Conflict, NotFound
from service.store.hits import DisputeStore, HitStore
from service.store.records import NewHit, PriorHit, Resolution, ReviewRules
from service.store.sql.audit import audit_outcome, insert_audit
from service.store.sql.database import Database, Tx
from service.store.sql.rows import ALGORITHMS, ENTRY_STATES

_COLUMNS = (
    "seq, hit_id, operator, content_ref, state, created_at, note, resolved_by, resolved_at, tenant"
)


def _marks(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


class SQLHitStore(HitStore):
    _db: Database

    def _prior_hits(
        self, pairs: Sequence[tuple[int, bytes]], tenant: str | None
    ) -> dict[tuple[int, bytes], PriorHit]:
        found: dict[tuple[int, bytes], PriorHit] = {}
        of_tenant = "" if tenant is None else " AND h.tenant = ?"
        query = (
            "SELECT h.hit_id AS hit_id, h.state AS state"
            " FROM hit_matches m JOIN hits h USING (hit_id)"
            f" WHERE m.entry_id = ? AND m.query_value = ?{of_tenant}"
            " ORDER BY h.seq DESC LIMIT 1"
        )
        with self._db.read() as tx:
            for pair in pairs:
                row = tx.row(query, pair if tenant is None else (*pair, tenant))
                if row is not None:
                    found[pair] = PriorHit(row["hit_id"], HitState(row["state"]))
        return found

    def _create_hit(self, hit: NewHit, audit: AuditEvent | None) -> None:
        with self._db.change() as tx:
            tx.execute(
                "INSERT INTO hits (hit_id, operator, content_ref, state, created_at, tenant)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    hit.hit_id,
                    hit.operator,
                    hit.content_ref,
                    HitState.PENDING.value,
                    hit.now,
                    hit.tenant,
                ),
            )
            insert_audit(tx, audit)
            tx.many(
                "INSERT INTO hit_matches (hit_id, entry_id, algorithm, query_value, distance,"
                " part, region, upload_start, upload_end, listed_start, listed_end)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        hit.hit_id,
                        m.entry_id,
                        m.algorithm.name,
                        m.query_value,
                        m.distance,
                        m.part.value,
                        m.region,
                        *_span_columns(m.span),
                    )
                    for m in hit.matches
                ],
            )

    def _get_hit(self, hit_id: str) -> Hit | None:
        with self._db.read() as tx:
            return _hit(tx, hit_id)

    def _list_hits(
        self, state: HitState | None, limit: int, before_seq: int | None, tenant: str | None
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
        with self._db.read() as tx:
            found = tx.rows(
                f"SELECT {_COLUMNS} FROM hits WHERE {' AND '.join(where)}"
                " ORDER BY seq DESC LIMIT ?",
                (*args, limit),
            )
            hits = _with_matches(tx, found)
        return [(int(row["seq"]), hit) for row, hit in zip(found, hits, strict=True)]

    def _resolve_hit(
        self, resolution: Resolution, audit: AuditEvent | None
    ) -> tuple[Hit, list[int]]:
        hit_id, now, rules = resolution.hit_id, resolution.now, resolution.rules
        with self._db.change() as tx:
            tx.lock_change_log()
            row = tx.row(
                f"SELECT state, tenant FROM hits WHERE hit_id = ?{tx.dialect.for_update}",
                (hit_id,),
            )
            if row is None or resolution.tenant not in (None, row["tenant"]):
                raise NotFound(f"no hit {hit_id!r}")
            if row["state"] != HitState.PENDING.value:
                raise Conflict(f"hit {hit_id} is already {row['state']}; only pending hits resolve")
            confirmed = resolution.verdict is Verdict.CONFIRMED
            state = HitState.CONFIRMED if confirmed else HitState.REJECTED
            tx.execute(
                "UPDATE hits SET state = ?, note = ?, resolved_by = ?, resolved_at = ?"
                " WHERE hit_id = ?",
                (state.value, resolution.note, resolution.resolved_by, now, hit_id),
            )
            insert_audit(tx, audit)
            vetted: list[int] = []
            if confirmed:
                _agree(tx, hit_id, rules.vet_partial)
                vetted = _entries_vetted(tx, hit_id, rules)
                distances = _vet_distances(tx, hit_id, vetted)
                if distances:
                    seq = tx.record_change("vetted", len(distances), now)
                    tx.many(
                        "UPDATE entries SET state = ?, vetted_at = ?, changed_seq = ?,"
                        " vet_distance = ? WHERE entry_id = ?",
                        [(EntryState.VETTED.value, now, seq, distances[i], i) for i in vetted],
                    )
                    tx.many(
                        "UPDATE entries SET changed_seq = ?, vet_distance = ? WHERE entry_id = ?",
                        [(seq, d, i) for i, d in distances.items() if i not in vetted],
                    )
                audit_outcome(tx, audit, "entries.vetted", vetted)
            else:
                disputed = _dispute(tx, hit_id, rules.dispute_tenants, now)
                audit_outcome(tx, audit, "entries.disputed", disputed)
            hit = _hit(tx, hit_id)
        if hit is None:  # unreachable: the row was read inside this transaction
            raise NotFound(f"no hit {hit_id!r}")
        return hit, sorted(vetted)

    def _count_hits(self, state: HitState) -> int:
        with self._db.read() as tx:
            row = tx.aggregate("SELECT COUNT(*) AS n FROM hits WHERE state = ?", (state.value,))
        return int(row["n"])


class SQLDisputeStore(DisputeStore):
    _db: Database

    def _disputed_among(self, entry_ids: Sequence[int]) -> set[int]:
        with self._db.read() as tx:
            found = tx.rows(
                "SELECT entry_id FROM entries WHERE disputed_at IS NOT NULL"
                f" AND entry_id IN ({_marks(entry_ids)})",
                list(entry_ids),
            )
        return {int(r["entry_id"]) for r in found}

    def _list_disputed(self, limit: int, after_id: int) -> list[DisputedEntry]:
        with self._db.read() as tx:
            found = tx.rows(
                "SELECT e.entry_id AS entry_id, e.algorithm AS algorithm, e.state AS state,"
                " e.disputed_at AS disputed_at,"
                " (SELECT COUNT(DISTINCT h.tenant) FROM hit_matches m JOIN hits h"
                "  ON h.hit_id = m.hit_id WHERE m.entry_id = e.entry_id AND h.state = 'rejected')"
                "  AS rejecting,"
                " (SELECT COUNT(DISTINCT h.tenant) FROM hit_matches m JOIN hits h"
                "  ON h.hit_id = m.hit_id WHERE m.entry_id = e.entry_id AND h.state = 'confirmed')"
                "  AS confirming"
                " FROM entries e WHERE e.disputed_at IS NOT NULL AND e.entry_id > ?"
                " ORDER BY e.entry_id LIMIT ?",
                (after_id, limit),
            )
        return [
            DisputedEntry(
                entry_id=int(r["entry_id"]),
                algorithm=ALGORITHMS[r["algorithm"]],
                state=ENTRY_STATES[r["state"]],
                disputed_at=r["disputed_at"],
                rejecting_tenants=int(r["rejecting"]),
                confirming_tenants=int(r["confirming"]),
            )
            for r in found
        ]


_WHOLE_PARTS = [p.value for p in MatchPart if not p.partial]


def _agree(tx: Tx, hit_id: str, partial_too: bool) -> None:
    """Mark what a confirmation agrees to: its matches through whole parts, and through
    partial ones when the moderator chose so."""
    of_part = "" if partial_too else f" AND part IN ({_marks(_WHOLE_PARTS)})"
    tx.execute(
        f"UPDATE hit_matches SET agreed = 1 WHERE hit_id = ?{of_part}",
        (hit_id, *([] if partial_too else _WHOLE_PARTS)),
    )


def _entries_vetted(tx: Tx, hit_id: str, rules: ReviewRules) -> list[int]:
    """The pending entries this hit agreed to that now have agreed confirmations through
    whole parts from `rules.vet_tenants` distinct tenants, or through any part from
    `rules.vet_partial_tenants` (run after the hit's own state is written)."""
    found = tx.rows(
        "SELECT m.entry_id AS entry_id FROM hit_matches m JOIN hits h ON h.hit_id = m.hit_id"
        " JOIN entries e ON e.entry_id = m.entry_id"
        " WHERE e.state = 'pending' AND h.state = 'confirmed' AND m.agreed = 1"
        " AND m.entry_id IN"
        "  (SELECT entry_id FROM hit_matches WHERE hit_id = ? AND agreed = 1)"
        " GROUP BY m.entry_id"
        f" HAVING COUNT(DISTINCT CASE WHEN m.part IN ({_marks(_WHOLE_PARTS)})"
        " THEN h.tenant END) >= ?"
        " OR COUNT(DISTINCT h.tenant) >= ?"
        " ORDER BY m.entry_id",
        (
            hit_id,
            *_WHOLE_PARTS,
            rules.vet_tenants,
            max(rules.vet_tenants, rules.vet_partial_tenants),
        ),
    )
    return [int(r["entry_id"]) for r in found]


def _vet_distances(tx: Tx, hit_id: str, vetted: Sequence[int]) -> dict[int, int]:
    """The new vet_distance of the entries this confirmation agreed to: for those it vets,
    the smallest distance of every agreed confirmation on them; for those already vetted,
    the same when it is smaller than their current one (a closer confirmation widens
    what the entry blocks)."""
    found = tx.rows(
        "SELECT e.entry_id AS entry_id, e.state AS state, e.vet_distance AS current,"
        " (SELECT MIN(m.distance) FROM hit_matches m JOIN hits h ON h.hit_id = m.hit_id"
        "  WHERE m.entry_id = e.entry_id AND m.agreed = 1 AND h.state = 'confirmed')"
        "  AS closest"
        " FROM entries e WHERE e.entry_id IN"
        " (SELECT entry_id FROM hit_matches WHERE hit_id = ? AND agreed = 1)",
        (hit_id,),
    )
    distances: dict[int, int] = {}
    for r in found:
        entry_id, closest = int(r["entry_id"]), r["closest"]
        if entry_id in vetted:
            distances[entry_id] = int(closest or 0)
        elif (
            r["state"] == EntryState.VETTED.value and closest is not None and closest < r["current"]
        ):
            distances[entry_id] = int(closest)
    return distances


def _entries_rejected(tx: Tx, hit_id: str, tenants: int) -> list[int]:
    """The pending entries of hit `hit_id` that now have rejected hits from at least
    `tenants` distinct tenants (run after the hit's own state is written)."""
    found = tx.rows(
        "SELECT m.entry_id AS entry_id FROM hit_matches m JOIN hits h ON h.hit_id = m.hit_id"
        " JOIN entries e ON e.entry_id = m.entry_id"
        " WHERE e.state = 'pending' AND h.state = ?"
        " AND m.entry_id IN (SELECT entry_id FROM hit_matches WHERE hit_id = ?)"
        " GROUP BY m.entry_id HAVING COUNT(DISTINCT h.tenant) >= ?"
        " ORDER BY m.entry_id",
        (HitState.REJECTED.value, hit_id, tenants),
    )
    return [int(r["entry_id"]) for r in found]


def _dispute(tx: Tx, hit_id: str, tenants: int, now: float) -> list[int]:
    """Mark the hit's pending entries rejected by `tenants` tenants as disputed; returns
    the ids newly disputed."""
    reached = _entries_rejected(tx, hit_id, tenants)
    if not reached:
        return []
    new = tx.rows(
        f"SELECT entry_id FROM entries WHERE entry_id IN ({_marks(reached)})"
        " AND disputed_at IS NULL ORDER BY entry_id",
        reached,
    )
    disputed = [int(r["entry_id"]) for r in new]
    if disputed:
        tx.execute(
            f"UPDATE entries SET disputed_at = ? WHERE entry_id IN ({_marks(disputed)})",
            (now, *disputed),
        )
    return disputed


def _span_columns(span: Span | None) -> tuple[float | None, ...]:
    if span is None:
        return (None, None, None, None)
    return (span.upload_start, span.upload_end, span.listed_start, span.listed_end)


def _span(row: dict[str, Any]) -> Span | None:
    columns = ("upload_start", "upload_end", "listed_start", "listed_end")
    if row["upload_start"] is None:
        return None
    return Span(*(float(row[c]) for c in columns))


def _hit(tx: Tx, hit_id: str) -> Hit | None:
    row = tx.row(f"SELECT {_COLUMNS} FROM hits WHERE hit_id = ?", (hit_id,))
    return None if row is None else _with_matches(tx, [row])[0]


def _with_matches(tx: Tx, hit_rows: Sequence[dict[str, Any]]) -> list[Hit]:
    """Hits from their rows, with their matches fetched in one query for the page."""
    if not hit_rows:
        return []
    hit_ids = [row["hit_id"] for row in hit_rows]
    matches: dict[str, list[HitMatch]] = {hit_id: [] for hit_id in hit_ids}
    for m in tx.rows(
        "SELECT m.hit_id AS hit_id, m.entry_id AS entry_id, m.algorithm AS algorithm,"
        " m.distance AS distance, e.state AS entry_state, m.part AS part, m.agreed AS agreed,"
        " m.region AS region, m.upload_start AS upload_start, m.upload_end AS upload_end,"
        " m.listed_start AS listed_start, m.listed_end AS listed_end"
        " FROM hit_matches m JOIN entries e USING (entry_id)"
        f" WHERE m.hit_id IN ({_marks(hit_ids)})"
        " ORDER BY m.distance, m.entry_id",
        hit_ids,
    ):
        matches[m["hit_id"]].append(
            HitMatch(
                int(m["entry_id"]),
                ALGORITHMS[m["algorithm"]],
                m["distance"],
                ENTRY_STATES[m["entry_state"]],
                MatchPart(m["part"]),
                bool(m["agreed"]),
                str(m["region"] or ""),
                _span(m),
            )
        )
    return [
        Hit(
            hit_id=row["hit_id"],
            operator=row["operator"],
            content_ref=row["content_ref"],
            state=HitState(row["state"]),
            created_at=row["created_at"],
            note=row["note"],
            resolved_by=row["resolved_by"],
            resolved_at=row["resolved_at"],
            tenant=row["tenant"],
            matches=tuple(matches[row["hit_id"]]),
        )
        for row in hit_rows
    ]
