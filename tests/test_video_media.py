"""Videos in, one frame a second out, within budgets; vPDQ's text forms; the match rule.

Every video here is made from package photos with PyAV's encoders (loadtests/videos.py)
and decoded by the service's own sampler.
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import skimage.data
from PIL import Image

from loadtests import hostile_videos
from loadtests.videos import Scene, card, clip, decoded, encode, frames, mirrored, resized
from service.errors import Cancelled, InvalidInput, LimitExceeded
from service.media.video import VideoLimits, sample_frames
from service.media.video_hashes import (
    check_queries,
    from_threatexchange,
    from_vpdq_file,
    hash_frames,
    pack,
    to_threatexchange,
    to_vpdq_file,
    unpack,
)
from service.video_list import VideoList
from service.video_match import FramePair, ListedVideo, match_videos

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

SIZE = (320, 180)
FPS = 10.0


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


@pytest.fixture(scope="module")
def story() -> bytes:
    """12 s of H.264: pans over two photos."""
    scenes = [Scene(_photo("astronaut"), 6.0), Scene(_photo("coffee"), 6.0)]
    return encode(frames(scenes, SIZE, FPS), FPS, "h264")


@pytest.fixture(scope="module")
def other() -> bytes:
    scenes = [Scene(_photo("chelsea"), 6.0), Scene(_photo("rocket"), 6.0)]
    return encode(frames(scenes, SIZE, FPS), FPS, "h264")


@pytest.mark.parametrize("encoding", ["h264", "vp9", "mpeg4", "mkv"])
def test_one_frame_a_second_from_every_container(encoding: str) -> None:
    scenes = [Scene(_photo("astronaut"), 4.0)]
    data = encode(frames(scenes, SIZE, FPS), FPS, encoding)
    samples = list(sample_frames(data))
    assert [s.timestamp for s in samples] == [0.0, 1.0, 2.0, 3.0]
    assert samples[0].rgb.shape == (SIZE[1], SIZE[0], 3)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_gif_and_webp_are_videos(fmt: str) -> None:
    pictures = [Image.fromarray(p) for p in frames([Scene(_photo("coffee"), 3.0)], SIZE, 5.0)]
    out = io.BytesIO()
    pictures[0].save(out, format=fmt, save_all=True, append_images=pictures[1:], duration=200)
    samples = list(sample_frames(out.getvalue()))
    assert [s.timestamp for s in samples] == [0.0, 1.0, 2.0]


def test_a_new_frame_rate_keeps_the_seconds(story: bytes) -> None:
    pictures, _fps = decoded(story)
    slower = encode(pictures, 24.0, "h264")  # the same frames shown at 24 a second: 15 s
    assert [s.timestamp for s in sample_frames(slower)][:3] == [0.0, 1.0, 2.0]


def test_limits_refuse_with_the_figure(story: bytes) -> None:
    with pytest.raises(LimitExceeded, match="bytes; the limit is 1,000"):
        list(sample_frames(story, VideoLimits(max_bytes=1000)))
    with pytest.raises(LimitExceeded, match="the limit is 10,000") as pixels:
        list(sample_frames(story, VideoLimits(max_frame_pixels=10_000)))
    assert pixels.value.limit == "video_frame_pixels"
    with pytest.raises(LimitExceeded, match="the limit is 5 s"):
        list(sample_frames(story, VideoLimits(max_seconds=5)))
    with pytest.raises(LimitExceeded, match="more than 30 frames"):
        list(sample_frames(story, VideoLimits(max_frames=30)))


def test_decoding_stops_when_cancelled_and_tells_its_header_first(story: bytes) -> None:
    sizes: list[tuple[int, int]] = []
    samples = sample_frames(story, on_header=lambda w, h: sizes.append((w, h)))
    assert next(samples).timestamp == 0 and sizes == [SIZE]
    calls = iter([False, False, True])
    with pytest.raises(Cancelled):
        list(sample_frames(story, cancelled=lambda: next(calls, True)))


def test_frames_larger_than_the_header_are_refused_before_they_are_allocated() -> None:
    with pytest.raises(InvalidInput, match="could not be decoded"):
        list(sample_frames(hostile_videos.growing_frames_bomb()))


def test_garbage_empty_and_cut_videos(story: bytes) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        list(sample_frames(b""))
    with pytest.raises(InvalidInput, match="not a video"):
        list(sample_frames(b"\x00" * 5000))
    # An MP4 keeps its index at the end: cut, it is not a video at all.
    with pytest.raises(InvalidInput, match="not a video"):
        list(sample_frames(story[: len(story) // 2]))
    # A Matroska file cut in half still yields the seconds before the cut.
    pictures, fps = decoded(story)
    streamable = encode(pictures, fps, "mkv")
    half = list(sample_frames(streamable[: len(streamable) // 2]))
    assert 1 <= len(half) < 12


def test_vpdq_round_trips_through_both_text_forms(story: bytes) -> None:
    hashes = hash_frames(sample_frames(story))
    assert len(hashes) == 12 and all(h.quality >= 50 for h in hashes)
    assert unpack(pack(hashes)) == hashes
    assert from_threatexchange(to_threatexchange(hashes)) == hashes
    assert from_vpdq_file(to_vpdq_file(hashes, fps=FPS)) == hashes
    line = to_vpdq_file(hashes, fps=FPS).splitlines()[3]
    assert line.split(",")[0] == "30" and line.endswith(",3.000")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '["zz,50,0.0"]',
        '["' + "ab" * 32 + ',101,0.0"]',
        '["' + "ab" * 32 + ',50,-1"]',
        "[]",
        "[1, 2]",
    ],
)
def test_malformed_vpdq_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="vpdq"):
        from_threatexchange(text)


def _matches(upload: bytes, listed: list[bytes]) -> list[str]:
    """The rule over a brute-force frame search, as tests/quality benchmark do."""
    rows, videos = [], {}
    for entry, data in enumerate(listed):
        hashes = hash_frames(sample_frames(data))
        videos[entry] = ListedVideo(
            np.array([h.timestamp for h in hashes]),
            np.array([h.quality for h in hashes], dtype=np.uint8),
        )
        rows += [(entry, n, np.frombuffer(h.pdq, dtype=np.uint8)) for n, h in enumerate(hashes)]
    values = np.stack([r[2] for r in rows])
    query = check_queries(upload, VideoLimits())
    distances = np.unpackbits(query.queries[:, None] ^ values[None], axis=-1).sum(axis=-1)
    pairs = [
        FramePair(int(query.query_frame[q]), rows[j][0], rows[j][1], int(distances[q, j]))
        for q, j in np.argwhere(distances <= 31)
    ]
    return [
        f"{m.entry_id}:{m.rule}"
        for m in match_videos(query.timestamps, query.qualities, pairs, videos)
    ]


def test_reencoded_resized_mirrored_copies_match_and_others_do_not(
    story: bytes, other: bytes
) -> None:
    pictures, fps = decoded(story)
    vp9_360 = encode(resized(pictures, 144), fps, "vp9")
    pictures, fps = decoded(story)
    flipped = encode(mirrored(pictures), fps, "h264")
    assert _matches(vp9_360, [story, other]) == ["0:whole"]
    assert _matches(flipped, [story, other]) == ["0:whole"]
    assert _matches(other, [story]) == []


def test_a_clip_inside_a_compilation_matches_by_its_seconds(story: bytes, other: bytes) -> None:
    pictures, fps = decoded(story)
    before, _ = decoded(other)
    spliced = itertools.chain(
        clip(before, fps, 0, 6), clip(pictures, fps, 3, 6), card("x", SIZE, 4, fps)
    )
    assert _matches(encode(spliced, fps, "h264"), [story]) == ["0:segment"]


def test_a_shared_intro_and_outro_are_not_a_match(story: bytes, other: bytes) -> None:
    def carded(data: bytes) -> bytes:
        pictures, fps = decoded(data)
        intro, outro = card("site", SIZE, 3, fps, seed=1), card("bye", SIZE, 3, fps, seed=2)
        return encode(itertools.chain(intro, pictures, outro), fps, "h264")

    assert _matches(carded(other), [carded(story)]) == []


def test_the_frame_index_answers_as_the_brute_force_search(story: bytes, other: bytes) -> None:
    index = VideoList()
    index.add(7, hash_frames(sample_frames(story)))
    index.add(9, hash_frames(sample_frames(other)))
    index.add(7, hash_frames(sample_frames(story)))  # again: nothing changes
    assert len(index) == 2 and index.frame_count == 24
    pictures, fps = decoded(story)
    upload = encode(clip(pictures, fps, 2, 8), fps, "vp9")
    found = index.search(check_queries(upload, VideoLimits()))
    assert [(m.entry_id, m.rule) for m in found] == [(7, "segment")]
    assert _matches(upload, [story, other]) == ["0:segment"]
    assert found[0].listed_seconds[0] == pytest.approx(2, abs=1.01)
    assert index.remove([7, 8]) == 1
    assert index.search(check_queries(upload, VideoLimits())) == []
    assert len(index) == 1 and index.frame_count == 12
