"""What a PDQ match radius costs the index: search time per query against a list of
seeded random PDQ hashes, for a range of radii, one query (a precomputed-hash check) and
8 queries at once (an image check: its dihedral variants).

The PDQ threshold is bounded above by false matches (docs/QUALITY.md); within that bound
it is also a cost: a multi-index answers small radii by probing and large ones by
scanning. Each answer is checked against a plain numpy popcount.
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


def _search_ms(index: HammingIndex, queries: np.ndarray, radius: int) -> float:
    started = time.perf_counter()
    index.search(queries, radius)
    return (time.perf_counter() - started) * 1e3


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--radii", default="31,34,36,38,39,40,45,53")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds for merges")
    args = parser.parse_args(argv)
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
        f"{os.getloadavg()[0]:.2f}; radii measured in turn\n"
    )
    print(
        f"{'radius':>6} {'1 query ms p50':>15} {'p99':>7} {'8 queries ms p50':>17} {'verified':>9}"
    )
    for radius in (int(r) for r in args.radii.split(",")):
        single = [_search_ms(index, q[None, :], radius) for q in queries]
        batch = [
            _search_ms(index, queries[i : i + 8], radius) for i in range(0, len(queries) - 7, 8)
        ]
        ok = _verify(index, bits, queries[:3], radius)
        print(
            f"{radius:>6} {statistics.median(single):>15.2f} "
            f"{np.percentile(single, 99):>7.2f} {statistics.median(batch):>17.2f} {ok!s:>9}"
        )
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
