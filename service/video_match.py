"""When an uploaded video matches a listed one, from the frames that matched (pure).

Built on Meta's vPDQ matcher (python-threatexchange `vpdq_brute_matcher`): frames of
quality >= 50 are compared, frames within the PDQ distance threshold match, and the
shares of distinct matched frames on each side decide. Meta's rule alone misses what
leak sites do most, a clip of a listed video or a compilation holding a few seconds of
it, and it cannot tell content from an intro card that many videos share. The upload
is sampled four times a second (the listed video once, as vPDQ is), so some upload frame
falls within 1/8 s of every listed second whatever second the clip starts at. So:

- **whole**: at least `whole_share` of the upload's informative frames and of the listed
  video's match (a re-encode, resize, new frame rate, mirror or letterbox of the video);
- **segment**: a run of upload frames, with gaps of at most `max_gap_seconds`, matches at
  least `min_run_seconds` of the listed video's frames at one consistent time offset
  (within `offset_tolerance`): a clip, or a part of a compilation. Two runs
  separated by other material do not add up, so a shared 3 s intro plus a shared 3 s
  outro around different content is not a match.

Frames that match several listed videos that are not copies of each other (an intro,
an outro, a logo card shared across a site) count 1/k for k such videos, so the match
must rest on content. Listed videos that are copies of each other (one leak listed by
two victims) count once. docs/QUALITY.md, "Videos", gives the figures behind the
defaults.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class VideoRule:
    """The matching rule's settings; the defaults are the service's."""

    frame_distance: int = 31  # PDQ bits; Meta's VPDQ_DISTANCE_THRESHOLD
    min_quality: int = 50  # Meta's VPDQ_QUALITY_THRESHOLD
    whole_share: float = 0.8  # Meta's query-match threshold, asked of both sides here
    min_run_seconds: float = 4.0  # weighted listed seconds in one aligned run
    max_gap_seconds: float = 2.5  # a run may skip a frame (a cut, a re-encode's blur)
    offset_tolerance: float = 0.5  # seconds; the upload is sampled 4 times a second
    copy_share: float = 0.8  # two listed videos matched by the same frames are copies


# How many of the most common time offsets the segment rule tries per listed video.
OFFSETS_TRIED = 8


@dataclass(frozen=True, slots=True)
class FramePair:
    """Upload frame `query_frame` is within the PDQ threshold of frame `listed_frame` of
    the listed video `entry_id`, at `distance` bits."""

    query_frame: int
    entry_id: int
    listed_frame: int
    distance: int


@dataclass(frozen=True, slots=True)
class ListedVideo:
    """What the rule needs of a listed video: each frame's time and quality, and for each
    frame how many other listed videos, not copies of this one, hold a frame within the
    PDQ threshold of it (a site's intro card listed with many leaks; None: not known)."""

    timestamps: np.ndarray  # float64 seconds, one per frame
    qualities: np.ndarray  # uint8, one per frame
    shared: np.ndarray | None = None  # int, one per frame

    def weights(self) -> np.ndarray:
        """What each frame counts for: 1/(1 + k) for a frame k unrelated videos share."""
        if self.shared is None:
            return np.ones(len(self.timestamps))
        return 1.0 / (1.0 + self.shared)


@dataclass(frozen=True, slots=True)
class VideoMatch:
    """A listed video the upload matches, and which seconds of each matched."""

    entry_id: int
    rule: str  # "whole" or "segment"
    distance: int  # median PDQ distance of the matched frames
    upload_seconds: tuple[float, float]
    listed_seconds: tuple[float, float]
    matched_seconds: float  # weighted seconds the decision rests on
    upload_share: float
    listed_share: float


def match_videos(
    query_timestamps: np.ndarray,
    query_qualities: np.ndarray,
    pairs: Sequence[FramePair],
    listed: Mapping[int, ListedVideo],
    rule: VideoRule = VideoRule(),
) -> list[VideoMatch]:
    """Every listed video the upload matches, best first."""
    informative_query = query_qualities >= rule.min_quality
    kept = [
        p
        for p in pairs
        if p.distance <= rule.frame_distance
        and informative_query[p.query_frame]
        and listed[p.entry_id].qualities[p.listed_frame] >= rule.min_quality
    ]
    by_entry: dict[int, dict[tuple[int, int], int]] = defaultdict(dict)
    for p in kept:
        key = (p.query_frame, p.listed_frame)
        best = by_entry[p.entry_id].get(key)
        if best is None or p.distance < best:
            by_entry[p.entry_id][key] = p.distance
    weights = _frame_weights(by_entry, len(query_timestamps), rule)
    query_seconds = len({int(t + 1e-6) for t in query_timestamps[informative_query]})
    matches = []
    for entry_id, found in by_entry.items():
        video = listed[entry_id]
        match = _decide(entry_id, found, weights, query_timestamps, query_seconds, video, rule)
        if match is not None:
            matches.append(match)
    matches.sort(key=lambda m: (-m.matched_seconds, m.distance, m.entry_id))
    return matches


def _frame_weights(
    by_entry: Mapping[int, Mapping[tuple[int, int], int]], count: int, rule: VideoRule
) -> np.ndarray:
    """1/k for an upload frame matched by k listed videos that are not copies of each
    other (entries whose matched upload frames overlap by `copy_share` are one group)."""
    frames_of = {e: {q for q, _ in found} for e, found in by_entry.items()}
    group = {e: e for e in frames_of}

    def root(e: int) -> int:
        while group[e] != e:
            group[e] = group[group[e]]
            e = group[e]
        return e

    entries = sorted(frames_of)
    for i, a in enumerate(entries):
        for b in entries[i + 1 :]:
            overlap = len(frames_of[a] & frames_of[b])
            if overlap and overlap >= rule.copy_share * len(frames_of[a] | frames_of[b]):
                group[root(b)] = root(a)
    groups_per_frame: dict[int, set[int]] = defaultdict(set)
    for e, frames in frames_of.items():
        for q in frames:
            groups_per_frame[q].add(root(e))
    weights = np.ones(count)
    for q, groups in groups_per_frame.items():
        weights[q] = 1.0 / len(groups)
    return weights


def _decide(
    entry_id: int,
    found: Mapping[tuple[int, int], int],
    weights: np.ndarray,
    query_timestamps: np.ndarray,
    query_seconds: int,
    video: ListedVideo,
    rule: VideoRule,
) -> VideoMatch | None:
    query_frames = sorted({q for q, _ in found})
    listed_frames = sorted({j for _, j in found})
    listed_weights = video.weights()
    # Shares are of whole seconds: the upload may be sampled more densely than one frame
    # a second, and a frame between two listed seconds need not match either.
    by_second: dict[int, float] = {}
    for q, j in found:
        second = int(query_timestamps[q] + 1e-6)
        weight = min(float(weights[q]), float(listed_weights[j]))
        by_second[second] = max(by_second.get(second, 0.0), weight)
    upload_share = sum(by_second.values()) / max(1, query_seconds)
    listed_share = len(listed_frames) / max(1, int((video.qualities >= rule.min_quality).sum()))
    distance = _distance(found)
    if upload_share >= rule.whole_share and listed_share >= rule.whole_share:
        return VideoMatch(
            entry_id,
            "whole",
            distance,
            _span(query_timestamps, query_frames),
            _span(video.timestamps, listed_frames),
            sum(by_second.values()),
            upload_share,
            listed_share,
        )
    run = _best_run(found, weights, listed_weights, query_timestamps, video.timestamps, rule)
    if run is None:
        return None
    run_weight, run_query, run_listed = run
    return VideoMatch(
        entry_id,
        "segment",
        distance,
        _span(query_timestamps, run_query),
        _span(video.timestamps, run_listed),
        run_weight,
        upload_share,
        listed_share,
    )


def _distance(found: Mapping[tuple[int, int], int]) -> int:
    """The median, over the listed frames matched, of each one's closest upload frame:
    how far the upload is from the listed video (what Match.distance reports and a
    confirmation vouches for). Not over every pair: an upload frame sampled between two
    listed seconds also lies within the threshold of its neighbours, farther off."""
    closest: dict[int, int] = {}
    for (_, listed_frame), distance in found.items():
        closest[listed_frame] = min(distance, closest.get(listed_frame, distance))
    return int(np.median(list(closest.values())))


def _best_run(
    found: Mapping[tuple[int, int], int],
    weights: np.ndarray,
    listed_weights: np.ndarray,
    query_timestamps: np.ndarray,
    listed_timestamps: np.ndarray,
    rule: VideoRule,
) -> tuple[float, list[int], list[int]] | None:
    """The heaviest run matched at one time offset, if it is heavy enough. A run's weight
    is in seconds of the listed video: each listed frame (one a second) counts once, at
    the weight of the upload frames aligned to it (and at most its own weight). Only the
    most common offsets are tried (OFFSETS_TRIED), so a long upload of a static scene
    stays cheap."""
    pairs = np.array(list(found), dtype=np.int64).reshape(-1, 2)
    offsets = query_timestamps[pairs[:, 0]] - listed_timestamps[pairs[:, 1]]
    bins, counts = np.unique(np.round(offsets / rule.offset_tolerance), return_counts=True)
    best: tuple[float, list[int], list[int]] | None = None
    for centre in bins[np.argsort(-counts)][:OFFSETS_TRIED] * rule.offset_tolerance:
        near = np.abs(offsets - centre) <= rule.offset_tolerance
        aligned: dict[int, list[int]] = defaultdict(list)
        for q, j in pairs[near].tolist():
            aligned[q].append(j)
        for run in _runs(sorted(aligned), query_timestamps, rule.max_gap_seconds):
            seconds: dict[int, float] = {}
            for q in run:
                for j in aligned[q]:
                    weight = min(float(weights[q]), float(listed_weights[j]))
                    seconds[j] = max(seconds.get(j, 0.0), weight)
            weight = sum(seconds.values())
            if best is None or weight > best[0]:
                best = (weight, run, sorted(seconds))
    if best is None or best[0] + 1e-9 < rule.min_run_seconds:
        return None
    return best


def _runs(frames: list[int], timestamps: np.ndarray, max_gap: float) -> list[list[int]]:
    runs: list[list[int]] = []
    for q in frames:
        if runs and timestamps[q] - timestamps[runs[-1][-1]] <= max_gap:
            runs[-1].append(q)
        else:
            runs.append([q])
    return runs


def _span(timestamps: np.ndarray, frames: Sequence[int]) -> tuple[float, float]:
    return float(timestamps[min(frames)]), float(timestamps[max(frames)])
