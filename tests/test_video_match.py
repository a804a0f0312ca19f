"""The video match rule on its own (service/video_match.py): which frame pairs make a
match. Pure and fast: the frames are described by their times and qualities, and the
pairs are what the PDQ search would find for each case (a clip, an intro card, ...).
The list's count of frames shared between listed videos is checked through VideoList
with synthetic PDQ values. Decoding and encoding real videos: tests/test_video_media.py."""

from __future__ import annotations

import numpy as np

from service.media.video_hashes import FrameHash, QueryFrames
from service.video_list import VideoList
from service.video_match import FramePair, ListedVideo, match_videos

QUERY_STEP = 0.25  # the check path samples an upload four times a second


def listed(seconds: int, quality: int = 100) -> ListedVideo:
    """A listed video's vPDQ: one frame at each whole second."""
    return ListedVideo(
        np.arange(seconds, dtype=np.float64), np.full(seconds, quality, dtype=np.uint8)
    )


def upload(seconds: float, quality: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """An upload's sampled frames: times and qualities."""
    times = np.arange(0, seconds, QUERY_STEP)
    return times, np.full(len(times), quality, dtype=np.uint8)


def copied(
    times: np.ndarray,
    entry_id: int,
    upload_from: float,
    listed_from: float,
    seconds: float,
    distance: int = 12,
) -> list[FramePair]:
    """The pairs when the upload's [upload_from, upload_from + seconds) shows the listed
    video's [listed_from, ...): each upload frame within 1/8 s of a listed second finds
    that second's frame."""
    pairs = []
    for q, t in enumerate(times.tolist()):
        if upload_from <= t < upload_from + seconds:
            position = listed_from + t - upload_from
            nearest = round(position)
            if abs(position - nearest) <= QUERY_STEP / 2 + 1e-9:
                pairs.append(FramePair(q, entry_id, nearest, distance))
    return pairs


def decide(
    times: np.ndarray,
    qualities: np.ndarray,
    pairs: list[FramePair],
    videos: dict[int, ListedVideo],
) -> list[tuple[int, str]]:
    return [(m.entry_id, m.rule) for m in match_videos(times, qualities, pairs, videos)]


def test_a_whole_copy_matches_whole() -> None:
    times, qualities = upload(30)
    pairs = copied(times, 1, 0, 0, 30)
    assert decide(times, qualities, pairs, {1: listed(30)}) == [(1, "whole")]


def test_a_clip_from_the_middle_matches_and_says_which_seconds() -> None:
    # A 20 % clip (6 s) from the middle of a 30 s video, cut between two listed seconds.
    times, qualities = upload(6)
    pairs = copied(times, 1, 0, 12.4, 6)
    found = match_videos(times, qualities, pairs, {1: listed(30)})
    assert [(m.entry_id, m.rule) for m in found] == [(1, "segment")]
    assert found[0].listed_seconds == (13.0, 18.0)
    assert 0.5 <= found[0].upload_seconds[0] <= 0.75


def test_five_seconds_inside_a_compilation_match() -> None:
    times, qualities = upload(25)
    pairs = copied(times, 1, 10, 20.3, 5)
    assert decide(times, qualities, pairs, {1: listed(40)}) == [(1, "segment")]


def test_a_shared_intro_and_outro_around_different_content_are_not_a_match() -> None:
    # The listed video and the upload both open with a site's 3 s card and close with
    # another, around different 20 s of content: the same time offset, two 3 s runs.
    times, qualities = upload(26)
    pairs = copied(times, 1, 0, 0, 3) + copied(times, 1, 23, 23, 3)
    assert decide(times, qualities, pairs, {1: listed(26)}) == []
    # ... and around content of another length (two offsets).
    times, qualities = upload(40)
    pairs = copied(times, 1, 0, 0, 3) + copied(times, 1, 37, 23, 3)
    assert decide(times, qualities, pairs, {1: listed(26)}) == []


def test_frames_that_unrelated_listed_videos_share_count_for_little() -> None:
    # Five listed videos open with the same 5 s card, and each knows its card frames
    # are shared by four others: an upload of the card before other content (which the
    # PDQ search finds in all five at the same upload frames) matches none of them.
    shared = np.array([4] * 5 + [0] * 15)
    videos = {e: ListedVideo(listed(20).timestamps, listed(20).qualities, shared) for e in range(5)}
    times, qualities = upload(20)
    pairs = [p for e in videos for p in copied(times, e, 0, 0, 5)]
    assert decide(times, qualities, pairs, videos) == []
    # The card and 6 s of one video's own content: that one matches.
    pairs += copied(times, 2, 8, 8, 6)
    assert decide(times, qualities, pairs, videos) == [(2, "segment")]
    # Without the list's counts, the five look like one video listed five times.
    plain = {e: listed(20) for e in range(5)}
    card_only = [p for e in videos for p in copied(times, e, 0, 0, 5)]
    assert len(decide(times, qualities, card_only, plain)) == 5


def _random_frames(rng: np.random.Generator, seconds: int) -> list[FrameHash]:
    return [FrameHash(rng.bytes(32), 100, float(t)) for t in range(seconds)]


def _query(frames: list[FrameHash]) -> QueryFrames:
    """An upload showing these frames, sampled four times a second (each second's
    samples are that second's frame)."""
    values = [f.pdq for f in frames for _ in range(4)]
    count = len(values)
    return QueryFrames(
        np.arange(count) * QUERY_STEP,
        np.full(count, 100, dtype=np.uint8),
        np.arange(count, dtype=np.int64),
        np.frombuffer(b"".join(values), dtype=np.uint8).reshape(count, 32),
    )


def test_the_list_counts_shared_frames_and_tells_copies_from_a_shared_card() -> None:
    rng = np.random.default_rng(5)
    card = _random_frames(rng, 5)
    bodies = [_random_frames(rng, 15) for _ in range(5)]
    videos = VideoList()
    for entry, body in enumerate(bodies):
        videos.add(entry, [*card, *(FrameHash(f.pdq, 100, f.timestamp + 5) for f in body)])
    leak = [*card, *(FrameHash(f.pdq, 100, f.timestamp + 5) for f in bodies[0])]
    videos.add(9, leak)  # the first video, listed a second time
    other = _random_frames(rng, 15)
    assert videos.search(_query([*card, *other])) == []
    clip = [m.entry_id for m in videos.search(_query(bodies[0][4:10]))]
    assert sorted(clip) == [0, 9]  # a copy is not "another video sharing frames"
    assert [m.entry_id for m in videos.search(_query([*card, *bodies[3][:6]]))] == [3]
    # Once the others are withdrawn, the card is the first video's own 5 s again.
    assert videos.remove([1, 2, 3, 4]) == 4
    assert sorted(m.entry_id for m in videos.search(_query([*card, *other]))) == [0, 9]


def test_flat_frames_are_not_compared() -> None:
    # Black frames (PDQ quality 0) match every black frame; they must not count.
    times, qualities = upload(20, quality=0)
    pairs = copied(times, 1, 0, 0, 20, distance=0)
    assert decide(times, qualities, pairs, {1: listed(20, quality=0)}) == []
