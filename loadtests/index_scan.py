"""Time the flat Hamming index: PDQ radius-31 queries against lists of growing size.

Prints per-query latency (median over the queries) and memory per million entries, and
checks every answer against a plain numpy popcount so the figures are for correct
results. Run: python loadtests/index_scan.py [--sizes 100000,1000000] [--queries 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from service.index import HammingIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--radius", type=int, default=31)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(
        f"{'entries':>10} {'bits':>5} {'median ms/query':>16} {'p95 ms':>8} "
        f"{'MiB per 1M':>11} {'verified':>9}"
    )
    for bits in (256, 64):
        for size in (int(s) for s in args.sizes.split(",")):
            hashes = rng.integers(0, 256, (size, bits // 8), dtype=np.uint8)
            index = HammingIndex(bits)
            index.add(np.arange(size, dtype=np.int64), hashes)
            picks = rng.integers(0, size, args.queries)
            queries = hashes[picks].copy()
            queries[:, 0] ^= 0x0F  # 4 bits away from a listed hash
            times = []
            for q in queries:
                started = time.perf_counter()
                index.search(q[None, :], args.radius)
                times.append(time.perf_counter() - started)
            ok = _verify(index, hashes, queries[:5], args.radius)
            snap = index._snapshot  # the real arrays, measured
            mib = (snap.words.nbytes + snap.ids.nbytes) / 2**20 * 1e6 / size
            print(
                f"{size:>10,} {bits:>5} {np.median(times) * 1e3:>16.2f} "
                f"{np.percentile(times, 95) * 1e3:>8.2f} {mib:>11.1f} {ok!s:>9}"
            )


def _verify(index: HammingIndex, hashes: np.ndarray, queries: np.ndarray, radius: int) -> bool:
    bits = np.unpackbits(hashes, axis=1)
    for q, (ids, dists) in zip(queries, index.search(queries, radius), strict=True):
        expected = np.count_nonzero(bits != np.unpackbits(q), axis=1)
        want = np.flatnonzero(expected <= radius)
        order = np.argsort(ids)
        if not (np.array_equal(ids[order], want) and np.array_equal(dists[order], expected[want])):
            return False
    return True


if __name__ == "__main__":
    main()
