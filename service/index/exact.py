"""Exact-equality index for cryptographic hashes (SHA-256, MD5)."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class ExactIndex:
    """Maps a hash value to the ids of the entries that hold it.

    Writers copy the affected id tuple and swap it in under a lock; readers do one dict
    lookup, which is atomic in CPython, so they never see a half-made change.
    """

    def __init__(self) -> None:
        self._by_value: dict[bytes, tuple[int, ...]] = {}
        self._by_id: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, ids: Iterable[int], values: Iterable[bytes]) -> None:
        with self._lock:
            for entry_id, value in zip(ids, values, strict=True):
                entry_id = int(entry_id)
                self._discard(entry_id)
                self._by_value[value] = (*self._by_value.get(value, ()), entry_id)
                self._by_id[entry_id] = value

    def remove(self, ids: Iterable[int]) -> int:
        with self._lock:
            return sum(self._discard(int(entry_id)) for entry_id in ids)

    def lookup(self, value: bytes) -> tuple[int, ...]:
        return self._by_value.get(value, ())

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
