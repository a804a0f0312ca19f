"""The queries the SQLite and PostgreSQL stores run identically, written once: the
reads, and settling a change-log row inside a write.

A store mixes this in and provides `_read()`: a connection for a few reads (SQLite: the
thread's connection; PostgreSQL: a pooled transaction). Queries use `?` placeholders,
which `_PLACEHOLDER` rewrites for drivers that want another style.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from service.domain import Algorithm, CaseState, CaseStatus, EntryState, HitState, Role
from service.errors import NotFound
from service.store import records
from service.store.base import ApiKeyRecord, CaseAuth, ChangeHead, EntryRow, PriorHit


class SharedSQL:
    _PLACEHOLDER = "?"

    def _read(self) -> AbstractContextManager[Any]:
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
        row = self._one(
            "SELECT key_id, name, role, secret_hash, created_at, revoked_at"
            " FROM api_keys WHERE key_id = ?",
            (key_id,),
        )
        if row is None:
            return None
        return ApiKeyRecord(row[0], row[1], Role(row[2]), bytes(row[3]), row[4], row[5])

    def count_api_keys(self) -> int:
        row = self._one("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL")
        return int(row[0]) if row else 0

    def cases_opened_since(self, submitted_by: str, since: float) -> tuple[int, float | None]:
        row = self._one(
            "SELECT COUNT(*), MIN(created_at) FROM cases"
            " WHERE submitted_by = ? AND created_at >= ?",
            (submitted_by, since),
        )
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

    def prior_hits(self, pairs: Sequence[tuple[int, bytes]]) -> dict[tuple[int, bytes], PriorHit]:
        found: dict[tuple[int, bytes], PriorHit] = {}
        if not pairs:
            return found
        query = self._sql(
            "SELECT h.hit_id, h.state FROM hit_matches m JOIN hits h USING (hit_id)"
            " WHERE m.entry_id = ? AND m.query_value = ? ORDER BY h.seq DESC LIMIT 1"
        )
        with self._read() as conn:
            for entry_id, query_value in pairs:
                row = conn.execute(query, (entry_id, query_value)).fetchone()
                if row is not None:
                    found[(entry_id, query_value)] = PriorHit(row[0], HitState(row[1]))
        return found

    def count_hits(self, state: HitState) -> int:
        row = self._one("SELECT COUNT(*) FROM hits WHERE state = ?", (state.value,))
        return int(row[0]) if row else 0

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
