"""The listed videos: their frames in one PDQ Hamming index, so a video search stays
sub-linear, and the match rule over what the index finds.

Every informative frame (PDQ quality >= the rule's minimum) of a listed video gets its
own id in a HammingIndex: the video's entry id shifted left by FRAME_BITS, plus the
frame's number. An upload's frame queries are searched in one call; the hits are turned
back into (upload frame, video, listed frame, distance) pairs for the match rule
(service/video_match.py). Knows nothing of the store or grpc.

When a video is listed, its frames are also searched among the videos listed before it:
frames it shares with videos that are not copies of it (a site's intro card, a logo)
are counted on both sides (ListedVideo.shared), so the rule weighs them 1/(1 + k).
Two videos are copies when the frames they share make up `copy_share` of either one's
informative frames (one leak listed twice, or a clip of it listed as well).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from service.index.hamming import HammingIndex
from service.signals.vpdq_frames import FrameHash, QueryFrames
from service.video_match import FramePair, ListedVideo, VideoMatch, VideoRule, match_videos

# Frames per video at most 2**20 (12 days at one a second; vPDQ values hold at most a day).
FRAME_BITS = 20
FRAME_MASK = (1 << FRAME_BITS) - 1


class VideoList:
    def __init__(self, rule: VideoRule | None = None) -> None:
        self.rule = rule or VideoRule()
        self._frames = HammingIndex(256)
        self._videos: dict[int, ListedVideo] = {}
        # entry -> other entry -> this entry's frames within the threshold of the other's
        self._sharers: dict[int, dict[int, set[int]]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many videos are listed."""
        return len(self._videos)

    def __contains__(self, entry_id: int) -> bool:
        return entry_id in self._videos

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    def stats(self) -> dict[str, int]:
        """The frame index's counters (HammingIndex.stats), for the metrics."""
        return self._frames.stats()

    def add(self, entry_id: int, frames: Sequence[FrameHash]) -> None:
        """List a video (again: adding a listed entry changes nothing)."""
        with self._lock:
            if entry_id in self._videos:
                return
            numbers = [n for n, f in enumerate(frames) if f.quality >= self.rule.min_quality]
            links: dict[int, tuple[set[int], set[int]]] = {}  # other -> (mine, theirs)
            if numbers:
                ids = (np.int64(entry_id) << FRAME_BITS) + np.array(numbers, dtype=np.int64)
                values = np.frombuffer(b"".join(frames[n].pdq for n in numbers), dtype=np.uint8)
                values = values.reshape(len(numbers), -1)
                if len(self._frames):
                    hits = self._frames.search(values, self.rule.frame_distance)
                    for number, (found, _) in zip(numbers, hits, strict=True):
                        for frame_id in found.tolist():
                            mine, theirs = links.setdefault(frame_id >> FRAME_BITS, (set(), set()))
                            mine.add(number)
                            theirs.add(frame_id & FRAME_MASK)
                self._frames.add(ids, values)
            self._videos[entry_id] = ListedVideo(
                np.array([f.timestamp for f in frames], dtype=np.float64),
                np.array([f.quality for f in frames], dtype=np.uint8),
            )
            self._sharers[entry_id] = {other: mine for other, (mine, _) in links.items()}
            for other, (_, theirs) in links.items():
                self._sharers[other][entry_id] = theirs
            for entry in (entry_id, *links):
                self._count_shared(entry)

    def remove(self, entry_ids: Iterable[int]) -> int:
        """Stop matching these videos; returns how many were listed."""
        with self._lock:
            gone = [int(e) for e in entry_ids if int(e) in self._videos]
            if not gone:
                return 0
            ids = np.concatenate(
                [
                    (np.int64(e) << FRAME_BITS)
                    + np.arange(len(self._videos[e].qualities), dtype=np.int64)
                    for e in gone
                ]
            )
            self._frames.remove(ids)
            touched: set[int] = set()
            for e in gone:
                del self._videos[e]
                for other in self._sharers.pop(e, {}):
                    if other in self._sharers:
                        self._sharers[other].pop(e, None)
                        touched.add(other)
            for entry in touched - set(gone):
                self._count_shared(entry)
            return len(gone)

    def _count_shared(self, entry_id: int) -> None:
        """Recount, for each frame of a listed video, the unrelated videos sharing it."""
        video = self._videos[entry_id]
        shared = np.zeros(len(video.qualities), dtype=np.int64)
        for other, mine in self._sharers[entry_id].items():
            theirs = self._sharers[other][entry_id]
            if not (
                len(mine) >= self.rule.copy_share * _informative(video, self.rule)
                or len(theirs)
                >= self.rule.copy_share * _informative(self._videos[other], self.rule)
            ):
                shared[list(mine)] += 1
        self._videos[entry_id] = dataclasses.replace(video, shared=shared if shared.any() else None)

    def search(self, query: QueryFrames) -> list[VideoMatch]:
        """Every listed video the upload matches by the rule, best first."""
        if not self._videos or len(query.queries) == 0:
            return []
        results = self._frames.search(np.ascontiguousarray(query.queries), self.rule.frame_distance)
        pairs: list[FramePair] = []
        with self._lock:
            videos = dict(self._videos)
        for owner, (ids, distances) in zip(query.query_frame.tolist(), results, strict=True):
            for frame_id, distance in zip(ids.tolist(), distances.tolist(), strict=True):
                entry_id = frame_id >> FRAME_BITS
                if entry_id in videos:
                    pairs.append(FramePair(owner, entry_id, frame_id & FRAME_MASK, distance))
        return match_videos(query.timestamps, query.qualities, pairs, videos, self.rule)


def _informative(video: ListedVideo, rule: VideoRule) -> int:
    return max(1, int((video.qualities >= rule.min_quality).sum()))
