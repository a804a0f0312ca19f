"""An immutable multi-index-hashing segment: exact radius search without a full scan.

Each hash is cut into m disjoint chunks of about log2(n) bits. If a hash is within r
bits of the query and chunk j is allowed s_j differing bits with sum(s_j + 1) >= r + 1,
then by pigeonhole at least one chunk differs by at most s_j bits. So probing, in every
chunk's table, all keys within s_j bits of the query's chunk (precomputed flip masks)
finds every match; each candidate is then verified on the full hash, so the answer is
exact. With chunks near log2(n) bits a bucket holds about one row.

The split of r over the chunks is chosen per query from the bucket sizes (cheapest
levels first, up to 2 flipped bits per chunk; a radius needing more adds 3-bit probes in
the chunks whose 2-bit level was cheapest), and a query whose candidate estimate costs
more than a plain scan is answered by a blocked scan instead: skewed lists with huge
buckets fall back gracefully instead of collapsing.

Tables are CSR: for chunk j, offsets[key]..offsets[key + 1] index `rows`, the segment
rows whose chunk j equals key, sorted by key. All chunks' offsets and rows are stored
concatenated, so one numpy gather serves every chunk and every query of a batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from typing import Literal

import numpy as np

from service.index.words import EMPTY_DISTANCES, EMPTY_IDS, chunk_keys, row_distances, scan

MIN_CHUNK_BITS = 8
MAX_CHUNK_BITS = 24  # offsets of 2**24 uint32 = 64 MiB per table: the memory cap
MAX_LEVEL = 2  # flip masks planned with, per chunk; level 3 is added only when needed
# A verified candidate (random gathers of its bucket entry and its row) costs about this
# many rows of a sequential scan. From loadtests/bench_index.py: a probed PDQ query
# (~3,000 candidates) takes 0.23 ms at 1 M and 0.4 ms at 10 M where the segment's scan
# takes 3.8 and 38 ms, i.e. 16-35 scanned rows per candidate; 12 errs toward scanning.
CANDIDATE_COST_IN_SCAN_ROWS = 12
MIN_INDEXED_ROWS = 4096  # below this a scan is always cheaper than planning probes
QUERY_BATCH = 32  # queries planned together: bounds the (queries x probes) temporaries

Strategy = Literal["auto", "multi_index", "scan"]
# How a segment answers the queries it probes: one compiled loop (service.index.kernels,
# the default) or numpy array calls (kept as the reference the benchmarks compare with).
Kernel = Literal["compiled", "numpy"]
_PAIR = np.array([0, 1], dtype=np.int64)


def choose_chunk_widths(bits: int, rows: int, offset: int = 0) -> tuple[int, ...]:
    """About log2(rows) + offset bits per chunk (clamped), the bits shared out evenly.

    offset 0 measured best at 1 M (loadtests/bench_index.py --chunk-offsets=-2,-1,1).
    """
    target = round(math.log2(max(rows, 2))) + offset
    target = min(MAX_CHUNK_BITS, max(MIN_CHUNK_BITS, target))
    count = max(1, round(bits / target))
    while math.ceil(bits / count) > MAX_CHUNK_BITS:
        count += 1
    base, extra = divmod(bits, count)
    return tuple(base + 1 if j < extra else base for j in range(count))


@dataclass(frozen=True, slots=True)
class _Probes:
    """Every flip mask of every chunk up to MAX_LEVEL, ordered by (chunk, level)."""

    chunk: np.ndarray  # (P,) chunk of each probe
    mask: np.ndarray  # (P,) uint32 flip mask
    table_base: np.ndarray  # (P,) int64 where the chunk's offsets start
    table_bases: np.ndarray  # (m,) the same, per chunk
    group: np.ndarray  # (P,) chunk * (MAX_LEVEL + 1) + level
    group_starts: np.ndarray  # first probe of each (chunk, level) group

    @classmethod
    def build(cls, widths: tuple[int, ...], table_bases: np.ndarray) -> _Probes:
        groups = [(j, level) for j in range(len(widths)) for level in range(MAX_LEVEL + 1)]
        masks = [_flip_masks(widths[j], level) for j, level in groups]
        counts = [len(m) for m in masks]
        chunk = np.repeat([j for j, _ in groups], counts)
        return cls(
            chunk,
            np.concatenate(masks),
            table_bases[chunk],
            table_bases,
            np.repeat(np.arange(len(groups)), counts),
            np.cumsum([0, *counts[:-1]]),
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """The buckets to read, flattened: for each, its query, where its row list starts in
    the concatenated `rows`, and its length; plus, per query, probe or scan."""

    use_index: np.ndarray  # (q,) bool
    query_of: np.ndarray
    first: np.ndarray
    lengths: np.ndarray


def _kernel_tables(widths: tuple[int, ...], probes: _Probes) -> tuple[np.ndarray, ...]:
    """What kernels.segment_search needs besides the arrays: chunk starts and widths,
    table bases, the level 0-2 flip masks with each (chunk, level) group's start, and
    each chunk's 3-bit masks with their starts."""
    level3 = [_flip_masks(width, 3) for width in widths]
    return (
        np.cumsum((0, *widths[:-1])).astype(np.int64),
        np.array(widths, dtype=np.int64),
        probes.table_bases.astype(np.int64),
        probes.mask,
        np.append(probes.group_starts, len(probes.mask)).astype(np.int64),
        np.concatenate(level3),
        np.cumsum([0, *(len(m) for m in level3)]).astype(np.int64),
    )


@cache
def _flip_masks(width: int, bits: int) -> np.ndarray:
    """Every `width`-bit mask with exactly `bits` bits set."""
    masks = [sum(1 << b for b in flips) for flips in combinations(range(width), bits)]
    return np.array(masks, dtype=np.uint32)


class MultiIndexSegment:
    """Rows sorted by id, their words, a live mask, and one CSR table per chunk.

    Immutable except for `alive`, which removal clears in place (a reader may or may
    not see a removal that races with its query, never a torn row).
    """

    def __init__(
        self,
        ids: np.ndarray,
        words: np.ndarray,
        widths: tuple[int, ...],
        offsets: np.ndarray,
        rows: np.ndarray,
        alive: np.ndarray | None = None,
    ) -> None:
        self.ids = ids  # (n,) int64, ascending
        self.words = words  # (n, w) uint64
        self.widths = widths
        self.offsets = offsets  # concatenated per-chunk offsets, uint32
        self.rows = rows  # concatenated per-chunk row lists, uint32
        self.alive = np.ones(len(ids), dtype=bool) if alive is None else alive
        self.live = int(np.count_nonzero(self.alive))
        self._chunks = [(sum(widths[:j]), width) for j, width in enumerate(widths)]
        sizes = np.array([(1 << w) + 1 for w in widths], dtype=np.int64)
        table_bases = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        self._probes = _Probes.build(widths, table_bases)
        self._kernel_tables = _kernel_tables(widths, self._probes)

    # --- building ----------------------------------------------------------------

    @classmethod
    def build(cls, ids: np.ndarray, words: np.ndarray, chunk_offset: int = 0) -> MultiIndexSegment:
        """Index rows with unique ids; chunk widths follow the row count."""
        if np.any(ids[1:] <= ids[:-1]):
            order = np.argsort(ids, kind="stable")  # timsort: cheap on pre-sorted runs
            ids, words = ids[order], words[order]
        words = np.ascontiguousarray(words)
        widths = choose_chunk_widths(words.shape[1] * 64, len(ids), chunk_offset)
        starts = np.cumsum((0, *widths[:-1])).tolist()
        # numpy's sort releases the GIL, so the tables build in parallel.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            tables = list(
                pool.map(
                    lambda chunk: _build_table(chunk_keys(words, *chunk), chunk[1]),
                    zip(starts, widths, strict=True),
                )
            )
        offsets = np.concatenate([t[0] for t in tables])
        rows = np.concatenate([t[1] for t in tables])
        return cls(ids, words, widths, offsets, rows)

    def __len__(self) -> int:
        return self.live

    @property
    def size(self) -> int:
        """Rows held, removed ones included."""
        return len(self.ids)

    def nbytes(self) -> int:
        arrays = (self.ids, self.words, self.offsets, self.rows, self.alive)
        return sum(a.nbytes for a in arrays)

    # --- removal -------------------------------------------------------------------

    def positions_of(self, ids: np.ndarray) -> np.ndarray:
        """Row positions of the given ids that are present and live."""
        if self.size == 0 or len(ids) == 0:
            return np.empty(0, dtype=np.intp)
        pos = np.searchsorted(self.ids, ids)
        pos = pos[pos < self.size]
        pos = pos[np.isin(self.ids[pos], ids)]
        return np.unique(pos[self.alive[pos]])

    def remove_positions(self, positions: np.ndarray) -> None:
        self.alive[positions] = False
        self.live -= len(positions)

    def live_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, words) of the live rows, in id order."""
        if self.live == self.size:
            return self.ids, self.words
        return self.ids[self.alive], self.words[self.alive]

    # --- search --------------------------------------------------------------------

    def search(
        self,
        qwords: np.ndarray,
        radius: int,
        strategy: Strategy,
        plan_counts: dict[str, int],
        kernel: Kernel = "compiled",
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(ids, distances) per query, ids ascending; `plan_counts` gains one count per
        query's plan.

        `strategy` "auto" picks per query; "multi_index" probes whenever the radius
        allows it and "scan" never probes (both for tests and benchmarks). Both kernels
        make the same plan and give the same answer.
        """
        results: list[tuple[np.ndarray, np.ndarray]] = []
        for first in range(0, len(qwords), QUERY_BATCH):
            batch = qwords[first : first + QUERY_BATCH]
            results.extend(self._search_batch(batch, radius, strategy, plan_counts, kernel))
        return results

    def _search_batch(
        self,
        qwords: np.ndarray,
        radius: int,
        strategy: Strategy,
        plan_counts: dict[str, int],
        kernel: Kernel,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        n_queries = len(qwords)
        if self.size == 0 or radius < 0:
            return [(EMPTY_IDS, EMPTY_DISTANCES)] * n_queries
        results: list[tuple[np.ndarray, np.ndarray]] = [(EMPTY_IDS, EMPTY_DISTANCES)] * n_queries
        probing = strategy == "multi_index" or (
            strategy == "auto" and self.size >= MIN_INDEXED_ROWS
        )
        # Beyond 3 flipped bits in every chunk there is nothing to plan: scan.
        plannable = radius + 1 <= (MAX_LEVEL + 2) * len(self.widths)
        scan = list(range(n_queries))
        if probing and plannable and kernel == "compiled":
            scan = self._search_compiled(qwords, radius, strategy == "multi_index", results)
        elif probing and plannable:
            plan = self._plan(qwords, radius)
            if strategy == "multi_index":
                plan.use_index[:] = True
            for q, found in self._probe(qwords, radius, plan):
                results[q] = found
            scan = np.flatnonzero(~plan.use_index).tolist()
        for q in scan:
            results[q] = self._scan(qwords[q], radius)
        plan_counts["scan"] = plan_counts.get("scan", 0) + len(scan)
        plan_counts["multi_index"] = plan_counts.get("multi_index", 0) + n_queries - len(scan)
        return results

    def _search_compiled(
        self,
        qwords: np.ndarray,
        radius: int,
        force_index: bool,
        results: list[tuple[np.ndarray, np.ndarray]],
    ) -> list[int]:
        """Plan, probe and verify in one compiled call; fills `results` for the queries
        it answered and returns the others (to be scanned). Plain lists below: for one
        query numpy's per-call cost would be a tenth of the search."""
        from service.index import kernels  # numba loads only when the index uses it

        use_index, counts, rows, distances = kernels.segment_search(
            np.ascontiguousarray(qwords),
            radius,
            force_index,
            self.words,
            self.alive,
            self.offsets,
            self.rows,
            *self._kernel_tables,
        )
        if len(rows):
            ids = self.ids[rows]
            end = 0
            for q, count in enumerate(counts.tolist()):
                if count:
                    results[q] = (ids[end : end + count], distances[end : end + count])
                    end += count
        return [q for q, answered in enumerate(use_index.tolist()) if not answered]

    def _plan(self, qwords: np.ndarray, radius: int) -> _Plan:
        """Which buckets each query probes, and whether probing beats a scan.

        Needs radius + 1 <= 4 * chunks (at most 3 flipped bits per chunk).
        """
        levels = MAX_LEVEL + 1
        chunks = len(self.widths)
        needed = radius + 1  # sum over chunks of (allowed bits + 1)
        probes = self._probes
        qkeys = self._query_keys(qwords)
        slots = (qkeys[:, probes.chunk] ^ probes.mask).astype(np.int64) + probes.table_base
        # A bucket's start and end are neighbours: gathering them as pairs costs one
        # cache miss per probe instead of two.
        bounds = np.take(self.offsets, slots[..., None] + _PAIR)
        sizes = bounds[..., 1] - bounds[..., 0]
        group_sizes = np.add.reduceat(sizes, probes.group_starts, axis=1, dtype=np.int64)
        group_sizes = group_sizes.reshape(len(qwords), chunks, levels)
        if needed <= levels * chunks:
            # Cheapest levels first. Making each chunk's costs non-decreasing (plus the
            # level as a tie-break) means the `needed` smallest always take a chunk's
            # levels in order 0, 1, 2, which is what the pigeonhole bound requires.
            ranked = np.maximum.accumulate(group_sizes, axis=2) * levels + np.arange(levels)
            ranked = ranked.reshape(len(qwords), -1)
            # Everything up to the needed-th smallest: ties may add a level, never skip one.
            threshold = np.partition(ranked, needed - 1, axis=1)[:, needed - 1 : needed]
            selected = ranked <= threshold
            wanted = selected[:, probes.group] & (sizes > 0)
            extra: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        else:
            # Every level up to 2 everywhere, and level 3 on the chunks whose level 2 was
            # cheapest: their 3-bit neighbours are probed for these queries only.
            wanted = sizes > 0
            # Stable, so ties pick the same chunks as the compiled kernel.
            extra_chunks = np.argsort(group_sizes[:, :, MAX_LEVEL], axis=1, kind="stable")
            extra = self._level3_probes(qkeys, extra_chunks[:, : needed - levels * chunks])
        chosen = np.flatnonzero(wanted)  # (query, probe) pairs, flattened
        query_of, probe_of = np.divmod(chosen, len(probes.chunk))
        first = np.take(bounds, 2 * chosen) + probes.chunk[probe_of] * self.size
        lengths = np.take(sizes, chosen).astype(np.int64)
        if extra:
            query_of = np.concatenate([query_of, *(e[0] for e in extra)])
            first = np.concatenate([first, *(e[1] for e in extra)])
            lengths = np.concatenate([lengths, *(e[2] for e in extra)])
        candidates = np.bincount(query_of, weights=lengths, minlength=len(qwords))
        use_index = candidates * CANDIDATE_COST_IN_SCAN_ROWS < self.size
        return _Plan(use_index, query_of, first, lengths)

    def _level3_probes(
        self, qkeys: np.ndarray, extra_chunks: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(query, first row position, length) of the non-empty buckets 3 bits from each
        query's key, in the chunks chosen for it."""
        found = []
        for chunk, width in enumerate(self.widths):
            queries = np.flatnonzero((extra_chunks == chunk).any(axis=1))
            if len(queries) == 0:
                continue
            slots = (qkeys[queries, chunk][:, None] ^ _flip_masks(width, 3)).astype(np.int64)
            slots += self._probes.table_bases[chunk]
            bounds = np.take(self.offsets, slots[..., None] + _PAIR)
            sizes = (bounds[..., 1] - bounds[..., 0]).astype(np.int64)
            row, column = np.nonzero(sizes)
            first = bounds[row, column, 0] + chunk * self.size
            found.append((queries[row], first.astype(np.int64), sizes[row, column]))
        return found

    def _query_keys(self, qwords: np.ndarray) -> np.ndarray:
        """(q, m) chunk keys of the queries; plain Python ints for a handful of queries,
        where numpy's per-call overhead would dominate."""
        if len(qwords) > 4:
            keys = [chunk_keys(qwords, start, width) for start, width in self._chunks]
            return np.stack(keys, axis=1)
        total_bits = qwords.shape[1] * 64
        rows = []
        for qword in qwords.tolist():
            value = 0
            for word in qword:
                value = (value << 64) | word
            rows.append(
                [
                    (value >> (total_bits - start - width)) & ((1 << width) - 1)
                    for start, width in self._chunks
                ]
            )
        return np.array(rows, dtype=np.uint32).reshape(len(qwords), len(self.widths))

    def _probe(
        self, qwords: np.ndarray, radius: int, plan: _Plan
    ) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
        """Gather the planned buckets' rows, verify them, and yield each query's matches."""
        keep = plan.use_index[plan.query_of]
        query_of, first, lengths = plan.query_of[keep], plan.first[keep], plan.lengths[keep]
        if len(query_of) == 0:
            return
        total = int(lengths.sum())
        run_starts = np.cumsum(lengths) - lengths
        positions = np.repeat(first - run_starts, lengths) + np.arange(total)
        cand_rows = np.take(self.rows, positions).astype(np.intp)
        cand_queries = np.repeat(query_of, lengths)
        # np.take on axis 0 gathers rows ~10x faster than fancy indexing a 2-D array.
        rows = np.take(self.words, cand_rows, axis=0)
        distances = row_distances(rows, np.take(qwords, cand_queries, axis=0))
        hit = distances <= radius
        cand_rows, cand_queries, distances = cand_rows[hit], cand_queries[hit], distances[hit]
        hit = self.alive[cand_rows]
        cand_rows, cand_queries, distances = cand_rows[hit], cand_queries[hit], distances[hit]
        # A match can be found through several chunks: keep one per (query, row).
        _, unique = np.unique(cand_queries * self.size + cand_rows, return_index=True)
        cand_rows, cand_queries = cand_rows[unique], cand_queries[unique]
        distances = distances[unique].astype(np.int32)
        bounds = np.searchsorted(cand_queries, np.arange(len(qwords) + 1))
        for q in np.flatnonzero(np.diff(bounds)).tolist():
            lo, hi = bounds[q], bounds[q + 1]
            yield q, (self.ids[cand_rows[lo:hi]], distances[lo:hi])

    def _scan(self, qword: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact answer by a linear scan, for when probing would cost more."""
        rows, distances = scan(self.words, self.alive, qword, radius)
        return self.ids[rows], distances


def _build_table(keys: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR table of one chunk: offsets (2**width + 1) and rows sorted by key."""
    counts = np.bincount(keys, minlength=1 << width)
    offsets = np.zeros((1 << width) + 1, dtype=np.uint32)
    np.cumsum(counts, out=offsets[1:])
    # Sorting (key << 32 | row) as plain integers is faster than argsort on the keys.
    packed = (keys.astype(np.uint64) << np.uint64(32)) | np.arange(len(keys), dtype=np.uint64)
    packed.sort()
    return offsets, (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
