"""The store's bulk paths in two code versions side by side: import N seeded PDQ hashes
into a fresh store, then read them all back with iter_entries (a full start-up load) and
changed_entries (a replica following the change log). The versions run alternately, each
in a process of its own, so a busy machine slows both alike; the table gives ratios.

    git archive <rev> | tar -x -C /tmp/before
    python loadtests/store_reads.py --baseline /tmp/before --entries 1000000
    python loadtests/store_reads.py --baseline /tmp/before --entries 300000 \
        --store postgresql://postgres@127.0.0.1:5432/test

A PostgreSQL run uses a fresh schema per process, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
STEPS = ("import_entries", "iter_entries (all)", "changed_entries (all)")


def measure(entries: int, store_arg: str) -> list[float]:
    """Run in the child: seconds for each of STEPS (reads: best of 3)."""
    from service.domain import EntryState, HashValue
    from service.store import open_store

    try:
        from service.signals.pdq import PDQ
    except ImportError:  # a checkout from before the hash types were plug-ins
        from service.domain import Algorithm  # type: ignore[attr-defined]

        PDQ = Algorithm.PDQ
    hashes = (HashValue(PDQ, i.to_bytes(8, "big") * 4) for i in range(entries))
    with tempfile.TemporaryDirectory() as data_dir:
        store = open_store(store_arg, data_dir)
        started = time.perf_counter()
        store.import_entries(hashes, True, 1.0)
        times = [time.perf_counter() - started, float("inf"), float("inf")]
        live = [EntryState.PENDING, EntryState.VETTED]
        for _ in range(3):
            started = time.perf_counter()
            _check(sum(len(b) for b in store.iter_entries(live)), entries)
            times[1] = min(times[1], time.perf_counter() - started)
            head = store.change_head(0).seq
            started = time.perf_counter()
            _check(sum(len(b) for b in store.changed_entries(0, head)), entries)
            times[2] = min(times[2], time.perf_counter() - started)
        store.close()
    return times


def _check(read: int, entries: int) -> None:
    if read != entries:
        raise RuntimeError(f"read {read:,} entries back, not {entries:,}")


def run_version(code: Path, entries: int, store: str) -> list[float]:
    """One child process with `code` first on the import path."""
    store_arg, schema = store, ""
    if store != "sqlite":
        import psycopg

        schema = f"hg_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(store, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        store_arg = f"{store}?options=-csearch_path%3D{schema}"
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(entries), store_arg],
            env=dict(os.environ, PYTHONPATH=str(code)),
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=True,
        )
    finally:
        if schema:
            import psycopg

            with psycopg.connect(store, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    return [float(x) for x in out.stdout.split()]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(" ".join(f"{t:.3f}" for t in measure(int(sys.argv[2]), sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout to compare")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--store", default="sqlite", help="sqlite or a postgresql:// URL")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[list[float]]] = {"baseline": [], "this": []}
    for _ in range(args.rounds):
        results["baseline"].append(run_version(args.baseline, args.entries, args.store))
        results["this"].append(run_version(HERE, args.entries, args.store))
    kind = "sqlite" if args.store == "sqlite" else "postgresql"
    print(f"{kind}, {args.entries:,} entries, best of {args.rounds} rounds, seconds")
    print(f"load average {os.getloadavg()[0]:.1f} (1 min) at the end")
    print(f"{'step':<24}{'baseline':>10}{'this':>10}{'this/base':>11}")
    for i, step in enumerate(STEPS):
        base = min(r[i] for r in results["baseline"])
        this = min(r[i] for r in results["this"])
        print(f"{step:<24}{base:>10.2f}{this:>10.2f}{this / base:>11.2f}")


if __name__ == "__main__":
    main()
