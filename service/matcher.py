"""The in-memory list: one index per algorithm plus each entry's state.

Turns a set of upload hashes into matches. Knows nothing about the store or grpc: it is
loaded at start (from the store or an index snapshot) and kept in step with the store's
change log by service.replica.follower, through `apply`, which is idempotent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from service.domain import Algorithm, EntryRow, EntryState, HashValue, Match, MatchPart, Query
from service.index import ExactIndex, HammingIndex
from service.policy import Thresholds


class Matcher:
    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self._hamming = {
            Algorithm.PDQ: HammingIndex(256),
            Algorithm.PHASH: HammingIndex(64),
            Algorithm.PDQ_WINDOW: HammingIndex(256),
        }
        self._exact = {Algorithm.SHA256: ExactIndex(), Algorithm.MD5: ExactIndex()}
        self._states: dict[int, EntryState] = {}
        self._lock = threading.Lock()

    def index_stats(self) -> dict[str, dict[str, int]]:
        """Each Hamming index's counters (plans, buffer, merges), for the metrics."""
        return {algorithm.value: index.stats() for algorithm, index in self._hamming.items()}

    def size(self, algorithm: Algorithm) -> int:
        return len(self._index_for(algorithm))

    def _index_for(self, algorithm: Algorithm) -> HammingIndex | ExactIndex:
        if algorithm in self._hamming:
            return self._hamming[algorithm]
        return self._exact[algorithm]

    def add(self, entries: Sequence[EntryRow]) -> None:
        """Make entries matchable (pending or vetted ones; withdrawn ones are ignored)."""
        live = [e for e in entries if e.state is not EntryState.WITHDRAWN]
        with self._lock:
            for e in live:
                self._states[e.entry_id] = e.state
            for algorithm in Algorithm:
                rows = [e for e in live if e.algorithm is algorithm]
                if not rows:
                    continue
                ids = np.fromiter((e.entry_id for e in rows), dtype=np.int64, count=len(rows))
                if algorithm in self._hamming:
                    values = np.frombuffer(b"".join(e.value for e in rows), dtype=np.uint8)
                    self._hamming[algorithm].add(ids, values.reshape(len(rows), -1))
                else:
                    self._exact[algorithm].add(ids.tolist(), [e.value for e in rows])

    def remove(self, entries: Iterable[EntryRow]) -> None:
        """Stop matching entries: one index call per algorithm, not per entry."""
        by_algorithm: dict[Algorithm, list[int]] = {}
        for e in entries:
            by_algorithm.setdefault(e.algorithm, []).append(e.entry_id)
        with self._lock:
            for algorithm, ids in by_algorithm.items():
                self._index_for(algorithm).remove(np.array(ids, dtype=np.int64))
                for entry_id in ids:
                    self._states.pop(entry_id, None)

    def apply(self, rows: Sequence[EntryRow]) -> None:
        """Bring entries to the state the store holds for them: add new live ones,
        update the state of known ones, remove withdrawn ones. Applying the same rows
        twice changes nothing, which is what lets a replica apply its own writes at once
        and again when its change-log follower reaches them."""
        withdrawn = [e for e in rows if e.state is EntryState.WITHDRAWN]
        live = [e for e in rows if e.state is not EntryState.WITHDRAWN]
        known = [e for e in live if e.entry_id in self._states]
        new = [e for e in live if e.entry_id not in self._states]
        self.remove([e for e in withdrawn if e.entry_id in self._states])
        with self._lock:
            for e in known:
                self._states[e.entry_id] = e.state
        self.add(new)

    def load_arrays(
        self, algorithm: Algorithm, ids: np.ndarray, values: np.ndarray, vetted: np.ndarray
    ) -> None:
        """Bulk-load one algorithm's entries (an index snapshot): one index call.
        `values` is (n, size) uint8, `vetted` a boolean per entry."""
        states = (EntryState.PENDING, EntryState.VETTED)
        with self._lock:
            self._states.update(
                zip(ids.tolist(), [states[v] for v in vetted.astype(bool).tolist()], strict=True)
            )
            if algorithm in self._hamming:
                self._hamming[algorithm].add(np.ascontiguousarray(ids), np.asarray(values))
            else:
                raw, size = np.ascontiguousarray(values).tobytes(), algorithm.size
                hashes = [raw[i : i + size] for i in range(0, len(raw), size)]
                self._exact[algorithm].add(ids.tolist(), hashes)

    def set_state(self, entry_ids: Iterable[int], state: EntryState) -> None:
        with self._lock:
            for entry_id in entry_ids:
                if entry_id in self._states:
                    self._states[entry_id] = state

    def match(self, queries: Sequence[HashValue | Query]) -> list[Match]:
        """Every (entry, upload hash) pair within the algorithm's threshold; each match
        carries the part of the upload its query stands for (a HashValue: the whole)."""
        return self.match_many([queries])[0]

    def match_many(self, uploads: Sequence[Sequence[HashValue | Query]]) -> list[list[Match]]:
        """`match` for several uploads at once: each index is searched once with every
        upload's queries, which costs less per query than one search per upload
        (loadtests/bench_batch_search.py)."""
        found: list[list[Match]] = [[] for _ in uploads]
        for algorithm, index in self._hamming.items():
            owners = [
                (n, q) for n, qs in enumerate(uploads) for q in qs if q.algorithm is algorithm
            ]
            if not owners or len(index) == 0:
                continue
            packed = np.frombuffer(b"".join(q.value for _, q in owners), dtype=np.uint8)
            packed = packed.reshape(len(owners), -1)
            radius = self.thresholds.radius(algorithm)
            for (n, q), (ids, dists) in zip(owners, index.search(packed, radius), strict=True):
                for entry_id, dist in zip(ids.tolist(), dists.tolist(), strict=True):
                    self._append(found[n], entry_id, algorithm, dist, q)
        for algorithm, exact in self._exact.items():
            for n, qs in enumerate(uploads):
                for q in qs:
                    if q.algorithm is algorithm:
                        for entry_id in exact.lookup(q.value):
                            self._append(found[n], entry_id, algorithm, 0, q)
        return found

    def _append(
        self,
        found: list[Match],
        entry_id: int,
        algorithm: Algorithm,
        dist: int,
        query: HashValue | Query,
    ) -> None:
        state = self._states.get(entry_id)
        if state is not None:  # removed between the index scan and now
            part = query.part if isinstance(query, Query) else MatchPart.WHOLE
            found.append(Match(entry_id, algorithm, dist, state, query.value, part))
