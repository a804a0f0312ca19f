"""The public Hamming index: a multi-index segment plus an append buffer, merged in the
background, so additions and removals are visible to the very next query.

Shape (a small log-structured merge):
- `base`, an immutable MultiIndexSegment built for its own size (sub-linear search);
- `pending`, append buffers being merged into a new base right now (still searched);
- `delta`, the buffer taking new additions (scanned; kept small by merging).
Removal clears a row's live flag wherever the id is. A merge builds the new base outside
the lock from the old base's live rows and the pending buffers, then publishes it under
the lock after replaying the removals that happened meanwhile.

Readers take no lock: they read the published `_View` once and search its parts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from service.index.delta import DeltaBuffer
from service.index.mih import Kernel, MultiIndexSegment, Strategy
from service.index.words import (
    EMPTY_DISTANCES,
    EMPTY_IDS,
    check_bits,
    hashes_to_words,
)

log = logging.getLogger(__name__)

DEFAULT_MERGE_ROWS = 16_384  # buffer rows that trigger a merge (~0.1 ms of scanning)
# "numpy" selects the numpy search instead of the compiled one (benchmarks, or a
# platform where numba misbehaves); tests pass `kernel=` instead.
KERNEL_VARIABLE = "HASHGUARD_INDEX_KERNEL"
KERNELS: tuple[Kernel, ...] = ("compiled", "numpy")


@dataclass(frozen=True, slots=True)
class _View:
    base: MultiIndexSegment
    pending: tuple[DeltaBuffer, ...]
    delta: DeltaBuffer


class HammingIndex:
    """Every entry within `radius` bits of a query, nothing missed.

    `add(ids, hashes)` replaces an id already present; `remove(ids)` ignores unknown ids.
    `kernel` (default: $HASHGUARD_INDEX_KERNEL, else "compiled") picks how searches run;
    both give the same answers. The compiled one is made ready here, not at a query.
    """

    def __init__(
        self,
        bits: int,
        *,
        merge_rows: int = DEFAULT_MERGE_ROWS,
        strategy: Strategy = "auto",
        chunk_offset: int = 0,
        kernel: Kernel | None = None,
    ) -> None:
        check_bits(bits)
        if merge_rows < 1:
            raise ValueError("merge_rows must be at least 1")
        self.bits = bits
        self.strategy: Strategy = strategy
        self.kernel = default_kernel() if kernel is None else kernel
        if self.kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {self.kernel!r}")
        if self.kernel == "compiled":
            warm_up_kernels()
        self._n_words = bits // 64
        self._merge_rows = merge_rows
        self._merges = 0
        self._chunk_offset = chunk_offset  # bits per chunk vs log2(rows): for benchmarks
        self._lock = threading.Lock()  # writers only
        empty = MultiIndexSegment.build(EMPTY_IDS, np.empty((0, self._n_words), np.uint64))
        self._view = _View(empty, (), DeltaBuffer(self._n_words))
        self._merging: threading.Thread | None = None
        self._removed_while_merging: list[np.ndarray] = []
        self._plan_counts: dict[str, int] = {"multi_index": 0, "scan": 0}
        self._counts_lock = threading.Lock()

    def __len__(self) -> int:
        view = self._view
        return len(view.base) + sum(len(p) for p in view.pending) + len(view.delta)

    # --- writes --------------------------------------------------------------------

    def add(self, ids: np.ndarray, hashes: np.ndarray) -> None:
        """Add entries; an id already present is replaced. Bulk adds merge at once."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        words = hashes_to_words(hashes, self.bits)
        if len(ids) != len(words):
            raise ValueError("ids and hashes differ in length")
        if len(ids) == 0:
            return
        if _has_duplicates(ids):
            raise ValueError("ids must be unique within one add")
        if len(ids) >= max(self._merge_rows, self._view.base.live // 4):
            # A bulk load (start-up, a big import): building now costs about what the
            # merge would, and spares the scans of a huge buffer. Smaller batches go to
            # the buffer, so a stream of them does not rebuild a large base each time.
            self._merge_bulk(ids, words)
            return
        with self._lock:
            self._remove_locked(ids)
            self._view.delta.append(ids, words)
        self._merge_if_due()

    def remove(self, ids: np.ndarray) -> int:
        """Remove entries by id; returns how many were present."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            removed = self._remove_locked(ids)
        self._merge_if_due()
        return removed

    def _remove_locked(self, ids: np.ndarray) -> int:
        view = self._view
        positions = view.base.positions_of(ids)
        view.base.remove_positions(positions)
        removed = len(positions)
        removed += sum(part.remove(ids) for part in (*view.pending, view.delta))
        if self._merging is not None:
            self._removed_while_merging.append(ids)
        return removed

    # --- merging -------------------------------------------------------------------

    def flush(self) -> None:
        """Merge everything buffered into the base now (waits for a running merge)."""
        running = self._merging
        if running is not None:
            running.join()
        view = self._view
        if view.delta.size or view.pending or view.base.live < view.base.size:
            self._merge(wait=True)

    def _merge_if_due(self) -> None:
        view = self._view
        dead = view.base.size - view.base.live
        if view.delta.size >= self._merge_rows or dead > max(self._merge_rows, view.base.size // 8):
            self._merge(wait=False)

    def _merge_bulk(self, ids: np.ndarray, words: np.ndarray) -> None:
        """Merge a large batch straight into a new base, skipping the append buffer."""
        bulk = DeltaBuffer.of(ids, words)
        while True:
            running = self._merging
            if running is not None:
                running.join()
            with self._lock:
                if self._merging is not None:
                    continue  # another writer started a merge first: wait for it too
                self._remove_locked(ids)
                self._start_merge_locked(bulk)
                running = self._merging
            break
        if running is not None:
            running.join()

    def _merge(self, wait: bool) -> None:
        with self._lock:
            running = self._merging
            if running is None:
                self._start_merge_locked(None)
                running = self._merging
        if wait and running is not None:
            running.join()

    def _start_merge_locked(self, bulk: DeltaBuffer | None) -> None:
        """Move the buffer (and `bulk`) to pending and build a new base in a thread."""
        view = self._view
        extra = () if bulk is None else (bulk,)
        self._view = _View(
            view.base, (*view.pending, view.delta, *extra), DeltaBuffer(self._n_words)
        )
        self._removed_while_merging = []
        merging = threading.Thread(
            target=self._build_and_publish, name="hamming-merge", daemon=True
        )
        # Started before it is published: writers join `_merging` without the lock, and
        # joining a thread not yet started raises. The thread clears `_merging` under
        # this lock, so it cannot do so before this assignment.
        merging.start()
        self._merging = merging

    def _build_and_publish(self) -> None:
        view = self._view
        try:
            parts = [view.base.live_rows(), *(p.live_rows() for p in view.pending)]
            new_base = MultiIndexSegment.build(
                np.concatenate([ids for ids, _ in parts]),
                np.concatenate([words for _, words in parts]),
                self._chunk_offset,
            )
        except Exception:  # keep serving from the buffers; the next merge retries
            log.exception("merging the Hamming index failed; still serving from buffers")
            with self._lock:
                self._merging = None
            return
        with self._lock:
            for ids in self._removed_while_merging:
                new_base.remove_positions(new_base.positions_of(ids))
            self._removed_while_merging = []
            self._view = _View(new_base, (), self._view.delta)
            self._merging = None
            self._merges += 1
        self._merge_if_due()  # the buffer may have filled up while this merge ran

    # --- reads ---------------------------------------------------------------------

    def search(self, queries: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query row, the (ids, distances) of every entry within `radius`."""
        qwords = hashes_to_words(queries, self.bits)
        view = self._view
        counts: dict[str, int] = {}
        parts = [view.base.search(qwords, radius, self.strategy, counts, self.kernel)]
        parts.extend(p.search(qwords, radius, self.kernel) for p in (*view.pending, view.delta))
        with self._counts_lock:
            for plan, count in counts.items():
                self._plan_counts[plan] += count
        return [_combine([part[q] for part in parts]) for q in range(len(qwords))]

    def stats(self) -> dict[str, int]:
        """Sizes, merges, and how many queries the base answered by probing its tables
        (`multi_index`) or by scanning (`scan`): what the service exports as metrics."""
        view = self._view
        with self._counts_lock:
            plans = dict(self._plan_counts)
        return {
            "entries": len(self),
            "indexed_rows": view.base.size,
            "buffered_rows": sum(b.size for b in (*view.pending, view.delta)),
            "merges": self._merges,
            **plans,
        }

    def nbytes(self) -> int:
        """Bytes held by the index arrays (the buffers' Python dicts not included)."""
        view = self._view
        buffers = (*view.pending, view.delta)
        return view.base.nbytes() + sum(b.size * (8 * self._n_words + 9) for b in buffers)


def default_kernel() -> Kernel:
    """The kernel $HASHGUARD_INDEX_KERNEL names, "compiled" when unset."""
    value = os.environ.get(KERNEL_VARIABLE, "compiled").strip().lower() or "compiled"
    if value not in KERNELS:
        raise ValueError(f"{KERNEL_VARIABLE} must be one of {', '.join(KERNELS)}, got {value!r}")
    kernel: Kernel = "numpy" if value == "numpy" else "compiled"
    return kernel


_warm_up_lock = threading.Lock()
_warm_up_seconds: float | None = None


def warm_up_kernels() -> float:
    """Compile the search loops (or load them from numba's cache) and run them once, so
    the first query pays nothing. Runs once per process; returns the seconds it took
    the first time, else 0."""
    global _warm_up_seconds
    with _warm_up_lock:
        if _warm_up_seconds is not None:
            return 0.0
        started = time.perf_counter()
        words = np.arange(16, dtype=np.uint64).reshape(4, 4)
        segment = MultiIndexSegment.build(np.arange(4, dtype=np.int64), words)
        segment.search(words[:2], 3, "multi_index", {}, "compiled")
        DeltaBuffer.of(np.arange(4, dtype=np.int64), words).search(words[:2], 3, "compiled")
        _warm_up_seconds = time.perf_counter() - started
        log.debug("index search loops ready in %.2f s", _warm_up_seconds)
        return _warm_up_seconds


def _has_duplicates(ids: np.ndarray) -> bool:
    """Sort-based (np.unique's hash path took 9 s on 10 M ids); free when ids ascend."""
    if np.all(ids[1:] > ids[:-1]):
        return False
    ordered = np.sort(ids)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def _combine(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """One query's results from every part; an id found twice (a replace racing the
    search) is reported once, with its newest distance."""
    found = [p for p in parts if len(p[0])]
    if not found:
        return EMPTY_IDS, EMPTY_DISTANCES
    if len(found) == 1:
        return found[0]
    found.reverse()  # newest part first
    ids = np.concatenate([p[0] for p in found])
    distances = np.concatenate([p[1] for p in found])
    _, first = np.unique(ids, return_index=True)
    return ids[first], distances[first]
