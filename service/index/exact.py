"""Exact-equality index for cryptographic hashes (SHA-256, MD5)."""

from __future__ import annotations

import threading

import numpy as np

from service.index.words import EMPTY_DISTANCES, EMPTY_IDS


class ExactIndex:
    """Maps a hash value to the ids of the entries that hold it.

    Answers the same interface as HammingIndex (`add`, `remove`, `search`, `len`,
    `stats`), so the matcher treats every hash type alike; its only radius is 0.
    Writers copy the affected id tuple and swap it in under a lock; readers do one dict
    lookup per query, which is atomic in CPython, so they never see a half-made change.
    """

    def __init__(self, size: int) -> None:
        self.size = size  # bytes per hash
        self._by_value: dict[bytes, tuple[int, ...]] = {}
        self._by_id: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """`hashes` is (n, size) uint8; an id already present moves to its new value."""
        raw = self._rows(hashes)
        with self._lock:
            for entry_id, value in zip(np.asarray(ids).tolist(), raw, strict=True):
                self._discard(entry_id)
                self._by_value[value] = (*self._by_value.get(value, ()), entry_id)
                self._by_id[entry_id] = value

    def remove(self, ids: np.ndarray) -> int:
        with self._lock:
            return sum(self._discard(entry_id) for entry_id in np.asarray(ids).tolist())

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query row, the (ids, distances) of the entries equal to it."""
        if radius != 0:
            raise ValueError(f"an exact index matches at radius 0 only, not {radius}")
        results = []
        for value in self._rows(queries):
            found = self._by_value.get(value, ())
            if found:
                results.append((np.array(found, dtype=np.int64), np.zeros(len(found), np.int32)))
            else:
                results.append((EMPTY_IDS, EMPTY_DISTANCES))
        return results

    def stats(self) -> dict[str, int]:
        return {"entries": len(self)}

    def _rows(self, hashes: np.ndarray) -> list[bytes]:
        hashes = np.ascontiguousarray(hashes, dtype=np.uint8)
        if hashes.ndim != 2 or hashes.shape[1] != self.size:
            raise ValueError(f"hashes must have shape (n, {self.size}), got {hashes.shape}")
        raw = hashes.tobytes()
        return [raw[i : i + self.size] for i in range(0, len(raw), self.size)]

    def _discard(self, entry_id: int) -> bool:
        value = self._by_id.pop(entry_id, None)
        if value is None:
            return False
        rest = tuple(i for i in self._by_value[value] if i != entry_id)
        if rest:
            self._by_value[value] = rest
        else:
            del self._by_value[value]
        return True
