"""What a PDQ match radius costs the index: search time per query against a list of
seeded random PDQ hashes, for a range of radii, one query (a precomputed-hash check) and
8 queries at once (an image check: its dihedral variants).

The PDQ threshold is bounded above by false matches (docs/QUALITY.md); within that bound
it is also a cost: a multi-index answers small radii by probing and large ones by
scanning. Each answer is checked against a plain numpy popcount.
Both search kernels (compiled, numpy) answer the same queries on the same index, query by
query in alternating order, so their ratio is measured under the same machine load.
`--dataset` takes loadtests/bench_index.py's data sets instead (uniform, skewed, photos;
`--bits 64` for pHash), with its queries: half near a stored hash, half unrelated.
Run: python -m loadtests.radius_cost [--entries 1000000] [--radii 31,38,39,53]
     python -m loadtests.radius_cost --dataset skewed --entries 10000000 --radii 31,38
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence

import numpy as np

from service.index import HammingIndex
from service.index.hamming import KERNELS, warm_up_kernels
from service.index.words import hashes_to_words


def _search_ms(index: HammingIndex, queries: np.ndarray, radius: int, kernel: str) -> float:
    index.kernel = kernel  # type: ignore[assignment]
    started = time.perf_counter()
    index.search(queries, radius)
    return (time.perf_counter() - started) * 1e3


def _timed(
    index: HammingIndex, batches: list[np.ndarray], radius: int, kernels: list[str]
) -> dict[str, list[float]]:
    """Milliseconds per batch for each kernel, the kernels taking turns going first."""
    times: dict[str, list[float]] = {kernel: [] for kernel in kernels}
    for number, batch in enumerate(batches):
        turn = kernels[number % len(kernels) :] + kernels[: number % len(kernels)]
        for kernel in turn:
            times[kernel].append(_search_ms(index, batch, radius, kernel))
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--radii", default="31,34,36,38,39,40,45,53")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds for merges")
    parser.add_argument("--kernels", default=",".join(KERNELS), help="compiled,numpy")
    parser.add_argument("--dataset", help="uniform, skewed or photos (bench_index's)")
    parser.add_argument("--bits", type=int, default=256, help="256 (PDQ) or 64 (pHash)")
    args = parser.parse_args(argv)
    kernels = args.kernels.split(",")
    ready = warm_up_kernels() if "compiled" in kernels else 0.0
    rng = np.random.default_rng(0)
    if args.dataset:
        from loadtests.bench_index import make_dataset

        hashes, queries = make_dataset(
            args.dataset, args.entries, args.bits, args.queries, seed=args.entries + args.bits
        )
        described = f"{args.dataset} {'PDQ' if args.bits == 256 else 'pHash'} (bench_index's)"
    else:
        hashes = rng.integers(0, 256, (args.entries, args.bits // 8), dtype=np.uint8)
        queries = hashes[rng.integers(0, args.entries, args.queries)].copy()
        queries[:, :4] ^= rng.integers(0, 256, (args.queries, 4), dtype=np.uint8)  # near a hit
        described = "random PDQ" if args.bits == 256 else "random pHash"
    index = HammingIndex(args.bits)
    index.add(np.arange(args.entries, dtype=np.int64), hashes)
    time.sleep(args.settle)  # let background merges finish, as in a server that has started
    words = hashes_to_words(hashes, args.bits)
    print(
        f"{args.entries:,} {described} entries; cores {os.cpu_count()}, load average "
        f"{os.getloadavg()[0]:.2f}; radii measured in turn; compiled search ready in "
        f"{ready:.2f} s\n"
    )
    print(
        f"{'radius':>6} {'kernel':>9} {'1 query ms p50':>15} {'p99':>7} {'8 queries ms p50':>17} "
        f"{'verified':>9}"
    )
    singles = [q[None, :] for q in queries]
    eights = [queries[i : i + 8] for i in range(0, len(queries) - 7, 8)]
    for radius in (int(r) for r in args.radii.split(",")):
        single = _timed(index, singles, radius, kernels)
        batch = _timed(index, eights, radius, kernels)
        for kernel in kernels:
            index.kernel = kernel  # type: ignore[assignment]
            ok = _verify(index, words, queries[:3], radius)
            print(
                f"{radius:>6} {kernel:>9} {statistics.median(single[kernel]):>15.3f} "
                f"{np.percentile(single[kernel], 99):>7.3f} "
                f"{statistics.median(batch[kernel]):>17.3f} {ok!s:>9}"
            )
        if len(kernels) == 2:
            first, second = kernels
            ratio = statistics.median(single[second]) / statistics.median(single[first])
            eight = statistics.median(batch[second]) / statistics.median(batch[first])
            print(f"{'':>6} {second + '/' + first:>9} {ratio:>14.1f}x {'':>7} {eight:>16.1f}x")
    return 0


def _verify(index: HammingIndex, words: np.ndarray, queries: np.ndarray, radius: int) -> bool:
    """Each answer equals a plain numpy popcount over every entry, ids and distances."""
    qwords = hashes_to_words(queries, index.bits)
    for qword, (ids, dists) in zip(qwords, index.search(queries, radius), strict=True):
        expected = np.bitwise_count(words ^ qword).sum(axis=1, dtype=np.int32)
        want = np.flatnonzero(expected <= radius)
        if not (np.array_equal(ids, want) and np.array_equal(dists, expected[want])):
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
