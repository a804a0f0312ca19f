"""The list and its change log in SQL. Imports stay with each backend (SQLite batches
an upsert, PostgreSQL stages the file with COPY); the reads are shared."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from service.domain import EntryRow, EntryState
from service.signals.base import SignalType
from service.signals.registry import REGISTRY
from service.store.entries import EntryLog
from service.store.records import ChangeHead
from service.store.sql import rows
from service.store.sql.database import Database

PAST_EVERY_ID = 2**63 - 1  # (seq, id) paging: nothing of the starting seq itself


class SQLEntryLog(EntryLog):
    _db: Database

    def _iter_entries(
        self, states: Sequence[EntryState], batch_size: int
    ) -> Iterator[list[EntryRow]]:
        in_states, state_args = self._db.dialect.scan_filter("state", [s.value for s in states])
        after = -1
        while True:
            with self._db.read() as tx:
                batch, last = rows.entries(
                    tx.execute(
                        f"SELECT {rows.ENTRY_COLUMNS} FROM entries"
                        f" WHERE entry_id > ? AND {in_states} ORDER BY entry_id LIMIT ?",
                        (after, *state_args, batch_size),
                    )
                )
            if last is None:
                return
            yield batch
            after = last["entry_id"]

    def _count_entries(self) -> dict[tuple[SignalType, EntryState], int]:
        with self._db.read() as tx:
            found = tx.rows(
                "SELECT algorithm, state, COUNT(*) AS n FROM entries GROUP BY algorithm, state"
            )
        return {
            (REGISTRY.by_name[r["algorithm"]], EntryState(r["state"])): int(r["n"]) for r in found
        }

    def _change_head(self, after: int) -> ChangeHead:
        with self._db.read() as tx:
            row = tx.aggregate(
                "SELECT (SELECT COALESCE(MAX(seq), 0) FROM changes) AS head,"
                " (SELECT created_at FROM changes WHERE seq > ? ORDER BY seq LIMIT 1)"
                " AS oldest_unapplied_at",
                (after,),
            )
        return ChangeHead(int(row["head"]), row["oldest_unapplied_at"])

    def _withdrawn_since(self, after: int) -> bool:
        with self._db.read() as tx:
            row = tx.aggregate(
                "SELECT EXISTS (SELECT 1 FROM changes WHERE seq > ? AND kind = 'withdrawn')"
                " AS withdrawn",
                (after,),
            )
        return bool(row["withdrawn"])

    def _vet_distances(self) -> dict[int, int]:
        with self._db.read() as tx:
            found = tx.rows(
                "SELECT entry_id, vet_distance FROM entries"
                " WHERE state = 'vetted' AND vet_distance > 0"
            )
        return {int(r["entry_id"]): int(r["vet_distance"]) for r in found}

    def _changed_entries(self, after: int, upto: int, batch_size: int) -> Iterator[list[EntryRow]]:
        last_seq, last_id = after, PAST_EVERY_ID  # nothing of change `after` itself
        while True:
            with self._db.read() as tx:
                batch, last = rows.entries(
                    tx.execute(
                        f"SELECT {rows.ENTRY_COLUMNS}, changed_seq, vet_distance FROM entries"
                        " WHERE (changed_seq, entry_id) > (?, ?) AND changed_seq <= ?"
                        " ORDER BY changed_seq, entry_id LIMIT ?",
                        (last_seq, last_id, upto, batch_size),
                    )
                )
            if last is None:
                return
            yield batch
            last_seq, last_id = last["changed_seq"], last["entry_id"]
