"""Video detection quality: do re-encoded, resized, cut and spliced copies of a listed
video match it, and do different videos (even with the same intro and outro) not?

Videos are made from the registry's package photos (loadtests/photos.py), one split at a
time, each photo in one video only: listed videos, and unrelated videos that share the
same 3 s site intro and outro card as half the listed ones. Every upload goes through the
service's own path (service.media.video sampling, query frames, video_match's rule); the
frame search here is a brute-force Hamming scan, which the index answers identically.

    python -m loadtests.quality_videos --split holdout

Encoded videos are cached in --cache (keyed by what made them), so a second run only
hashes and matches.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadtests.photos import LoadedPhoto, load_registry
from loadtests.videos import (
    Scene,
    card,
    clip,
    decoded,
    encode,
    frames,
    letterboxed,
    mirrored,
    resized,
    retimed,
)
from service.media.video import VideoLimits, sample_frames
from service.media.video_hashes import FrameHash, check_queries, hash_frames
from service.video_match import FramePair, ListedVideo, VideoRule, match_videos

SIZE = (1280, 720)
FPS = 30.0
SCENE_SECONDS = 8.0
CARD_SECONDS = 3.0
DEFAULT_CACHE = Path("/tmp/hashguard-video-bench")
# Bumped when the videos change (v2: textured site cards), so the cache makes them anew.
VERSION = "v2"


@dataclass(frozen=True, slots=True)
class Video:
    name: str
    data: bytes


def _cached(cache: Path, key: str, make: Callable[[], bytes]) -> bytes:
    path = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.bin"
    if path.exists():
        return path.read_bytes()
    data = make()
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _scenes(photos: Sequence[LoadedPhoto], seed: int) -> list[Scene]:
    rng = np.random.default_rng(seed)
    out = []
    for photo in photos:
        start = tuple(float(x) for x in rng.uniform(0.35, 0.65, 2))
        end = tuple(float(x) for x in rng.uniform(0.35, 0.65, 2))
        zoom = (1.0, float(rng.uniform(1.15, 1.4)))
        out.append(Scene(photo.image, SCENE_SECONDS, zoom, start, end))  # type: ignore[arg-type]
    return out


def _story(photos: Sequence[LoadedPhoto], seed: int, site_cards: bool) -> Iterator[np.ndarray]:
    body = frames(_scenes(photos, seed), SIZE, FPS)
    if not site_cards:
        return body
    intro = card("site", SIZE, CARD_SECONDS, FPS, seed=1)
    outro = card("more at site", SIZE, CARD_SECONDS, FPS, seed=2)
    return itertools.chain(intro, body, outro)


def make_set(split: str, cache: Path) -> tuple[list[Video], list[Video]]:
    """(listed, unrelated) videos of one split, two photos each, no photo used twice."""
    photos, missing = load_registry((split,))  # type: ignore[arg-type]
    for note in missing:
        print(f"missing photo: {note}")
    pairs = [photos[i : i + 2] for i in range(0, len(photos) - 1, 2)]
    listed_count = (len(pairs) + 1) // 2
    videos: list[Video] = []
    for number, pair in enumerate(pairs):
        listed = number < listed_count
        # Half the listed videos and every unrelated one carry the same site cards.
        cards = (number % 2 == 0) if listed else True
        name = f"{'listed' if listed else 'other'}-{pair[0].name}+{pair[1].name}"
        key = f"{VERSION} {name} {cards} {SIZE} {FPS} {SCENE_SECONDS}"
        data = _cached(
            cache,
            key,
            lambda p=pair, n=number, c=cards: encode(  # type: ignore[misc]
                _story(p, n, c), FPS, "h264"
            ),
        )
        videos.append(Video(name, data))
    return videos[:listed_count], videos[listed_count:]


def edits(other: Sequence[Video]) -> dict[str, Callable[[bytes], bytes]]:
    """Each edit a re-uploader makes, as a function of the listed video's bytes."""

    def stream(data: bytes) -> tuple[Iterator[np.ndarray], float]:
        return decoded(data)

    def vp9(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(pics, fps, "vp9")

    def to_360p(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(resized(pics, 360), fps, "h264")

    def quarter_bitrate(data: bytes) -> bytes:
        with_rate = len(data) * 8 / _seconds(data)
        pics, fps = stream(data)
        return encode(pics, fps, "h264", bitrate=int(with_rate / 4))

    def fps_24(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(retimed(pics, fps, 24.0), 24.0, "h264")

    def middle_20(data: bytes) -> bytes:
        pics, fps = stream(data)
        seconds = _seconds(data)
        return encode(clip(pics, fps, seconds * 0.4, seconds * 0.2), fps, "h264")

    def clip_5s(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(clip(pics, fps, _seconds(data) / 2 - 2.5, 5.0), fps, "h264")

    def mirror(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(mirrored(pics), fps, "h264")

    def letterbox(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(letterboxed(pics, 0.3), fps, "h264")

    def compilation(data: bytes) -> bytes:
        """10 s of another video, 5 s from the middle of this one, 10 s of a third."""
        pics, fps = stream(data)
        before, b_fps = stream(other[0].data)
        after, a_fps = stream(other[1 % len(other)].data)
        middle = clip(pics, fps, _seconds(data) / 2 - 2.5, 5.0)
        parts: Iterable[np.ndarray] = itertools.chain(
            clip(before, b_fps, 4.0, 10.0), middle, clip(after, a_fps, 4.0, 10.0)
        )
        return encode(parts, fps, "h264")

    return {
        "vp9": vp9,
        "360p": to_360p,
        "bitrate/4": quarter_bitrate,
        "24fps": fps_24,
        "clip 20%": middle_20,
        "clip 5s": clip_5s,
        "mirror": mirror,
        "letterbox": letterbox,
        "compilation": compilation,
    }


def _seconds(data: bytes) -> float:
    return float(sum(1 for _ in sample_frames(data)))


@dataclass
class Listing:
    """The listed videos as the service holds them: every informative frame's PDQ."""

    entry_of: np.ndarray  # per listed frame
    frame_of: np.ndarray
    values: np.ndarray  # (n, 32) uint8
    videos: dict[int, ListedVideo]


def listing(hashes: Sequence[Sequence[FrameHash]]) -> Listing:
    entry_of, frame_of, values, videos = [], [], [], {}
    for entry, frames_ in enumerate(hashes):
        videos[entry] = ListedVideo(
            np.array([f.timestamp for f in frames_]),
            np.array([f.quality for f in frames_], dtype=np.uint8),
        )
        for number, f in enumerate(frames_):
            entry_of.append(entry)
            frame_of.append(number)
            values.append(np.frombuffer(f.pdq, dtype=np.uint8))
    return Listing(np.array(entry_of), np.array(frame_of), np.stack(values), videos)


def check(data: bytes, listed: Listing, rule: VideoRule) -> tuple[list[int], int]:
    """(entries the upload matches, the nearest frame distance to any listed frame)."""
    query = check_queries(data, VideoLimits())
    distances = np.unpackbits(query.queries[:, None, :] ^ listed.values[None, :, :], axis=-1).sum(
        axis=-1
    )
    near = np.argwhere(distances <= rule.frame_distance)
    pairs = [
        FramePair(
            int(query.query_frame[q]),
            int(listed.entry_of[j]),
            int(listed.frame_of[j]),
            int(distances[q, j]),
        )
        for q, j in near
    ]
    matches = match_videos(query.timestamps, query.qualities, pairs, listed.videos, rule)
    return [m.entry_id for m in matches], int(distances.min())


def run(split: str, cache: Path, rule: VideoRule) -> None:
    started = time.monotonic()
    listed_videos, other = make_set(split, cache)
    hashes = [hash_frames(sample_frames(v.data)) for v in listed_videos]
    listed = listing(hashes)
    print(
        f"split {split}: {len(listed_videos)} listed videos "
        f"({sum(len(h) for h in hashes)} frames), {len(other)} unrelated; "
        f"rule {rule}"
    )
    print(f"{'edit':<14} {'recall':>8} {'caught':>8}  nearest-missed")
    for name, edit in edits(other).items():
        caught, misses = 0, []
        for entry, video in enumerate(listed_videos):
            data = _cached(
                cache, f"edit {VERSION} {name} {video.name}", lambda e=edit, v=video: e(v.data)
            )  # type: ignore[misc]
            found, nearest = check(data, listed, rule)
            if entry in found:
                caught += 1
            else:
                misses.append(f"{video.name}({nearest})")
        total = len(listed_videos)
        print(f"{name:<14} {caught / total:>8.2f} {caught:>4}/{total:<3}  {' '.join(misses)}")
    false_matches, pairs_checked = 0, 0
    for video in other:
        for variant in ("as is", "vp9"):
            data = (
                video.data
                if variant == "as is"
                else _cached(
                    cache,
                    f"edit {VERSION} vp9 {video.name}",
                    lambda v=video: edits(other)["vp9"](v.data),
                )
            )  # type: ignore[misc]
            found, nearest = check(data, listed, rule)
            pairs_checked += len(listed_videos)
            false_matches += len(found)
            if found:
                print(
                    f"FALSE MATCH: {video.name} ({variant}) -> "
                    f"{[listed_videos[e].name for e in found]}"
                )
    print(
        f"false matches: {false_matches} of {pairs_checked} (unrelated upload, listed video) "
        f"pairs; {time.monotonic() - started:.0f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("tune", "holdout"), default="holdout")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    run(args.split, args.cache, VideoRule())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
