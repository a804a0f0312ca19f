"""The append buffer: recent additions, scanned linearly until merged into a segment.

Writers (serialised by the owning index's lock) fill rows past the published length,
then publish a new immutable `_Rows`; a reader searches the `_Rows` it took, so it never
sees a half-written row. Growing copies into new arrays, leaving old readers' untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.index.mih import Kernel
from service.index.words import EMPTY_DISTANCES, EMPTY_IDS, scan


@dataclass(frozen=True, slots=True)
class _Rows:
    ids: np.ndarray  # (capacity,) int64
    words: np.ndarray  # (capacity, w) uint64
    alive: np.ndarray  # (capacity,) bool
    size: int  # rows in use, removed ones included


class DeltaBuffer:
    def __init__(self, n_words: int) -> None:
        self._rows = _Rows(
            EMPTY_IDS, np.empty((0, n_words), dtype=np.uint64), np.empty(0, dtype=bool), 0
        )
        self._live = 0

    @classmethod
    def of(cls, ids: np.ndarray, words: np.ndarray) -> DeltaBuffer:
        """A buffer holding exactly these rows (a bulk load on its way into a merge)."""
        buffer = cls(words.shape[1])
        buffer._rows = _Rows(ids, words, np.ones(len(ids), dtype=bool), len(ids))
        buffer._live = len(ids)
        return buffer

    def __len__(self) -> int:
        return self._live

    @property
    def size(self) -> int:
        return self._rows.size

    def append(self, ids: np.ndarray, words: np.ndarray) -> None:
        """Add rows whose ids are not live here (the caller removed them first)."""
        rows = self._rows
        start, end = rows.size, rows.size + len(ids)
        if end > len(rows.ids):
            rows = _grow(rows, end)
        rows.ids[start:end] = ids
        rows.words[start:end] = words
        rows.alive[start:end] = True
        self._rows = _Rows(rows.ids, rows.words, rows.alive, end)
        self._live += len(ids)

    def remove(self, ids: np.ndarray) -> int:
        """Clear the live flag of these ids; a vectorized lookup, as buffers stay small."""
        rows = self._rows
        if rows.size == 0 or len(ids) == 0:
            return 0
        found = np.flatnonzero(np.isin(rows.ids[: rows.size], ids) & rows.alive[: rows.size])
        rows.alive[found] = False
        self._live -= len(found)
        return len(found)

    def live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows
        alive = rows.alive[: rows.size]
        return rows.ids[: rows.size][alive], rows.words[: rows.size][alive]

    def search(
        self, qwords: np.ndarray, radius: int, kernel: Kernel = "compiled"
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids, distances) per query, in row order (kernel: see mih.Kernel)."""
        rows = self._rows
        if rows.size == 0 or radius < 0:
            return [(EMPTY_IDS, EMPTY_DISTANCES)] * len(qwords)
        words, alive = rows.words[: rows.size], rows.alive[: rows.size]
        if kernel == "compiled":
            from service.index import kernels  # numba loads only when the index uses it

            counts, found, distances = kernels.buffer_scan(
                np.ascontiguousarray(qwords), radius, words, alive
            )
            ends = np.cumsum(counts).tolist()
            found_ids = rows.ids[found]
            return [
                (found_ids[end - count : end], distances[end - count : end])
                if count
                else (EMPTY_IDS, EMPTY_DISTANCES)
                for count, end in zip(counts.tolist(), ends, strict=True)
            ]
        results = []
        for qword in qwords:
            found, distances = scan(words, alive, qword, radius)
            results.append((rows.ids[found], distances))
        return results


def _grow(rows: _Rows, needed: int) -> _Rows:
    capacity = max(needed, 2 * len(rows.ids), 1024)
    ids = np.zeros(capacity, dtype=np.int64)
    words = np.zeros((capacity, rows.words.shape[1]), dtype=np.uint64)
    alive = np.zeros(capacity, dtype=bool)
    ids[: rows.size] = rows.ids[: rows.size]
    words[: rows.size] = rows.words[: rows.size]
    alive[: rows.size] = rows.alive[: rows.size]
    return _Rows(ids, words, alive, rows.size)
