"""Hamming and exact indexes against a brute-force oracle.

A missed match lets a re-upload through, and a wrong distance changes the decision, so
every search result is compared with a naive popcount over the raw bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.index import ExactIndex, HammingIndex, kernels, mih
from service.index.hamming import KERNEL_VARIABLE

ROOT = Path(__file__).resolve().parent.parent

# Every behaviour test runs against both ways the index answers: as the service builds it
# ("auto": small lists are scanned), and forced through the multi-index tables with merges
# every few dozen rows, so the tables, the buffers and the merges all meet the oracle;
# each with the compiled search (the default) and with the numpy one.
CONFIGS = {
    "auto": {},
    "multi_index": {"strategy": "multi_index", "merge_rows": 64},
    "auto_numpy": {"kernel": "numpy"},
    "multi_index_numpy": {"strategy": "multi_index", "merge_rows": 64, "kernel": "numpy"},
}
KERNELS = ("compiled", "numpy")


def make_index(bits: int, config: str) -> HammingIndex:
    return HammingIndex(bits, **CONFIGS[config])  # type: ignore[arg-type]


both_configs = pytest.mark.parametrize("config", list(CONFIGS))


def popcount_distance(a: bytes, b: bytes) -> int:
    """The oracle: Hamming distance by Python int bit counting, independent of numpy."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def brute_force(entries: dict[int, bytes], query: bytes, radius: int) -> dict[int, int]:
    """Every (id -> distance) within radius, the hard way."""
    found = {}
    for entry_id, value in entries.items():
        d = popcount_distance(value, query)
        if d <= radius:
            found[entry_id] = d
    return found


def as_dict(result: tuple[np.ndarray, np.ndarray]) -> dict[int, int]:
    """One search result row as id -> distance, asserting no id is reported twice."""
    ids, dists = result
    assert ids.dtype == np.int64
    assert len(ids) == len(dists)
    pairs = dict(zip(ids.tolist(), dists.tolist(), strict=True))
    assert len(pairs) == len(ids), "an id was reported twice"
    return pairs


def random_hashes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """Seeded random hashes in the canonical (n, bits // 8) uint8 layout."""
    return rng.integers(0, 256, size=(n, bits // 8), dtype=np.uint8)


def flip_bits(value: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """A copy of `value` with exactly the given (distinct) bit positions flipped."""
    bits = np.unpackbits(value.copy())
    bits[positions] ^= 1
    return np.packbits(bits)


def to_rows(entries: dict[int, bytes], bits: int) -> tuple[np.ndarray, np.ndarray]:
    """A model dict as the (ids, hashes) arrays add() takes."""
    ids = np.fromiter(entries, dtype=np.int64, count=len(entries))
    hashes = np.frombuffer(b"".join(entries.values()), dtype=np.uint8).reshape(-1, bits // 8)
    return ids, hashes


def check_against_oracle(
    index: HammingIndex, entries: dict[int, bytes], queries: np.ndarray, radius: int
) -> None:
    """Every query row's result equals the brute-force answer, ids and distances."""
    results = index.search(queries, radius)
    assert len(results) == len(queries)
    for query, result in zip(queries, results, strict=True):
        assert as_dict(result) == brute_force(entries, query.tobytes(), radius)
    assert len(index) == len(entries)


# --- HammingIndex: basics ------------------------------------------------------------


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_empty_index_finds_nothing(bits: int, config: str) -> None:
    """Searching before anything was added is normal at start-up and must not fail."""
    index = make_index(bits, config)
    queries = random_hashes(np.random.default_rng(0), 3, bits)
    results = index.search(queries, bits)  # even the widest radius
    assert [len(ids) for ids, _ in results] == [0, 0, 0]
    assert len(index) == 0
    assert index.search(queries[:0], 10) == []


@pytest.mark.parametrize("bits", [32, 128, 512])
def test_unsupported_widths_are_refused(bits: int) -> None:
    """Only PDQ (256) and pHash (64) widths exist; anything else is a caller bug."""
    with pytest.raises(ValueError):
        HammingIndex(bits)


@pytest.mark.parametrize("bits", [64, 256])
def test_wrong_shapes_are_refused(bits: int) -> None:
    """A hash of the other algorithm's width must not be silently reinterpreted."""
    index = HammingIndex(bits)
    other = 256 if bits == 64 else 64
    with pytest.raises(ValueError):
        index.add(np.array([1], dtype=np.int64), np.zeros((1, other // 8), dtype=np.uint8))
    with pytest.raises(ValueError):
        index.add(np.array([1, 2], dtype=np.int64), np.zeros((1, bits // 8), dtype=np.uint8))
    with pytest.raises(ValueError):
        index.add(np.array([1, 1], dtype=np.int64), np.zeros((2, bits // 8), dtype=np.uint8))
    with pytest.raises(ValueError):
        index.search(np.zeros((1, other // 8), dtype=np.uint8), 5)
    assert len(index) == 0


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_random_data_matches_brute_force(bits: int, config: str) -> None:
    """Random entries, random and stored queries, radii from 0 to all bits."""
    rng = np.random.default_rng(1234)
    hashes = random_hashes(rng, 3000, bits)
    ids = rng.choice(10**12, size=3000, replace=False).astype(np.int64)
    index = make_index(bits, config)
    index.add(ids, hashes)
    entries = {int(i): h.tobytes() for i, h in zip(ids, hashes, strict=True)}
    queries = np.concatenate([random_hashes(rng, 5, bits), hashes[:5]])
    mean = bits // 2  # random pairs sit around half the bits apart
    for radius in [0, 1, mean - 8, mean, mean + 8, bits]:
        check_against_oracle(index, entries, queries, radius)


@pytest.mark.parametrize(
    ("bits", "radius"), [(64, 0), (64, 1), (64, 10), (256, 0), (256, 1), (256, 31), (256, 100)]
)
@both_configs
def test_planted_hashes_at_exactly_radius_and_one_more(bits: int, radius: int, config: str) -> None:
    """The boundary is inclusive: distance r matches at radius r, r + 1 does not."""
    rng = np.random.default_rng(radius * 1000 + bits)
    query = random_hashes(rng, 1, bits)[0]
    at_r = flip_bits(query, rng.choice(bits, size=radius, replace=False))
    beyond = flip_bits(query, rng.choice(bits, size=radius + 1, replace=False))
    assert popcount_distance(at_r.tobytes(), query.tobytes()) == radius
    assert popcount_distance(beyond.tobytes(), query.tobytes()) == radius + 1

    index = make_index(bits, config)
    background = random_hashes(rng, 500, bits)
    index.add(np.arange(500, dtype=np.int64), background)
    index.add(np.array([7_000_000, 9_000_000_000], dtype=np.int64), np.stack([at_r, beyond]))
    found = as_dict(index.search(query[None, :], radius)[0])
    assert found.get(7_000_000) == radius
    assert 9_000_000_000 not in found
    wider = as_dict(index.search(query[None, :], radius + 1)[0])
    assert wider.get(7_000_000) == radius
    assert wider.get(9_000_000_000) == radius + 1
    entries = {i: h.tobytes() for i, h in enumerate(background)}
    entries |= {7_000_000: at_r.tobytes(), 9_000_000_000: beyond.tobytes()}
    check_against_oracle(index, entries, query[None, :], radius)


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_the_complement_is_all_bits_away(bits: int, config: str) -> None:
    """Every bit differing is the one distance whose per-word counts overflow a byte
    sum in the scan; it must read as `bits`, not wrap to 0."""
    value = random_hashes(np.random.default_rng(3), 1, bits)
    index = make_index(bits, config)
    index.add(np.array([1, 2], dtype=np.int64), np.concatenate([value, ~value]))
    assert as_dict(index.search(value, bits)[0]) == {1: 0, 2: bits}
    assert as_dict(index.search(value, bits - 1)[0]) == {1: 0}
    assert as_dict(index.search(~value, 0)[0]) == {2: 0}


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_duplicate_values_under_different_ids_are_all_found(bits: int, config: str) -> None:
    """Two victims can submit the same photo; both entries must match."""
    rng = np.random.default_rng(5)
    value = random_hashes(rng, 1, bits)
    index = make_index(bits, config)
    index.add(np.array([10, 20, 30], dtype=np.int64), np.repeat(value, 3, axis=0))
    assert as_dict(index.search(value, 0)[0]) == {10: 0, 20: 0, 30: 0}
    assert index.remove(np.array([20])) == 1
    assert as_dict(index.search(value, 0)[0]) == {10: 0, 30: 0}


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_re_adding_an_id_replaces_its_hash(bits: int, config: str) -> None:
    """An updated entry must match by its new value only, and still count once."""
    rng = np.random.default_rng(6)
    old, new, other = random_hashes(rng, 3, bits)
    index = make_index(bits, config)
    index.add(np.array([1, 2], dtype=np.int64), np.stack([old, other]))
    index.add(np.array([1], dtype=np.int64), new[None, :])
    assert len(index) == 2
    assert 1 not in as_dict(index.search(old[None, :], 0)[0])
    assert as_dict(index.search(new[None, :], 0)[0]) == {1: 0}
    assert as_dict(index.search(other[None, :], 0)[0]) == {2: 0}


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_removal_then_search(bits: int, config: str) -> None:
    """A withdrawn entry must stop matching at once; unknown ids are ignored."""
    rng = np.random.default_rng(7)
    hashes = random_hashes(rng, 50, bits)
    index = make_index(bits, config)
    index.add(np.arange(50, dtype=np.int64), hashes)
    assert index.remove(np.array([3, 4, 999, 3], dtype=np.int64)) == 2
    assert index.remove(np.array([3], dtype=np.int64)) == 0
    assert len(index) == 48
    assert index.search(hashes[3:5], 0)[0][0].size == 0
    assert index.search(hashes[3:5], 0)[1][0].size == 0
    entries = {i: h.tobytes() for i, h in enumerate(hashes) if i not in (3, 4)}
    check_against_oracle(index, entries, hashes[:10], bits // 2)
    assert index.remove(np.arange(50, dtype=np.int64)) == 48
    assert len(index) == 0
    assert index.search(hashes, bits)[0][0].size == 0


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_interleaved_adds_and_removes_through_merges(bits: int, config: str) -> None:
    """Growth, removals, re-adds and merges must never lose or invent an entry."""
    rng = np.random.default_rng(8)
    index = make_index(bits, config)
    entries: dict[int, bytes] = {}
    next_id = 0
    probes = random_hashes(rng, 4, bits)
    for step in range(30):
        n_add = int(rng.integers(200, 900))
        new_ids = np.arange(next_id, next_id + n_add, dtype=np.int64)
        next_id += n_add
        # Re-add some live ids with new values: they replace, not duplicate.
        live = np.fromiter(entries, dtype=np.int64, count=len(entries))
        readd = rng.choice(live, size=min(50, live.size), replace=False) if live.size else live
        ids = np.concatenate([new_ids, readd.astype(np.int64)])
        hashes = random_hashes(rng, ids.size, bits)
        # Plant a few near the probes so small radii have something to find.
        hashes[:4] = [flip_bits(p, rng.choice(bits, size=step % 6, replace=False)) for p in probes]
        index.add(ids, hashes)
        entries.update({int(i): h.tobytes() for i, h in zip(ids, hashes, strict=True)})

        live = np.fromiter(entries, dtype=np.int64, count=len(entries))
        doomed = rng.choice(live, size=int(live.size * 0.7), replace=False)
        unknown = np.array([-1, next_id + 10], dtype=np.int64)
        assert index.remove(np.concatenate([doomed, unknown])) == doomed.size
        for entry_id in doomed.tolist():
            del entries[entry_id]

        check_against_oracle(index, entries, probes, 5)
        if step % 5 == 0:
            check_against_oracle(index, entries, probes, bits // 2)
    index.flush()
    check_against_oracle(index, entries, probes, 5)
    stats = index.stats()
    if config == "multi_index":
        assert stats["merges"] >= 10  # the workload really went through merges
        assert stats["multi_index"] > 0
    assert stats["indexed_rows"] == len(entries)  # removed rows are merged away
    assert stats["buffered_rows"] == 0


# --- HammingIndex: properties --------------------------------------------------------


ENTRY_IDS = st.integers(-5, 40)


History = list[tuple[str, dict[int, bytes]]]


def flipped(value: bytes, positions: list[int]) -> bytes:
    as_int = int.from_bytes(value, "big")
    for bit in set(positions):
        as_int ^= 1 << bit
    return as_int.to_bytes(len(value), "big")


@st.composite
def hash_values(draw: st.DrawFn, bits: int, pool: list[bytes], radius: int) -> bytes:
    """Random, duplicate, clustered (r or r + 1 bits from a pool value, or a few bits),
    and low-entropy values (a few bits set: huge buckets for the multi-index)."""
    width = bits // 8
    kind = draw(st.sampled_from(["random", "duplicate", "at_r", "beyond_r", "near", "sparse"]))
    if kind == "random":
        return draw(st.binary(min_size=width, max_size=width))
    if kind == "sparse":
        return flipped(bytes(width), draw(st.lists(st.integers(0, bits - 1), max_size=6)))
    base = draw(st.sampled_from(pool))
    if kind == "duplicate":
        return base
    flips = {"at_r": radius, "beyond_r": radius + 1}.get(kind) or draw(st.integers(1, 4))
    positions = draw(st.permutations(range(bits)))[: min(flips, bits)]
    return flipped(base, positions)


@st.composite
def index_histories(draw: st.DrawFn, bits: int, radius: int) -> tuple[History, np.ndarray]:
    """A random sequence of add/remove operations over a small id space, plus queries."""
    width = bits // 8
    pool = draw(st.lists(st.binary(min_size=width, max_size=width), min_size=1, max_size=6))
    values = hash_values(bits, pool, radius)
    ops = []
    for _ in range(draw(st.integers(1, 8))):
        chosen = draw(st.dictionaries(ENTRY_IDS, values, max_size=12))
        ops.append((draw(st.sampled_from(["add", "remove"])), chosen))
    extra = draw(st.binary(min_size=width, max_size=width))
    queries = np.frombuffer(b"".join([*pool, extra, bytes(width)]), dtype=np.uint8)
    return ops, queries.reshape(-1, width)


def replay(index: HammingIndex, ops: History) -> dict[int, bytes]:
    """Apply the operations to both the index and a plain dict model."""
    bits = index.bits
    model: dict[int, bytes] = {}
    for op, chosen in ops:
        if op == "add":
            if chosen:
                index.add(*to_rows(chosen, bits))
            model |= chosen
        else:
            expected = sum(1 for i in chosen if i in model)
            removed = index.remove(np.fromiter(chosen, dtype=np.int64, count=len(chosen)))
            assert removed == expected
            for entry_id in chosen:
                model.pop(entry_id, None)
    return model


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize(
    ("bits", "radii"), [(64, [0, 1, 7, 8, 26, 31]), (256, [0, 1, 30, 31, 100])]
)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_property_multi_index_equals_brute_force(
    kernel: str, bits: int, radii: list[int], data: st.DataObject
) -> None:
    """Through the tables, with a merge every few rows: any history, any data. Small
    lists get 8-bit chunks, so the largest radii need 3 flipped bits in some chunks."""
    radius = data.draw(st.sampled_from(radii))
    ops, queries = data.draw(index_histories(bits, radius))
    index = HammingIndex(bits, strategy="multi_index", merge_rows=4, kernel=kernel)  # type: ignore[arg-type]
    model = replay(index, ops)
    check_against_oracle(index, model, queries, radius)
    index.flush()
    check_against_oracle(index, model, queries, radius)


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bits", [64, 256])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_property_index_equals_brute_force_at_any_radius(
    kernel: str, bits: int, data: st.DataObject
) -> None:
    """As the service builds it, at every radius up to all bits (scan fallback included)."""
    radius = data.draw(st.integers(0, bits))
    ops, queries = data.draw(index_histories(bits, min(radius, bits - 1)))
    index = HammingIndex(bits, merge_rows=3, kernel=kernel)  # type: ignore[arg-type]
    model = replay(index, ops)
    check_against_oracle(index, model, queries, radius)


@pytest.mark.parametrize("bits", [64, 256])
@both_configs
def test_any_int64_id_works(bits: int, config: str) -> None:
    """Removal is a live flag, not a reserved id: negative and extreme ids are entries."""
    rng = np.random.default_rng(4)
    values = random_hashes(rng, 3, bits)
    ids = np.array([-1, np.iinfo(np.int64).min, np.iinfo(np.int64).max], dtype=np.int64)
    index = make_index(bits, config)
    index.add(ids, values)
    index.flush()
    assert as_dict(index.search(values[:1], 0)[0]) == {-1: 0}
    assert index.remove(ids[1:2]) == 1
    assert as_dict(index.search(values[1:2], 0)[0]) == {}
    assert as_dict(index.search(values[2:3], 0)[0]) == {int(ids[2]): 0}


@pytest.mark.parametrize("bits", [64, 256])
def test_re_adding_the_same_ids_does_not_grow_forever(bits: int) -> None:
    rng = np.random.default_rng(5)
    index = HammingIndex(bits, merge_rows=1000)
    ids = np.arange(2000, dtype=np.int64)
    for _ in range(10):
        index.add(ids, rng.integers(0, 256, (2000, bits // 8), dtype=np.uint8))
    assert len(index) == 2000
    index.flush()
    assert index.stats()["indexed_rows"] == 2000  # replaced rows merged away


# --- HammingIndex: concurrency -------------------------------------------------------


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@pytest.mark.parametrize("kernel", KERNELS)
def test_searches_during_writes_always_find_untouched_entries(kernel: str) -> None:
    """The matcher searches while moderators add and withdraw entries: an entry that was
    added and never removed must never drop out of a result, and no reported distance
    may be wrong, while rows grow, get tombstoned and get compacted underneath."""
    bits, radius, n_stable, rounds, add_chunks = 256, 8, 240, 24, 6
    rng = np.random.default_rng(9)
    stable = random_hashes(rng, n_stable, bits)
    # Queries sit a few bits from each stable entry; churn entries are planted near them
    # too, so results constantly gain and lose rows while the searches run.
    queries = np.stack(
        [
            flip_bits(h, rng.choice(bits, size=int(rng.integers(0, radius + 1)), replace=False))
            for h in stable
        ]
    )
    churn_ids = np.arange(10_000, 13_000, dtype=np.int64)
    churn = np.stack(
        [
            flip_bits(
                stable[i % n_stable],
                rng.choice(bits, size=int(rng.integers(0, 12)), replace=False),
            )
            for i in range(churn_ids.size)
        ]
    )
    every_hash = {i: h.tobytes() for i, h in enumerate(stable)}
    every_hash |= {int(i): h.tobytes() for i, h in zip(churn_ids, churn, strict=True)}
    # Stable entries arrive a few at a time between churn rows, so compaction has to
    # move them while readers hold earlier snapshots.
    stable_slices = np.array_split(np.arange(n_stable), rounds * add_chunks)

    # Merges every few hundred rows run in the background while the readers search.
    index = HammingIndex(bits, strategy="multi_index", merge_rows=300, kernel=kernel)  # type: ignore[arg-type]
    errors: list[BaseException] = []
    published = [0]  # stable ids below this have had add() return
    writer_done = threading.Event()
    searches = [0, 0, 0]

    def write() -> None:
        try:
            slices = iter(stable_slices)
            for round_ in range(rounds):
                order = np.random.default_rng(round_).permutation(churn_ids.size)
                for chunk in np.array_split(order, add_chunks):  # grows past capacity
                    index.add(churn_ids[chunk], churn[chunk])
                    new = next(slices)
                    index.add(new.astype(np.int64), stable[new])
                    published[0] = int(new[-1]) + 1
                for chunk in np.array_split(order, 10):  # compacts when under half live
                    index.remove(churn_ids[chunk])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            writer_done.set()

    def search(slot: int) -> None:
        try:
            while not writer_done.is_set() or searches[slot] < 20:
                must_find = published[0]
                for query_no, result in enumerate(index.search(queries, radius)):
                    found = as_dict(result)
                    query = queries[query_no].tobytes()
                    if query_no < must_find:
                        expected = popcount_distance(every_hash[query_no], query)
                        assert found.get(query_no) == expected, (query_no, found)
                    for entry_id, dist in found.items():
                        true = popcount_distance(every_hash[entry_id], query)
                        assert dist == true <= radius, (entry_id, dist, true)
                searches[slot] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=search, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=write))
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so reads land mid-write
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        sys.setswitchinterval(switch_interval)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert published[0] == n_stable
    assert min(searches) >= 20
    assert len(index) == n_stable
    assert index.stats()["merges"] >= 10
    check_against_oracle(index, dict(enumerate(map(bytes, stable))), queries, radius)


def test_bulk_adds_racing_small_adds_and_merges_lose_nothing() -> None:
    """A bulk add (which merges at once) arriving while other writers add small batches
    and background merges run must neither drop a row nor keep a replaced one."""
    rng = np.random.default_rng(14)
    bits = 64
    index = HammingIndex(bits, merge_rows=200)
    bulk_ids = np.arange(100_000, 106_000, dtype=np.int64)
    bulk = random_hashes(rng, len(bulk_ids), bits)
    small = [
        (np.arange(i * 150, (i + 1) * 150, dtype=np.int64), random_hashes(rng, 150, bits))
        for i in range(40)
    ]
    errors: list[BaseException] = []

    def run(work: list[tuple[np.ndarray, np.ndarray]]) -> None:
        try:
            for ids, hashes in work:
                index.add(ids, hashes)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(small[:20],)),
        threading.Thread(target=run, args=([(bulk_ids, bulk)],)),
        threading.Thread(target=run, args=(small[20:],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    entries = {int(i): h.tobytes() for i, h in zip(bulk_ids, bulk, strict=True)}
    for ids, hashes in small:
        entries.update({int(i): h.tobytes() for i, h in zip(ids, hashes, strict=True)})
    index.flush()
    assert len(index) == len(entries) == index.stats()["indexed_rows"]
    probes = np.concatenate([bulk[:5], small[0][1][:5], small[-1][1][:5]])
    check_against_oracle(index, entries, probes, 3)


# --- HammingIndex: planning, snapshots -------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_planner_probes_random_lists_and_scans_degenerate_ones(kernel: str) -> None:
    """Uniform hashes are answered through the tables; a list where every hash is nearly
    all zeros would make every row a candidate, so the planner scans instead, and both
    choices are counted where the service's metrics read them."""
    rng = np.random.default_rng(11)
    uniform = HammingIndex(256, kernel=kernel)  # type: ignore[arg-type]
    uniform.add(np.arange(20_000, dtype=np.int64), random_hashes(rng, 20_000, 256))
    uniform.search(random_hashes(rng, 10, 256), 31)
    assert uniform.stats()["multi_index"] == 10
    assert uniform.stats()["scan"] == 0

    sparse_bits = rng.random((20_000, 256)) < 0.02
    degenerate = HammingIndex(256, kernel=kernel)  # type: ignore[arg-type]
    hashes = np.packbits(sparse_bits, axis=1)
    degenerate.add(np.arange(20_000, dtype=np.int64), hashes)
    entries = {i: h.tobytes() for i, h in enumerate(hashes)}
    check_against_oracle(degenerate, entries, np.zeros((2, 32), dtype=np.uint8), 31)
    assert degenerate.stats()["scan"] == 2


@pytest.mark.parametrize("kernel", KERNELS)
def test_radius_beyond_two_flips_per_chunk_probes_three(kernel: str) -> None:
    """20,000 PDQ rows get 18 chunks of 14-15 bits; radius 60 needs more than 2 flipped
    bits in some chunks, so those are probed at 3 bits (forced here: at this size the
    planner would rather scan), and the answer is still exact."""
    rng = np.random.default_rng(13)
    hashes = random_hashes(rng, 20_000, 256)
    queries = hashes[:6].copy()
    hashes[20:26] = [flip_bits(q, rng.choice(256, size=60, replace=False)) for q in queries]
    hashes[26:32] = [flip_bits(q, rng.choice(256, size=61, replace=False)) for q in queries]
    index = HammingIndex(256, strategy="multi_index", kernel=kernel)  # type: ignore[arg-type]
    index.add(np.arange(20_000, dtype=np.int64), hashes)
    entries = {i: h.tobytes() for i, h in enumerate(hashes)}
    check_against_oracle(index, entries, queries, 60)
    assert index.stats()["multi_index"] == 6


# --- HammingIndex: the compiled search against the numpy one -------------------------


def skewed_hashes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """Bit i set with its own probability: uneven buckets, so plans differ per query."""
    return np.packbits(rng.random((n, bits)) < rng.uniform(0.1, 0.9, bits), axis=1)


def sparse_hashes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """Nearly all-zero hashes: huge buckets, so the planner scans."""
    return np.packbits(rng.random((n, bits)) < 0.02, axis=1)


DATA = {"random": random_hashes, "skewed": skewed_hashes, "sparse": sparse_hashes}


def plans(index: HammingIndex) -> tuple[int, int]:
    stats = index.stats()
    return stats["multi_index"], stats["scan"]


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@pytest.mark.parametrize("strategy", ["auto", "multi_index"])
@pytest.mark.parametrize(
    ("bits", "data", "radii"),
    [
        (256, "random", [0, 8, 31, 38, 39, 55, 70, 128]),
        (256, "skewed", [16, 31, 38, 50]),
        (256, "sparse", [10, 31]),
        (64, "random", [0, 8, 12, 16]),
        (64, "skewed", [4, 10]),
    ],
)
def test_compiled_and_numpy_give_identical_answers_and_plans(
    bits: int, data: str, radii: list[int], strategy: str
) -> None:
    """Same ids in the same order, same int32 distances and the same plan per query
    (probe or scan, as counted for the metrics), for single queries and for batches
    longer than one planning batch; with removals, a buffer, and 3-bit probes (radius
    39 and up at 13-14 chunks) in play."""
    make = DATA[data]
    rng = np.random.default_rng(bits + len(radii))
    hashes = make(rng, 20_000, bits)
    near = [
        flip_bits(h, rng.choice(bits, size=int(rng.integers(0, bits // 6)), replace=False))
        for h in hashes[:60]
    ]
    queries = np.concatenate([np.stack(near), make(rng, 40, bits)])
    assert len(queries) > mih.QUERY_BATCH
    indexes = {
        kernel: HammingIndex(bits, strategy=strategy, kernel=kernel)  # type: ignore[arg-type]
        for kernel in KERNELS
    }
    for index in indexes.values():
        index.add(np.arange(20_000, dtype=np.int64), hashes)
        index.remove(np.arange(0, 20_000, 11, dtype=np.int64))
        index.add(np.arange(30_000, 30_050, dtype=np.int64), hashes[100:150])  # buffered
        assert index.stats()["buffered_rows"] == 50
    entries = {i: h.tobytes() for i, h in enumerate(hashes) if i % 11}
    entries |= {30_000 + i: h.tobytes() for i, h in enumerate(hashes[100:150])}
    planned = {kernel: [0, 0] for kernel in KERNELS}
    for radius in radii:
        answers = {}
        for kernel, index in indexes.items():
            before = plans(index)
            answers[kernel] = index.search(queries, radius)
            after = plans(index)
            planned[kernel] = [
                p + a - b for p, a, b in zip(planned[kernel], after, before, strict=True)
            ]
        assert planned["compiled"] == planned["numpy"], radius
        singles = [indexes["compiled"].search(q[None, :], radius)[0] for q in queries]
        for ours, single, theirs in zip(
            answers["compiled"], singles, answers["numpy"], strict=True
        ):
            for got in (ours, single):
                assert got[0].dtype == np.int64 and got[1].dtype == np.int32
                assert np.array_equal(got[0], theirs[0]), radius
                assert np.array_equal(got[1], theirs[1]), radius
        check_against_oracle(indexes["compiled"], entries, queries[::10], radius)
    if strategy == "multi_index":
        assert planned["compiled"][0] > 0
    elif data == "sparse":
        assert planned["compiled"][1] > 0  # the scan fallback was compared too


def test_kernel_is_chosen_by_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy search stays selectable without a code change (benchmarks, or a platform
    where numba misbehaves); a misspelt choice is refused, not silently replaced."""
    monkeypatch.delenv(KERNEL_VARIABLE, raising=False)
    assert HammingIndex(64).kernel == "compiled"
    monkeypatch.setenv(KERNEL_VARIABLE, "numpy")
    assert HammingIndex(64).kernel == "numpy"
    assert HammingIndex(64, kernel="compiled").kernel == "compiled"
    monkeypatch.setenv(KERNEL_VARIABLE, "fast")
    with pytest.raises(ValueError, match=KERNEL_VARIABLE):
        HammingIndex(64)
    with pytest.raises(ValueError, match="kernel must be one of"):
        HammingIndex(64, kernel="fast")  # type: ignore[arg-type]


def test_compiled_planner_uses_the_numpy_planner_constants() -> None:
    """The compiled loop re-implements the planner; its copies of the cost model and
    the planned levels must stay equal to mih's, or the plans (and metrics) diverge."""
    assert kernels.CANDIDATE_COST_IN_SCAN_ROWS == mih.CANDIDATE_COST_IN_SCAN_ROWS
    assert kernels.LEVELS == mih.MAX_LEVEL + 1


READ_ONLY_CHECK = """
import logging, numpy as np
logging.basicConfig(level=logging.WARNING)
from service.index import HammingIndex
rng = np.random.default_rng(0)
hashes = rng.integers(0, 256, (5000, 32), dtype=np.uint8)
index = HammingIndex(256, strategy="multi_index")
index.add(np.arange(5000, dtype=np.int64), hashes)
ids, distances = index.search(hashes[7:8], 20)[0]
print("found", ids.tolist(), distances.tolist(), index.kernel)
"""


@pytest.mark.slow
@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0, reason="needs root for a read-only bind mount"
)
def test_compiled_search_works_where_no_cache_can_be_written(tmp_path: Path) -> None:
    """Installed read-only (an image, a read-only root file system) with no writable
    user cache, numba cannot cache: the index must still start and answer, compiling
    in memory, and say why start-up is slower."""
    cache = tmp_path / "cache"
    cache.mkdir()
    mounts = f"mount --bind -o ro {ROOT / 'service'} {ROOT / 'service'}"
    mounts += f" && mount --bind -o ro {cache} {cache}"
    script = tmp_path / "check.py"
    script.write_text(READ_ONLY_CHECK)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HOME": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop(KERNEL_VARIABLE, None)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mounts], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode().strip()}")
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{mounts} && exec {sys.executable} {script}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert "found [7] [0] compiled" in result.stdout
    assert "numba cannot cache the index's compiled search" in result.stderr
    assert not any(cache.iterdir())


# --- ExactIndex ----------------------------------------------------------------------


def exact(index: ExactIndex, ids: list[int], values: list[bytes]) -> None:
    hashes = np.frombuffer(b"".join(values), np.uint8).reshape(len(values), index.size)
    index.add(np.array(ids, dtype=np.int64), hashes)


def lookup(index: ExactIndex, value: bytes) -> list[int]:
    ids, distances = index.search(np.frombuffer(value, np.uint8).reshape(1, -1), 0)[0]
    assert not distances.any()
    return sorted(ids.tolist())


def test_exact_index_lookup_add_remove() -> None:
    """SHA-256/MD5 entries match by equality only, one tuple of ids per value."""
    a, b, c = (bytes([i]) * 32 for i in (1, 2, 3))
    index = ExactIndex(32)
    assert lookup(index, a) == []
    exact(index, [1, 2, 3], [a, a, b])
    assert lookup(index, a) == [1, 2]
    assert lookup(index, b) == [3]
    assert lookup(index, c) == []
    assert lookup(index, a[:-1] + b"\x00") == []  # one byte off is no match
    assert len(index) == 3

    assert index.remove(np.array([1, 99])) == 1
    assert lookup(index, a) == [2]
    assert index.remove(np.array([1])) == 0
    assert len(index) == 2
    with pytest.raises(ValueError, match="radius 0 only"):
        index.search(np.frombuffer(a, np.uint8).reshape(1, -1), 1)


def test_exact_index_re_add_moves_the_id() -> None:
    """Re-adding an id replaces its value; the old value must no longer find it."""
    a, b = b"\xaa" * 16, b"\xbb" * 16
    index = ExactIndex(16)
    exact(index, [7], [a])
    exact(index, [7], [b])
    assert lookup(index, a) == []
    assert lookup(index, b) == [7]
    assert len(index) == 1
    exact(index, [7, 8], [b, b])
    assert lookup(index, b) == [7, 8]
    assert len(index) == 2


@settings(max_examples=80, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.booleans(),
            st.dictionaries(
                st.integers(0, 20), st.sampled_from([b"\x01" * 4, b"\x02" * 4, b"\x03" * 4])
            ),
        ),
        max_size=10,
    )
)
def test_property_exact_index_equals_model(ops: list[tuple[bool, dict[int, bytes]]]) -> None:
    """Any add/remove/re-add history leaves lookups equal to a plain dict model."""
    index = ExactIndex(4)
    model: dict[int, bytes] = {}
    for is_add, chosen in ops:
        if is_add:
            exact(index, list(chosen), list(chosen.values()))
            model |= chosen
        else:
            assert index.remove(np.array(list(chosen), dtype=np.int64)) == sum(
                1 for i in chosen if i in model
            )
            for entry_id in chosen:
                model.pop(entry_id, None)
    assert len(index) == len(model)
    for value in (b"\x01" * 4, b"\x02" * 4, b"\x03" * 4):
        assert lookup(index, value) == sorted(i for i, v in model.items() if v == value)
