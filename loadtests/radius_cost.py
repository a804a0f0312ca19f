"""What a PDQ match radius costs the index: search time per query against a list of
seeded random PDQ hashes, for a range of radii, one query (a precomputed-hash check) and
8 queries at once (an image check: its dihedral variants).

The PDQ threshold is bounded above by false matches (docs/QUALITY.md); within that bound
it is also a cost: a multi-index answers small radii by probing and large ones by
scanning. Each answer is checked against a plain numpy popcount.
Both search kernels (compiled, numpy) answer the same queries on the same index, query by
query in alternating order, so their ratio is measured under the same machine load.
Run: python -m loadtests.radius_cost [--entries 1000000] [--radii 31,38,39,53]
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
    args = parser.parse_args(argv)
    kernels = args.kernels.split(",")
    ready = warm_up_kernels() if "compiled" in kernels else 0.0
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 256, (args.entries, 32), dtype=np.uint8)
    index = HammingIndex(256)
    index.add(np.arange(args.entries, dtype=np.int64), hashes)
    time.sleep(args.settle)  # let background merges finish, as in a server that has started
    queries = hashes[rng.integers(0, args.entries, args.queries)].copy()
    queries[:, :4] ^= rng.integers(0, 256, (args.queries, 4), dtype=np.uint8)  # near a hit
    bits = np.unpackbits(hashes, axis=1)
    print(
        f"{args.entries:,} random PDQ entries; cores {os.cpu_count()}, load average "
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
            ok = _verify(index, bits, queries[:3], radius)
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


def _verify(index: HammingIndex, bits: np.ndarray, queries: np.ndarray, radius: int) -> bool:
    for q, (ids, dists) in zip(queries, index.search(queries, radius), strict=True):
        expected = np.count_nonzero(bits != np.unpackbits(q), axis=1)
        want = np.flatnonzero(expected <= radius)
        order = np.argsort(ids)
        if not (np.array_equal(ids[order], want) and np.array_equal(dists[order], expected[want])):
            return False
    return True


if __name__ == "__main__":
    raise SystemExit(main())
