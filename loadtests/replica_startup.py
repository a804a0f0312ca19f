"""Replica start-up: full load from the store vs the index snapshot, side by side.

Fills a fresh store with N seeded random hashes of one algorithm (vetted imports),
writes the index snapshot, then starts the list twice, each in a fresh process as
`hashguard serve` would: once reading every entry from the store, once from the
snapshot plus the change log. Each start reports its wall time and the memory the list
took (resident set after the load minus before it), which is what docs/DEPLOY.md's
sizing uses.

With --follow it also times a running replica applying an import of N entries made
beside it (the change-log follower's catch-up), as `hashguard import` into a live
store does.

Run: python loadtests/replica_startup.py --entries 1000000 [--algorithm pdq]
     [--store postgresql://...?options=-csearch_path%3Dsome_empty_schema] [--follow]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from service.config import Settings
from service.domain import HashValue
from service.replica.snapshot import snapshot_dir, write_snapshot
from service.runtime import Runtime
from service.signals.base import SignalType
from service.signals.registry import REGISTRY, SIGNALS
from service.store import open_store


def _rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _hashes(algorithm: SignalType, count: int) -> Iterator[HashValue]:
    rng = np.random.default_rng(1)
    for start in range(0, count, 100_000):
        block = rng.integers(0, 256, (min(100_000, count - start), algorithm.size), np.uint8)
        for row in block:
            yield HashValue(algorithm, row.tobytes())


def start_once(store_url: str, data: str, use_snapshot: bool) -> dict[str, float]:
    """One start, in this process: the list's load time and memory."""
    store = open_store(store_url, data)
    before = _rss_mib()
    started = time.perf_counter()
    runtime = Runtime(store, Settings(data_dir=data), snapshot_dir(data) if use_snapshot else None)
    seconds = time.perf_counter() - started
    expected = "snapshot" if use_snapshot else "store"
    if runtime.loaded_from != expected:
        raise RuntimeError(f"loaded from the {runtime.loaded_from}, expected the {expected}")
    result = {
        "seconds": seconds,
        "list_mib": _rss_mib() - before,
        "entries": float(sum(runtime.matcher.size(a) for a in SIGNALS)),
    }
    store.close()
    return result


def follow_import(store_url: str, algorithm: SignalType, count: int) -> float:
    """Seconds a running replica (empty list) takes to apply an import of `count`."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(store_url, tmp)
        runtime = Runtime(store, Settings(data_dir=tmp))
        store.import_entries(_hashes(algorithm, count), True, time.time())
        started = time.perf_counter()
        applied = runtime.follower.catch_up()
        seconds = time.perf_counter() - started
        store.close()
    if applied != count:
        raise RuntimeError(f"the follower applied {applied} rows, expected {count}")
    return seconds


def _start_in_subprocess(store_url: str, data: Path, use_snapshot: bool) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--phase",
            "snapshot" if use_snapshot else "store",
            "--store",
            store_url,
            "--data",
            str(data),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--algorithm", choices=[a.name for a in SIGNALS], default="pdq")
    parser.add_argument("--store", default="sqlite", help="sqlite, or an empty PostgreSQL schema")
    parser.add_argument(
        "--follow", action="store_true", help="also time a live replica applying an import"
    )
    parser.add_argument("--phase", choices=["store", "snapshot"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(start_once(args.store, args.data, args.phase == "snapshot")))
        return

    algorithm = REGISTRY.by_name[args.algorithm]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        store = open_store(args.store, data)
        started = time.perf_counter()
        store.import_entries(_hashes(algorithm, args.entries), True, time.time())
        fill = time.perf_counter() - started
        started = time.perf_counter()
        write_snapshot(store, snapshot_dir(data))
        write = time.perf_counter() - started
        store.close()
        size = sum(f.stat().st_size for f in snapshot_dir(data).rglob("*.npy"))
        full = _start_in_subprocess(args.store, data, use_snapshot=False)
        fast = _start_in_subprocess(args.store, data, use_snapshot=True)
    for result in (full, fast):
        if result["entries"] != args.entries:
            raise RuntimeError(f"loaded {result['entries']} entries, expected {args.entries}")
    store_kind = "sqlite" if args.store == "sqlite" else "postgresql"
    print(f"{args.entries:,} {algorithm.name} entries, {store_kind} store")
    print(f"fill the store (one import)        {fill:8.1f} s")
    print(f"write the snapshot                 {write:8.1f} s   {size / 2**20:8.0f} MiB on disk")
    print()
    print(f"{'start-up':<26} {'seconds':>8} {'list MiB':>9} {'MiB per 1M':>11}")
    per_million = 1_000_000 / args.entries
    for label, result in (("full load from the store", full), ("snapshot + change log", fast)):
        print(
            f"{label:<26} {result['seconds']:8.1f} {result['list_mib']:9.0f} "
            f"{result['list_mib'] * per_million:11.0f}"
        )
    print(f"snapshot start is {full['seconds'] / fast['seconds']:.1f}x faster")
    if args.follow:
        if args.store != "sqlite":
            raise SystemExit("--follow needs a fresh store: use it with the default sqlite")
        seconds = follow_import(args.store, algorithm, args.entries)
        print(f"a running replica applies an import of them in {seconds:.1f} s")


if __name__ == "__main__":
    main()
