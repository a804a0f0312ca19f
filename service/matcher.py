"""The in-memory list: one index per hash type plus each entry's state.

Turns a set of upload hashes into matches. Knows nothing about the store or grpc: it is
loaded at start (from the store or an index snapshot) and kept in step with the store's
change log by service.replica.follower, through `apply`, which is idempotent. Every
hash type is handled alike: its index kind (Hamming, exact, or a video list whose
frames sit in a Hamming index) and radius come from the type and the thresholds.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from service.domain import EntryRow, EntryState, HashValue, Match, MatchPart, Query, Span
from service.index import ExactIndex, HammingIndex
from service.policy import Thresholds
from service.signals.base import IndexKind, SignalType
from service.signals.registry import SIGNALS
from service.signals.vpdq_frames import unpack, unpack_query
from service.video_list import VideoList
from service.video_match import VideoMatch, VideoRule

Index = HammingIndex | ExactIndex | VideoList


def new_index(signal: SignalType, video_rule: VideoRule | None = None) -> Index:
    """The index kind the type asks for, sized for its values."""
    if signal.index_kind is IndexKind.HAMMING:
        return HammingIndex(signal.size * 8)
    if signal.index_kind is IndexKind.VIDEO:
        return VideoList(video_rule)
    return ExactIndex(signal.size)


class Matcher:
    def __init__(
        self,
        thresholds: Thresholds,
        signals: Sequence[SignalType] = SIGNALS,
        video_rule: VideoRule | None = None,
    ) -> None:
        self.thresholds = thresholds
        rule = video_rule or VideoRule()
        self._indexes: dict[SignalType, Index] = {
            # a video type's frame distance is its threshold (--<type>-threshold if any)
            signal: new_index(
                signal, dataclasses.replace(rule, frame_distance=thresholds.radius(signal))
            )
            for signal in signals
        }
        # entry id -> whether it is vetted (absent: not live). Plain ints and bools keep
        # the dict untracked by the garbage collector: a dict holding enum members is
        # tracked, and every full collection then walked all its entries (about 0.2 s at
        # 1 M, a pause for every call in flight; docs/BENCHMARKS.md, issue 19).
        self._vetted: dict[int, bool] = {}
        # vetted entries' vet_distance when not 0 (EntryRow.vet_distance)
        self._vet_distance: dict[int, int] = {}
        self._lock = threading.Lock()

    def index_stats(self) -> dict[str, dict[str, int]]:
        """Each Hamming index's counters (plans, buffer, merges), for the metrics."""
        return {
            signal.name: index.stats()
            for signal, index in self._indexes.items()
            if not isinstance(index, ExactIndex)
        }

    def size(self, signal: SignalType) -> int:
        return len(self._indexes[signal])

    def add(self, entries: Sequence[EntryRow]) -> None:
        """Make entries matchable (pending or vetted ones; withdrawn ones are ignored)."""
        live = [e for e in entries if e.state is not EntryState.WITHDRAWN]
        with self._lock:
            for e in live:
                self._vetted[e.entry_id] = e.state is EntryState.VETTED
                self._keep_vet_distance(e)
            for signal, index in self._indexes.items():
                rows = [e for e in live if e.algorithm is signal]
                if not rows:
                    continue
                if isinstance(index, VideoList):
                    for e in rows:
                        index.add(e.entry_id, unpack(e.value))
                    continue
                ids = np.fromiter((e.entry_id for e in rows), dtype=np.int64, count=len(rows))
                values = np.frombuffer(b"".join(e.value for e in rows), dtype=np.uint8)
                index.add(ids, values.reshape(len(rows), -1))

    def remove(self, entries: Iterable[EntryRow]) -> None:
        """Stop matching entries: one index call per hash type, not per entry."""
        by_signal: dict[SignalType, list[int]] = {}
        for e in entries:
            by_signal.setdefault(e.algorithm, []).append(e.entry_id)
        with self._lock:
            for signal, ids in by_signal.items():
                self._indexes[signal].remove(np.array(ids, dtype=np.int64))
                for entry_id in ids:
                    self._vetted.pop(entry_id, None)
                    self._vet_distance.pop(entry_id, None)

    def apply(self, rows: Sequence[EntryRow]) -> None:
        """Bring entries to the state the store holds for them: add new live ones,
        update the state of known ones, remove withdrawn ones. Applying the same rows
        twice changes nothing, which is what lets a replica apply its own writes at once
        and again when its change-log follower reaches them."""
        withdrawn = [e for e in rows if e.state is EntryState.WITHDRAWN]
        live = [e for e in rows if e.state is not EntryState.WITHDRAWN]
        known = [e for e in live if e.entry_id in self._vetted]
        new = [e for e in live if e.entry_id not in self._vetted]
        self.remove([e for e in withdrawn if e.entry_id in self._vetted])
        with self._lock:
            for e in known:
                self._vetted[e.entry_id] = e.state is EntryState.VETTED
                self._keep_vet_distance(e)
        self.add(new)

    def _keep_vet_distance(self, entry: EntryRow) -> None:
        if entry.state is EntryState.VETTED and entry.vet_distance:
            self._vet_distance[entry.entry_id] = entry.vet_distance
        else:
            self._vet_distance.pop(entry.entry_id, None)

    def set_vet_distances(self, distances: dict[int, int]) -> None:
        """The store's vet distances (Store.vet_distances), after a bulk load."""
        with self._lock:
            self._vet_distance.update(distances)

    def vet(self, distances: dict[int, int]) -> None:
        """Entries a confirmation just vetted, or whose confirmation came closer: vetted,
        with the distance a moderator vouched for (kept when already smaller)."""
        with self._lock:
            for entry_id, distance in distances.items():
                if entry_id not in self._vetted:
                    continue
                if self._vetted[entry_id]:
                    distance = min(distance, self._vet_distance.get(entry_id, 0))
                self._vetted[entry_id] = True
                if distance:
                    self._vet_distance[entry_id] = distance
                else:
                    self._vet_distance.pop(entry_id, None)

    def load_arrays(
        self,
        signal: SignalType,
        ids: np.ndarray,
        values: np.ndarray,
        vetted: np.ndarray,
        offsets: np.ndarray | None = None,
    ) -> None:
        """Bulk-load one type's entries (an index snapshot): one index call.
        `values` is (n, size) uint8, `vetted` a boolean per entry; for a variable-length
        type `values` is every value end to end and entry i is values[offsets[i]:
        offsets[i + 1]]."""
        with self._lock:
            self._vetted.update(zip(ids.tolist(), vetted.astype(bool).tolist(), strict=True))
            index = self._indexes[signal]
            if isinstance(index, VideoList):
                if offsets is None:
                    raise ValueError(f"{signal.name} values need their offsets")
                flat = np.asarray(values)
                bounds = offsets.tolist()
                for n, entry_id in enumerate(ids.tolist()):
                    index.add(entry_id, unpack(flat[bounds[n] : bounds[n + 1]].tobytes()))
                return
            index.add(np.ascontiguousarray(ids), np.asarray(values))

    def is_vetted(self, entry_id: int) -> bool:
        return self._vetted.get(entry_id, False)

    def set_state(self, entry_ids: Iterable[int], state: EntryState) -> None:
        with self._lock:
            for entry_id in entry_ids:
                if entry_id in self._vetted:
                    self._vetted[entry_id] = state is EntryState.VETTED

    def match(self, queries: Sequence[HashValue | Query]) -> list[Match]:
        """Every (entry, upload hash) pair within the type's threshold; each match
        carries the part of the upload its query stands for (a HashValue: the whole)."""
        return self.match_many([queries])[0]

    def match_many(self, uploads: Sequence[Sequence[HashValue | Query]]) -> list[list[Match]]:
        """`match` for several uploads at once: each index is searched once with every
        upload's queries, which costs less per query than one search per upload
        (loadtests/bench_batch_search.py)."""
        found: list[list[Match]] = [[] for _ in uploads]
        for signal, index in self._indexes.items():
            owners = [(n, q) for n, qs in enumerate(uploads) for q in qs if q.algorithm is signal]
            if not owners or len(index) == 0:
                continue
            if isinstance(index, VideoList):
                for n, q in owners:
                    for video in index.search(unpack_query(q.value)):
                        self._append_video(found[n], signal, video, q)
                continue
            packed = np.frombuffer(b"".join(q.value for _, q in owners), dtype=np.uint8)
            packed = packed.reshape(len(owners), -1)
            radius = self.thresholds.radius(signal)
            for (n, q), (ids, dists) in zip(owners, index.search(packed, radius), strict=True):
                for entry_id, dist in zip(ids.tolist(), dists.tolist(), strict=True):
                    self._append(found[n], entry_id, signal, dist, q)
        return found

    def _append(
        self,
        found: list[Match],
        entry_id: int,
        signal: SignalType,
        dist: int,
        query: HashValue | Query,
    ) -> None:
        vetted = self._vetted.get(entry_id)
        if vetted is not None:  # removed between the index scan and now
            state = EntryState.VETTED if vetted else EntryState.PENDING
            part = query.part if isinstance(query, Query) else MatchPart.WHOLE
            region = query.region if isinstance(query, Query) else ""
            radius = self.thresholds.radius(signal)
            beyond = vetted and dist + self._vet_distance.get(entry_id, 0) > radius
            key = signal.query_key(query.value)
            found.append(Match(entry_id, signal, dist, state, key, part, region, beyond))

    def _append_video(
        self, found: list[Match], signal: SignalType, video: VideoMatch, query: HashValue | Query
    ) -> None:
        """A listed video the upload matched: as a whole (both sides mostly matched), or
        a segment of it (a clip, part of a compilation: a partial part), with its span."""
        before = len(found)
        self._append(found, video.entry_id, signal, video.distance, query)
        if len(found) > before:
            part = MatchPart.WHOLE if video.rule == "whole" else MatchPart.SEGMENT
            span = Span(*video.upload_seconds, *video.listed_seconds)
            found[-1] = dataclasses.replace(found[-1], part=part, span=span)
