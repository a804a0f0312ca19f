"""Compiled (numba) loops for the two searches whose numpy form is many tiny calls.

`segment_search` is a multi-index segment's whole per-query search: chunk keys, every
bucket bound up to 2 flipped bits, the planner's choice of levels (the same rules as
`MultiIndexSegment._plan`, so the same buckets and the same scan fallback), 3-bit probes
where the radius needs them, then candidate verification against the full row, the
radius and live filters and de-duplication. `buffer_scan` is the append buffer's scan.
At 1 M PDQ and radius 38 the numpy form spends most of its time in ~40 numpy calls and
their temporaries per query; here it is one call per batch (docs/BENCHMARKS.md).

Both release the GIL (`nogil`), so gRPC threads search in parallel as numpy lets them.
Compiled code is cached on disk (`cache=True`, beside this file or in the user's cache
directory); where neither is writable numba cannot cache and the functions are compiled
once per process instead. `hamming.warm_up_kernels()` compiles (or loads) them before
the first query.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

log = logging.getLogger(__name__)

LEVELS = 3  # flip levels 0, 1, 2 planned per chunk, as in mih.MAX_LEVEL + 1
CANDIDATE_COST_IN_SCAN_ROWS = 12  # kept equal to mih's by tests/test_index.py
SCAN_BLOCK_ROWS = 4096  # append-buffer rows scanned between appends to the output
PREFETCH_AHEAD = 16  # loads in flight: 8 and 32 measured slower at 1 M PDQ


_no_cache_logged = False


def _compile(function: Callable[..., Any], signature: tuple[Any, ...] | None = None) -> Any:
    """njit with an on-disk cache when numba finds a writable place for it; otherwise
    (a read-only install and no writable user cache) compile in memory each process.

    With a signature it compiles now, once: read-only array types accept writable arrays
    too, so memory-mapped (read-only) and in-memory indexes share one compilation.
    """
    global _no_cache_logged
    signatures = None if signature is None else [signature]
    try:
        return njit(signatures, cache=True, nogil=True)(function)
    except RuntimeError as error:  # numba: "cannot cache function ...: no locator"
        if not _no_cache_logged:
            _no_cache_logged = True
            log.warning(
                "numba cannot cache the index's compiled search (%s): compiling it in "
                "memory, which adds seconds to every start",
                error,
            )
        return njit(signatures, nogil=True)(function)


def _readonly(dtype: Any, ndim: int = 1) -> Any:
    return types.Array(dtype, ndim, "C", readonly=True)


_WORDS = _readonly(types.uint64, 2)
_ALIVE = _readonly(types.boolean)
_INT64S = _readonly(types.int64)
_UINT32S = _readonly(types.uint32)


def _popcount_typing(typingctx: Any, value: Any) -> Any:
    """One machine popcount of a uint64 (LLVM's ctpop), as int64: numba would turn
    int64 + uint64 into a float."""
    signature = types.int64(types.uint64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return signature, codegen


_popcount: Any = intrinsic(_popcount_typing)


def _prefetch_typing(typingctx: Any, array: Any, index: Any) -> Any:
    """Ask the CPU to start loading array[index] into cache (LLVM's prefetch: read,
    keep in all levels); never faults, so an index is not checked."""
    signature = types.void(array, index)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        array_type = sig.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, [args[1]], wraparound=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32])
        prefetch = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch.p0")
        read, keep, data = (ir.Constant(int32, v) for v in (0, 3, 1))
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), read, keep, data])
        return context.get_dummy_value()

    return signature, codegen


_prefetch: Any = intrinsic(_prefetch_typing)


def _chunk_key(query: Any, start: int, width: int) -> int:
    """Bits [start, start + width) of one query row (words.chunk_keys for one row)."""
    word = start // 64
    offset = start % 64
    mask = (np.uint64(1) << np.uint64(width)) - np.uint64(1)
    if offset + width <= 64:
        return int((query[word] >> np.uint64(64 - offset - width)) & mask)
    low_bits = offset + width - 64
    high = query[word] << np.uint64(low_bits)
    return int((high | (query[word + 1] >> np.uint64(64 - low_bits))) & mask)


_chunk_key_compiled = _compile(_chunk_key)


def _append(
    out_rows: Any, out_dists: Any, used: int, rows: Any, dists: Any, count: int
) -> tuple[Any, Any]:
    """Append `count` results after the first `used`, doubling the arrays when full."""
    if used + count > len(out_rows):
        capacity = max(2 * len(out_rows), used + count)
        grown_rows = np.empty(capacity, dtype=np.int64)
        grown_dists = np.empty(capacity, dtype=np.int32)
        grown_rows[:used] = out_rows[:used]
        grown_dists[:used] = out_dists[:used]
        out_rows, out_dists = grown_rows, grown_dists
    out_rows[used : used + count] = rows[:count]
    out_dists[used : used + count] = dists[:count]
    return out_rows, out_dists


_append_compiled = _compile(_append)


def _segment_search(
    qwords: Any,
    radius: int,
    force_index: bool,
    words: Any,
    alive: Any,
    offsets: Any,
    rows: Any,
    chunk_starts: Any,
    widths: Any,
    table_bases: Any,
    masks: Any,
    group_starts: Any,
    level3_masks: Any,
    level3_starts: Any,
) -> tuple[Any, Any, Any, Any]:
    """(use_index per query, results per query, matching rows, their distances).

    Queries answered through the tables get their rows ascending in
    rows[sum(counts[:q]) : sum(counts[:q + 1])]; a query whose plan says scan gets
    use_index False and no rows (the caller scans it). Needs radius + 1 <= 4 * chunks.

    Each step is a pass over independent random reads (bucket bounds, then bucket rows,
    then candidate hashes), each prefetched PREFETCH_AHEAD iterations early: the loads
    overlap instead of waiting one after another, which is most of the speed-up.
    """
    n_queries = qwords.shape[0]
    size = words.shape[0]
    n_words = words.shape[1]
    flat_words = words.reshape(-1)
    chunks = widths.shape[0]
    n_probes = masks.shape[0]
    n_groups = chunks * LEVELS
    needed = radius + 1
    use_index = np.zeros(n_queries, dtype=np.bool_)
    counts = np.zeros(n_queries, dtype=np.int64)
    out_rows = np.empty(64, dtype=np.int64)
    out_dists = np.empty(64, dtype=np.int32)
    used = 0
    keys = np.empty(chunks, dtype=np.int64)
    slots = np.empty(n_probes, dtype=np.int64)
    first = np.empty(n_probes, dtype=np.int64)
    lengths = np.empty(n_probes, dtype=np.int64)
    group_sizes = np.zeros(n_groups, dtype=np.int64)
    ranked = np.empty(n_groups, dtype=np.int64)
    selected = np.zeros(n_groups, dtype=np.bool_)
    level2 = np.empty(chunks, dtype=np.int64)
    level3_slots = np.empty(len(level3_masks), dtype=np.int64)
    level3_first = np.empty(len(level3_masks), dtype=np.int64)
    level3_lengths = np.empty(len(level3_masks), dtype=np.int64)
    for q in range(n_queries):
        query = qwords[q]
        for j in range(chunks):
            keys[j] = _chunk_key_compiled(query, chunk_starts[j], widths[j])
            for p in range(group_starts[j * LEVELS], group_starts[(j + 1) * LEVELS]):
                slots[p] = (keys[j] ^ np.int64(masks[p])) + table_bases[j]
        # Every bucket's bounds up to 2 flipped bits.
        for group in range(n_groups):
            base = (group // LEVELS) * size
            total = 0
            for p in range(group_starts[group], group_starts[group + 1]):
                if p + PREFETCH_AHEAD < n_probes:
                    _prefetch(offsets, slots[p + PREFETCH_AHEAD])
                low = np.int64(offsets[slots[p]])
                first[p] = low + base
                lengths[p] = np.int64(offsets[slots[p] + 1]) - low
                total += lengths[p]
            group_sizes[group] = total
        # The planner (mih._plan): the `needed` cheapest levels, each chunk's in order;
        # past 3 levels per chunk, all of them plus 3 bits where level 2 was cheapest.
        candidates = 0
        n_level3 = 0
        if needed <= n_groups:
            for j in range(chunks):
                running = 0
                for level in range(LEVELS):
                    group = j * LEVELS + level
                    running = max(running, group_sizes[group])
                    ranked[group] = running * LEVELS + level
            threshold = np.sort(ranked)[needed - 1]
            for group in range(n_groups):
                selected[group] = ranked[group] <= threshold
                if selected[group]:
                    candidates += group_sizes[group]
        else:
            selected[:] = True
            candidates = group_sizes.sum()
            for j in range(chunks):
                level2[j] = group_sizes[j * LEVELS + LEVELS - 1]
            by_level2 = np.argsort(level2, kind="mergesort")  # stable, as mih's
            extra = needed - n_groups
            for j in by_level2[:extra]:  # their 3-bit buckets, read as the others were
                begin = n_level3
                for p in range(level3_starts[j], level3_starts[j + 1]):
                    level3_slots[n_level3] = (keys[j] ^ np.int64(level3_masks[p])) + table_bases[j]
                    n_level3 += 1
                for k in range(begin, n_level3):
                    if k + PREFETCH_AHEAD < n_level3:
                        _prefetch(offsets, level3_slots[k + PREFETCH_AHEAD])
                    low = np.int64(offsets[level3_slots[k]])
                    level3_first[k] = low + j * size
                    level3_lengths[k] = np.int64(offsets[level3_slots[k] + 1]) - low
                    candidates += level3_lengths[k]
        if not force_index and candidates * CANDIDATE_COST_IN_SCAN_ROWS >= size:
            continue
        use_index[q] = True
        # The chosen buckets, as (first position in `rows`, length).
        chosen = 0
        for group in range(n_groups):
            if selected[group]:
                for p in range(group_starts[group], group_starts[group + 1]):
                    if lengths[p]:
                        first[chosen] = first[p]  # chosen <= p: overwrites only read ones
                        lengths[chosen] = lengths[p]
                        chosen += 1
        if n_level3:
            chosen_first = np.empty(chosen + n_level3, dtype=np.int64)
            chosen_lengths = np.empty(chosen + n_level3, dtype=np.int64)
            chosen_first[:chosen] = first[:chosen]
            chosen_lengths[:chosen] = lengths[:chosen]
            for k in range(n_level3):
                if level3_lengths[k]:
                    chosen_first[chosen] = level3_first[k]
                    chosen_lengths[chosen] = level3_lengths[k]
                    chosen += 1
        else:
            chosen_first, chosen_lengths = first, lengths
        # Their rows, then each candidate verified on the full hash.
        candidate_rows = np.empty(candidates, dtype=np.int64)
        n_candidates = 0
        for b in range(chosen):
            if b + PREFETCH_AHEAD < chosen:
                _prefetch(rows, chosen_first[b + PREFETCH_AHEAD])
            for position in range(chosen_first[b], chosen_first[b] + chosen_lengths[b]):
                candidate_rows[n_candidates] = rows[position]
                n_candidates += 1
        found_rows = np.empty(n_candidates, dtype=np.int64)
        found = 0
        for c in range(n_candidates):
            if c + PREFETCH_AHEAD < n_candidates:
                _prefetch(flat_words, candidate_rows[c + PREFETCH_AHEAD] * n_words)
            row = candidate_rows[c]
            distance = 0  # inline: a call per row would cost reference counting
            for k in range(n_words):
                distance += _popcount(words[row, k] ^ query[k])
            if distance <= radius and alive[row]:
                found_rows[found] = (row << 9) | distance  # distance <= 256 < 2**9
                found += 1
        # A match reached through several chunks is kept once; rows ascend.
        packed = np.sort(found_rows[:found])
        unique_rows = np.empty(found, dtype=np.int64)
        unique_dists = np.empty(found, dtype=np.int32)
        kept = 0
        for k in range(found):
            if k == 0 or packed[k] != packed[k - 1]:
                unique_rows[kept] = packed[k] >> 9
                unique_dists[kept] = packed[k] & 511
                kept += 1
        out_rows, out_dists = _append_compiled(
            out_rows, out_dists, used, unique_rows, unique_dists, kept
        )
        used += kept
        counts[q] = kept
    return use_index, counts, out_rows[:used], out_dists[:used]


_TABLES = (_INT64S, _INT64S, _INT64S, _UINT32S, _INT64S, _UINT32S, _INT64S)  # mih._kernel_tables
segment_search = _compile(
    _segment_search,
    (_WORDS, types.int64, types.boolean, _WORDS, _ALIVE, _UINT32S, _UINT32S, *_TABLES),
)


def _buffer_scan(qwords: Any, radius: int, words: Any, alive: Any) -> tuple[Any, Any, Any]:
    """(results per query, rows, distances) of the live rows within `radius`, each
    query's rows ascending, like words.scan.

    Rows are scanned in blocks whose hits go to a fixed scratch array: a loop that may
    call (to grow the output) runs ~20x slower, as numba then reloads everything per row.
    """
    n_queries = qwords.shape[0]
    n_rows = words.shape[0]
    n_words = words.shape[1]
    counts = np.zeros(n_queries, dtype=np.int64)
    out_rows = np.empty(64, dtype=np.int64)
    out_dists = np.empty(64, dtype=np.int32)
    block_rows = np.empty(SCAN_BLOCK_ROWS, dtype=np.int64)
    block_dists = np.empty(SCAN_BLOCK_ROWS, dtype=np.int32)
    used = 0
    for q in range(n_queries):
        query = qwords[q]
        for start in range(0, n_rows, SCAN_BLOCK_ROWS):
            found = 0
            for row in range(start, min(n_rows, start + SCAN_BLOCK_ROWS)):
                distance = 0
                for k in range(n_words):
                    distance += _popcount(words[row, k] ^ query[k])
                if distance <= radius and alive[row]:
                    block_rows[found] = row
                    block_dists[found] = distance
                    found += 1
            out_rows, out_dists = _append_compiled(
                out_rows, out_dists, used, block_rows, block_dists, found
            )
            used += found
            counts[q] += found
    return counts, out_rows[:used], out_dists[:used]


buffer_scan = _compile(_buffer_scan, (_WORDS, types.int64, _WORDS, _ALIVE))
