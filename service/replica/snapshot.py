"""Index snapshots: the live list as .npy arrays in the data directory, so a replica
starts from memory-mappable files and the change log instead of reading every entry
from the store.

Layout, in `<data dir>/snapshot/`: one folder per snapshot holding, per hash type,
`<type>.ids.npy` (int64), `<type>.values.npy` (uint8, one row per hash) and
`<type>.vetted.npy` (bool); for a variable-length type (vpdq) the values are end to
end in one row and `<type>.offsets.npy` (int64, one more than the entries) says where
each starts; plus `current.json` naming the folder, the store it
came from, the change seq it covers and a CRC-32 of every array. `current.json` is
replaced atomically (temporary file, fsync, rename) only after its folder is complete,
so a crash leaves the previous snapshot in place. A snapshot that does not check out
(another store, a seq the store has not reached, a wrong checksum, shape or type) is
ignored with a log line, and the replica loads the list from the store instead.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.domain import EntryRow, EntryState
from service.signals.base import SignalType
from service.signals.registry import REGISTRY
from service.store import EntryLog

log = logging.getLogger("hashguard.snapshot")

FORMAT = 1
POINTER = "current.json"


@dataclass(frozen=True, slots=True)
class AlgorithmArrays:
    ids: np.ndarray  # int64, (n,)
    values: np.ndarray  # uint8, (n, algorithm.size); variable-length: (total bytes,)
    vetted: np.ndarray  # bool, (n,)
    # variable-length types only: int64, (n + 1,); entry i is values[offsets[i]:offsets[i+1]]
    offsets: np.ndarray | None = None

    def parts(self) -> dict[str, np.ndarray]:
        """The arrays written to files, by part name."""
        found = {"ids": self.ids, "values": self.values, "vetted": self.vetted}
        if self.offsets is not None:
            found["offsets"] = self.offsets
        return found

    def select(self, keep: np.ndarray) -> AlgorithmArrays:
        """The entries where `keep` (a boolean per entry) is true."""
        if self.offsets is None:
            return AlgorithmArrays(self.ids[keep], self.values[keep], self.vetted[keep])
        starts, ends = self.offsets[:-1][keep], self.offsets[1:][keep]
        pieces = [self.values[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        return AlgorithmArrays(
            self.ids[keep],
            np.concatenate(pieces) if pieces else np.empty(0, np.uint8),
            self.vetted[keep],
            np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64),
        )


def concatenate(parts: Sequence[AlgorithmArrays]) -> AlgorithmArrays:
    """One type's arrays end to end (offsets shifted for variable-length values)."""
    offsets = None
    if parts[0].offsets is not None:
        shifted, base = [np.zeros(1, np.int64)], 0
        for p in parts:
            assert p.offsets is not None
            shifted.append(p.offsets[1:] + base)
            base += int(p.offsets[-1])
        offsets = np.concatenate(shifted).astype(np.int64)
    return AlgorithmArrays(
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.vetted for p in parts]),
        offsets,
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int
    arrays: dict[SignalType, AlgorithmArrays]

    @property
    def entries(self) -> int:
        return sum(len(a.ids) for a in self.arrays.values())


def snapshot_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "snapshot"


# -- writing ------------------------------------------------------------------------------


def write_snapshot(store: EntryLog, directory: Path) -> Snapshot:
    """Write the live list as a new snapshot and return it.

    When a valid snapshot is already on disk, only the entries changed since its seq
    are read from the store and merged into its arrays; otherwise every live entry is
    read. The seq is read first, so the snapshot covers at least that seq; an entry
    changed while this runs may show either state, and the change log applies its
    newer one at start (applying is idempotent).
    """
    seq = store.change_head(0).seq
    previous = read_snapshot(directory, store.store_id(), seq)
    if previous is not None:
        arrays = _merge_changes(previous, store, seq)
    else:
        arrays = read_live_entries(store)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"snap-{seq:012d}-{uuid.uuid4().hex[:8]}"
    building = directory / (name + ".tmp")
    building.mkdir()
    files: dict[str, dict[str, Any]] = {}
    for algorithm, parts in arrays.items():
        for part, array in parts.parts().items():
            array = np.ascontiguousarray(array)
            filename = f"{algorithm.name}.{part}.npy"
            with open(building / filename, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            files[filename] = {
                "crc32": _crc32(array),
                "shape": list(array.shape),
                "dtype": array.dtype.str,
            }
    building.rename(directory / name)
    pointer = {
        "format": FORMAT,
        "store_id": store.store_id(),
        "seq": seq,
        "folder": name,
        "written_at": time.time(),
        "algorithms": [a.name for a in arrays],
        "files": files,
    }
    temporary = directory / (POINTER + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(pointer, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(directory / POINTER)
    _fsync_dir(directory)
    for old in directory.iterdir():
        if old.is_dir() and old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return Snapshot(seq, arrays)


def read_live_entries(store: EntryLog) -> dict[SignalType, AlgorithmArrays]:
    """Every pending and vetted entry of the store, as arrays per algorithm."""
    return _to_arrays(store.iter_entries([EntryState.PENDING, EntryState.VETTED]))


def _merge_changes(
    previous: Snapshot, store: EntryLog, seq: int
) -> dict[SignalType, AlgorithmArrays]:
    """The previous snapshot's entries, minus every entry changed in (previous.seq,
    seq], plus those of them still live, in their current state."""
    changed = [row for batch in store.changed_entries(previous.seq, seq) for row in batch]
    live = [row for row in changed if row.state is not EntryState.WITHDRAWN]
    fresh = _to_arrays([live])
    merged = {}
    for algorithm in REGISTRY:
        parts = []
        old = previous.arrays.get(algorithm)
        if old is not None:
            touched = np.fromiter(
                (r.entry_id for r in changed if r.algorithm is algorithm), dtype=np.int64
            )
            parts.append(old.select(~np.isin(old.ids, touched)))
        if algorithm in fresh:
            parts.append(fresh[algorithm])
        if parts:
            merged[algorithm] = concatenate(parts)
    return merged


def _to_arrays(batches: Iterable[Sequence[EntryRow]]) -> dict[SignalType, AlgorithmArrays]:
    chunks: dict[SignalType, list[AlgorithmArrays]] = {a: [] for a in REGISTRY}
    for batch in batches:
        for algorithm in REGISTRY:
            rows = [e for e in batch if e.algorithm is algorithm]
            if not rows:
                continue
            ids = np.fromiter((e.entry_id for e in rows), dtype=np.int64, count=len(rows))
            values = np.frombuffer(b"".join(e.value for e in rows), dtype=np.uint8)
            vetted = np.fromiter(
                (e.state is EntryState.VETTED for e in rows), dtype=np.bool_, count=len(rows)
            )
            if algorithm.variable_length:
                lengths = np.fromiter((len(e.value) for e in rows), np.int64, count=len(rows))
                offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                chunks[algorithm].append(AlgorithmArrays(ids, values, vetted, offsets))
            else:
                chunks[algorithm].append(
                    AlgorithmArrays(ids, values.reshape(len(rows), algorithm.size), vetted)
                )
    return {algorithm: concatenate(parts) for algorithm, parts in chunks.items() if parts}


def _crc32(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).data.cast("B"))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- reading ------------------------------------------------------------------------------


class SnapshotRejected(Exception):
    """Why a snapshot on disk cannot be used."""


def read_snapshot(directory: Path, store_id: str, head_seq: int) -> Snapshot | None:
    """The snapshot in `directory`, memory-mapped and checked, or None (logged) when
    there is none or it cannot be trusted."""
    if not (directory / POINTER).exists():
        return None
    try:
        return _read_checked(directory, store_id, head_seq)
    except (SnapshotRejected, OSError, ValueError, KeyError, TypeError) as exc:
        log.warning(
            "ignoring the index snapshot in %s (%s); loading from the store",
            directory,
            exc,
        )
        return None


def _read_checked(directory: Path, store_id: str, head_seq: int) -> Snapshot:
    pointer = json.loads((directory / POINTER).read_text(encoding="utf-8"))
    if pointer.get("format") != FORMAT:
        raise SnapshotRejected(f"format {pointer.get('format')!r}, this version reads {FORMAT}")
    if pointer["store_id"] != store_id:
        raise SnapshotRejected("it was made from another database")
    seq = int(pointer["seq"])
    if seq > head_seq:
        raise SnapshotRejected(
            f"it covers change {seq} but the store's log ends at {head_seq} "
            "(was the database restored from a backup?)"
        )
    folder = directory / pointer["folder"]
    arrays: dict[SignalType, AlgorithmArrays] = {}
    for name in pointer["algorithms"]:
        algorithm = REGISTRY.by_name[name]
        parts = {}
        names = ("ids", "values", "vetted", "offsets")
        for part in names if algorithm.variable_length else names[:3]:
            filename = f"{algorithm.name}.{part}.npy"
            expected = pointer["files"][filename]
            array = np.load(folder / filename, mmap_mode="r", allow_pickle=False)
            if list(array.shape) != expected["shape"] or array.dtype.str != expected["dtype"]:
                raise SnapshotRejected(f"{filename} has the wrong shape or type")
            if _crc32(array) != expected["crc32"]:
                raise SnapshotRejected(f"{filename} is corrupt (checksum mismatch)")
            parts[part] = array
        ids, values, vetted = parts["ids"], parts["values"], parts["vetted"]
        offsets = parts.get("offsets")
        if not (
            ids.dtype == np.int64
            and values.dtype == np.uint8
            and vetted.dtype == np.bool_
            and len(vetted) == len(ids)
            and _values_fit(algorithm, ids, values, offsets)
        ):
            raise SnapshotRejected(f"the {algorithm.name} arrays do not fit together")
        arrays[algorithm] = AlgorithmArrays(ids, values, vetted, offsets)
    return Snapshot(seq, arrays)


def _values_fit(
    algorithm: SignalType, ids: np.ndarray, values: np.ndarray, offsets: np.ndarray | None
) -> bool:
    if offsets is None:
        return bool(values.shape == (len(ids), algorithm.size))
    steps = np.diff(offsets)
    return bool(
        offsets.dtype == np.int64
        and offsets.shape == (len(ids) + 1,)
        and values.ndim == 1
        and (len(offsets) == 0 or (offsets[0] == 0 and offsets[-1] == len(values)))
        and np.all(steps > 0)
        and np.all(steps % algorithm.size == 0)
    )


# -- the background writer ----------------------------------------------------------------


class SnapshotWriter:
    """Rewrites the snapshot every `interval` seconds when the list changed, and within
    a few seconds of a withdrawal, so a withdrawn hash does not linger on disk."""

    def __init__(self, store: EntryLog, directory: Path, interval: float, seq: int) -> None:
        self.store = store
        self.directory = directory
        self.interval = interval
        self.seq = seq  # what the snapshot on disk covers (-1: none)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_written = time.monotonic()
        self._writing = threading.Lock()  # one writer per folder, even at shutdown

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="snapshot", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def write_if_due(self) -> bool:
        """Write when the list changed and either `interval` has passed or a case was
        withdrawn since the snapshot on disk. Returns whether it wrote."""
        head = self.store.change_head(max(self.seq, 0)).seq
        if head <= self.seq:
            return False
        due = self.seq < 0 or time.monotonic() - self._last_written >= self.interval
        if not due and not self.store.withdrawn_since(max(self.seq, 0)):
            return False
        started = time.perf_counter()
        with self._writing:
            written = write_snapshot(self.store, self.directory)
        self.seq, self._last_written = written.seq, time.monotonic()
        log.info(
            "wrote the index snapshot: %d entries up to change %d in %.1fs",
            written.entries,
            written.seq,
            time.perf_counter() - started,
        )
        return True

    def write_at_shutdown(self) -> None:
        """On a clean stop, bring an existing snapshot up to date (cheap: it merges only
        the changes since). Without one, leave it: a full read could outlast the
        shutdown grace period, and the next start writes one anyway."""
        if self.seq < 0 or not self._writing.acquire(timeout=_SHUTDOWN_WAIT_SECONDS):
            return
        try:
            if self.store.change_head(self.seq).seq > self.seq:
                self.seq = write_snapshot(self.store, self.directory).seq
                log.info("updated the index snapshot to change %d at shutdown", self.seq)
        except Exception as exc:  # the next start falls back to the store
            log.warning("could not update the index snapshot at shutdown: %s", exc)
        finally:
            self._writing.release()

    def _run(self) -> None:
        while not self._stop.wait(min(self.interval, _WITHDRAWAL_CHECK_SECONDS)):
            try:
                self.write_if_due()
            except Exception as exc:  # a failed snapshot only makes the next start slower
                log.warning("could not write the index snapshot: %s", exc)


_WITHDRAWAL_CHECK_SECONDS = 5.0
_SHUTDOWN_WAIT_SECONDS = 5.0
