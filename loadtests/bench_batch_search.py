"""Does searching a batch's uploads together cost less than one search per upload?
The matcher holds --entries random PDQ hashes; --uploads random PDQ queries are matched
one upload per `Matcher.match` call, then all in one `Matcher.match_many` call (what
CheckUploadBatch does for its hash uploads). The two alternate --rounds times; the
table shows microseconds per upload. Run:
  python -m loadtests.bench_batch_search --entries 1000000 --uploads 32
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import numpy as np

from service.domain import HashValue
from service.matcher import Matcher
from service.policy import Thresholds
from service.signals.pdq import PDQ


def build(entries: int, seed: int) -> tuple[Matcher, np.ndarray]:
    """A matcher with `entries` vetted random PDQ hashes, bulk-loaded like a snapshot,
    and the hashes."""
    rng = np.random.default_rng(seed)
    matcher = Matcher(Thresholds())
    ids = np.arange(1, entries + 1, dtype=np.int64)
    values = rng.integers(0, 256, (entries, 32), dtype=np.uint8)
    matcher.load_arrays(PDQ, ids, values, np.ones(entries, dtype=bool))
    return matcher, values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--uploads", type=int, default=32, help="uploads per batch")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    matcher, listed = build(args.entries, seed=1)
    rng = np.random.default_rng(2)
    print(
        f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; "
        f"{args.entries:,} PDQ entries, radius 38, {args.uploads} uploads of one PDQ each "
        "(one in 8 near a listed one)\n"
    )
    print(f"{'round':>5} {'one call each us/upload':>24} {'one call for all us/upload':>27}")
    singles, together = [], []
    for round_ in range(args.rounds + 1):
        queries = rng.integers(0, 256, (args.uploads, 32), dtype=np.uint8)
        queries[::8] = listed[rng.integers(0, len(listed), len(queries[::8]))] ^ 0x0F  # hits
        uploads = [[HashValue(PDQ, q.tobytes(), 100)] for q in queries]
        started = time.perf_counter()
        each = [matcher.match(queries) for queries in uploads]
        single = (time.perf_counter() - started) / args.uploads * 1e6
        started = time.perf_counter()
        batched = matcher.match_many(uploads)
        many = (time.perf_counter() - started) / args.uploads * 1e6
        assert batched == each, "match_many must answer exactly what match does"
        if round_ == 0:
            continue  # warm-up
        singles.append(single)
        together.append(many)
        print(f"{round_:>5} {single:>24,.0f} {many:>27,.0f}")
    a, b = float(np.median(singles)), float(np.median(together))
    print(f"{'median':>5} {a:>24,.0f} {b:>27,.0f}   ratio {b / a:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
