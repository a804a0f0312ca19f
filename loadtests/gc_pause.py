"""How long a full garbage collection pauses the server, before and after `serve`
freezes what start-up made (gc.freeze). A full collection runs on whichever thread
allocates when it is due, usually the event loop, and every call in flight waits for
it (issue 19).

Loads the seeded list into a Runtime as `hashguard serve` does (numba's compiled search
included), then times gc.collect() a few times, freezes, and times it again.
Run: python -m loadtests.gc_pause --entries 1000000
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Sequence
from pathlib import Path

from loadtests.load import seed_data_dir


def timed_collections(repeats: int) -> list[float]:
    """Milliseconds of each of `repeats` full collections."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1e3)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="synthetic PDQ entries")
    parser.add_argument("--data-dir", type=Path, help="keep the seeded data here and reuse it")
    parser.add_argument("--repeats", type=int, default=3, help="collections timed per state")
    args = parser.parse_args(argv)

    from service.config import load_settings
    from service.index.hamming import warm_up_kernels
    from service.replica.snapshot import snapshot_dir
    from service.runtime import Runtime
    from service.store import open_store

    data_dir = args.data_dir or Path(f"/tmp/hashguard-sweep-{args.entries}")
    seed_data_dir(data_dir, args.entries, 1)
    settings = load_settings({"data_dir": str(data_dir)})
    warm_up_kernels()
    store = open_store(settings.store, settings.data_path, settings.pool_size)
    runtime = Runtime(store, settings, snapshot_dir(settings.data_path))
    try:
        print(f"list {args.entries:,} PDQ; load average {os.getloadavg()[0]:.2f}")
        print(f"{'state':<16} {'tracked objects':>15}  full collection ms")
        for state in ("as loaded", "frozen"):
            if state == "frozen":
                gc.freeze()
            times = " / ".join(f"{t:.2f}" for t in timed_collections(args.repeats))
            print(f"{state:<16} {len(gc.get_objects()):>15,}  {times}")
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
