"""Exact Hamming radius search by a vectorized scan over bit-packed uint64 words.

Layout: one contiguous uint64 column per 64-bit word of the hash ("structure of
arrays"), so a query XORs and popcounts whole columns with np.bitwise_count.

Concurrency: readers never lock. Writers (under one lock) either fill rows past the
published length and then publish a new immutable `_Snapshot`, or build new arrays and
publish them; a reader uses the snapshot it took at the start of its query. Removal
clears the row's id to -1 in place; a reader that already scanned the row may still
report it, which is the usual read-committed outcome.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

_EMPTY_IDS = np.empty(0, dtype=np.int64)
_EMPTY_DIST = np.empty(0, dtype=np.int32)
_TOMBSTONE = -1
_BLOCK_ROWS = 1 << 16  # rows scanned per step: keeps temporaries in cache


@dataclass(frozen=True, slots=True)
class _Snapshot:
    words: np.ndarray  # (n_words, capacity) uint64
    ids: np.ndarray  # (capacity,) int64, -1 for removed rows
    size: int  # rows in use (including removed ones)


def hashes_to_words(hashes: np.ndarray, bits: int) -> np.ndarray:
    """(n, bits // 8) uint8 canonical bytes -> (n, bits // 64) uint64 words."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
    if hashes.ndim != 2 or hashes.shape[1] != bits // 8:
        raise ValueError(f"hashes must have shape (n, {bits // 8}), got {hashes.shape}")
    # Byte order inside a word does not change popcount(a ^ b); big-endian keeps the
    # words readable as the hex string's 16-digit chunks.
    return hashes.view(">u8").astype(np.uint64)


class FlatHammingIndex:
    """Every entry within `radius` bits of a query, nothing missed."""

    def __init__(self, bits: int) -> None:
        if bits not in (64, 256):
            raise ValueError("bits must be 64 or 256")
        self.bits = bits
        self._n_words = bits // 64
        self._lock = threading.Lock()
        self._rows: dict[int, int] = {}  # entry id -> row
        self._snapshot = _Snapshot(
            np.zeros((self._n_words, 0), dtype=np.uint64), _EMPTY_IDS.copy(), 0
        )

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """Add entries; an id already present is replaced."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        words = hashes_to_words(hashes, self.bits)
        if len(ids) != len(words):
            raise ValueError("ids and hashes differ in length")
        if len(ids) == 0:
            return
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must be unique within one add")
        if ids.min() < 0:
            raise ValueError("ids must not be negative (the index uses -1 for removed rows)")
        with self._lock:
            self._remove_locked(ids)
            snap = self._snapshot
            start, end = snap.size, snap.size + len(ids)
            if end > snap.ids.shape[0]:
                snap = self._grow(snap, end)
            snap.words[:, start:end] = words.T
            snap.ids[start:end] = ids
            self._rows.update(zip(ids.tolist(), range(start, end), strict=True))
            self._snapshot = _Snapshot(snap.words, snap.ids, end)
            self._compact_if_sparse()

    def remove(self, ids: np.ndarray) -> int:
        """Remove entries by id; unknown ids are ignored. Returns how many were removed."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            removed = self._remove_locked(ids)
            self._compact_if_sparse()
            return removed

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query row, the (ids, distances) of every entry within `radius`."""
        qwords = hashes_to_words(queries, self.bits)
        snap = self._snapshot
        results: list[tuple[np.ndarray, np.ndarray]] = []
        for q in qwords:
            results.append(self._search_one(snap, q, radius))
        return results

    def _search_one(
        self, snap: _Snapshot, q: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if snap.size == 0 or radius < 0:
            return _EMPTY_IDS, _EMPTY_DIST
        found_ids: list[np.ndarray] = []
        found_dist: list[np.ndarray] = []
        for start in range(0, snap.size, _BLOCK_ROWS):
            stop = min(start + _BLOCK_ROWS, snap.size)
            dist = np.bitwise_count(snap.words[0, start:stop] ^ q[0]).astype(np.uint16)
            for w in range(1, self._n_words):
                dist += np.bitwise_count(snap.words[w, start:stop] ^ q[w])
            rows = np.flatnonzero(dist <= radius)
            if rows.size:
                ids = snap.ids[start + rows]
                live = ids != _TOMBSTONE
                found_ids.append(ids[live])
                found_dist.append(dist[rows][live].astype(np.int32))
        if not found_ids:
            return _EMPTY_IDS, _EMPTY_DIST
        return np.concatenate(found_ids), np.concatenate(found_dist)

    def _remove_locked(self, ids: np.ndarray) -> int:
        snap = self._snapshot
        removed = 0
        for entry_id in ids.tolist():
            row = self._rows.pop(entry_id, None)
            if row is not None:
                snap.ids[row] = _TOMBSTONE
                removed += 1
        return removed

    def _grow(self, snap: _Snapshot, needed: int) -> _Snapshot:
        capacity = max(needed, 2 * snap.ids.shape[0], 1024)
        words = np.zeros((self._n_words, capacity), dtype=np.uint64)
        ids = np.full(capacity, _TOMBSTONE, dtype=np.int64)
        words[:, : snap.size] = snap.words[:, : snap.size]
        ids[: snap.size] = snap.ids[: snap.size]
        return _Snapshot(words, ids, snap.size)

    def _compact_if_sparse(self) -> None:
        """Removals and re-adds leave dead rows; rebuild once they are half the scan."""
        if self._snapshot.size > 1024 and len(self._rows) < self._snapshot.size // 2:
            self._compact()

    def _compact(self) -> None:
        """Drop removed rows into fresh arrays, so readers of the old ones are unaffected."""
        snap = self._snapshot
        live = np.flatnonzero(snap.ids[: snap.size] != _TOMBSTONE)
        capacity = max(1024, 2 * live.size)
        words = np.zeros((self._n_words, capacity), dtype=np.uint64)
        ids = np.full(capacity, _TOMBSTONE, dtype=np.int64)
        words[:, : live.size] = snap.words[:, live]
        ids[: live.size] = snap.ids[live]
        self._rows = dict(zip(ids[: live.size].tolist(), range(live.size), strict=True))
        self._snapshot = _Snapshot(words, ids, int(live.size))
