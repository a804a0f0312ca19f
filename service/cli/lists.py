"""`hashguard import` and `hashguard export`: hash lists into and out of the store, read
and written directly (running servers pick imports up from the change log)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from service.cli.common import data_dir_flags, opened_store
from service.domain import EntryState, HashValue
from service.hashlist import (
    FORMATS,
    READ_FORMATS,
    Written,
    detect_format,
    read_hashes,
    write_hashes,
)
from service.signals.registry import REGISTRY


def add_import(commands: Any) -> None:
    import_ = commands.add_parser("import", help="load a hash list into the store")
    import_.add_argument("file", metavar="FILE")
    data_dir_flags(import_)
    import_.add_argument(
        "--vetted", action="store_true", help="the list is already vetted: matches BLOCK at once"
    )
    import_.add_argument("--format", choices=("auto", *READ_FORMATS), default="auto")
    import_.add_argument(
        "--type",
        choices=REGISTRY.names_for_commands(),
        help="hash type of plain lines that start with the hex (e.g. pdq): what "
        "`threatexchange dataset -P -s TYPE` prints",
    )
    import_.set_defaults(handler=cmd_import)


def add_export(commands: Any) -> None:
    export = commands.add_parser("export", help="write the list as '<type> <hex>' lines")
    data_dir_flags(export)
    export.add_argument("--out", help="file to write (default: stdout)")
    export.add_argument(
        "--state",
        choices=["vetted", "pending", "all"],
        default="all",
        help="which entries (withdrawn ones have no hash and are never written)",
    )
    export.add_argument(
        "--format",
        choices=FORMATS,
        default="plain",
        help="threatexchange: only the types Meta's python-threatexchange reads, in its names",
    )
    export.set_defaults(handler=cmd_export)


def cmd_import(args: argparse.Namespace) -> int:
    from service.access.keys import local_actor

    fmt = detect_format(args.file, args.format)
    started = time.perf_counter()
    skipped: Counter[str] = Counter()
    with opened_store(args, create=True) as store, _progress_lines(args.file) as lines:
        default_type = REGISTRY.parse_name(args.type) if args.type else None
        hashes = read_hashes(lines, fmt, default_type, skipped)
        audit = local_actor("list.imported", Path(args.file).name, f"vetted={args.vetted}")
        result = store.import_entries(hashes, args.vetted, time.time(), audit)
    print(
        f"imported {result.added} new entries ({'vetted' if args.vetted else 'pending'}), "
        f"vetted {result.vetted} existing, {result.unchanged} already present, "
        f"in {time.perf_counter() - started:.1f}s. Running servers on this store start "
        "applying them within a second (about 11 s per million entries)."
    )
    if skipped:
        kinds = ", ".join(f"{name} {count}" for name, count in sorted(skipped.items()))
        print(
            f"skipped {skipped.total()} lines of python-threatexchange types HashGuard does "
            f"not match ({kinds})"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from service.access.keys import local_actor

    states = {
        "vetted": [EntryState.VETTED],
        "pending": [EntryState.PENDING],
        "all": [EntryState.PENDING, EntryState.VETTED],
    }[args.state]
    with opened_store(args) as store:
        # A privileged read (every listed hash): recorded before anything is written out.
        target = Path(args.out).name if args.out else "stdout"
        store.append_audit(
            local_actor("list.exported", target, f"state={args.state} format={args.format}")
        )
        rows = (
            HashValue(row.algorithm, row.value)
            for batch in store.iter_entries(states)
            for row in batch
        )
        with _output(args.out) as out:
            written = write_hashes(
                out, tqdm(rows, unit=" hashes", disable=args.out is None), args.format
            )
    print(_export_summary(written, args.format), file=sys.stderr)
    return 0


def _export_summary(written: Written, fmt: str) -> str:
    """How many were written, and how many of types Meta's tools cannot read."""
    others = written.unreadable_by_threatexchange
    if not others:
        return f"exported {written.count} hashes"
    kinds = ", ".join(f"{name} {count}" for name, count in sorted(others.items()))
    if fmt == "threatexchange":
        return (
            f"exported {written.count} hashes in python-threatexchange's names; left out "
            f"{others.total()} of types it cannot read ({kinds})"
        )
    return (
        f"exported {written.count} hashes; {others.total()} of them are of types Meta's "
        f"python-threatexchange cannot read ({kinds}) and its tools drop them: "
        "--format threatexchange writes only the ones they read"
    )


@contextmanager
def _progress_lines(path: str) -> Iterator[Iterator[str]]:
    """Lines of a file with a progress bar over its bytes (updated every 10k lines)."""
    total = Path(path).stat().st_size
    with (
        open(path, encoding="utf-8", newline="") as handle,
        tqdm(total=total, unit="B", unit_scale=True, desc="import", file=sys.stderr) as bar,
    ):

        def lines() -> Iterator[str]:
            done = 0
            for number, line in enumerate(handle, 1):
                done += len(line)
                if number % 10_000 == 0:
                    bar.update(done)
                    done = 0
                yield line
            bar.update(done)

        yield lines()


@contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    tmp = Path(path + ".part")
    with open(tmp, "w", encoding="utf-8") as handle:
        yield handle
    tmp.replace(path)  # a reader never sees a half-written list
