"""Fill a replica's matcher at start: from the index snapshot when one checks out, else
from the store; either way the change log then brings it up to date."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from service.matcher import Matcher
from service.replica.snapshot import read_live_entries, read_snapshot
from service.store import EntryLog

log = logging.getLogger("hashguard.startup")


def load_matcher(store: EntryLog, matcher: Matcher, snapshots: Path | None) -> tuple[int, str]:
    """Load the list into `matcher`; returns the change seq it covers and where the list
    came from ("snapshot" or "store"). The caller then catches up from that seq."""
    head = store.change_head(0).seq
    if snapshots is not None:
        snapshot = read_snapshot(snapshots, store.store_id(), head)
        if snapshot is not None:
            for algorithm, arrays in snapshot.arrays.items():
                matcher.load_arrays(
                    algorithm, arrays.ids, arrays.values, arrays.vetted, arrays.offsets
                )
            # read after the snapshot's seq: current, and the catch-up applies the rest
            matcher.set_vet_distances(store.vet_distances())
            return snapshot.seq, "snapshot"
    # `head` was read before the entries: anything committed while they are read has a
    # later seq, and the catch-up applies it (again, harmlessly, if already loaded).
    # One bulk add per algorithm, as from a snapshot: cheaper for an index than many.
    for algorithm, arrays in read_live_entries(store).items():
        matcher.load_arrays(algorithm, arrays.ids, arrays.values, arrays.vetted, arrays.offsets)
    matcher.set_vet_distances(store.vet_distances())
    return head, "store"


@dataclass(frozen=True, slots=True)
class LoadedList:
    """A filled matcher, the change seq it covers and where it came from. Loaded once by
    `hashguard serve --processes N` before it forks, so every serving process starts
    from the same pages in memory (shared until written: service/api/supervisor.py)."""

    matcher: Matcher
    seq: int
    source: str  # "snapshot" or "store"
