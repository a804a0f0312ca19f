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
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

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
from service.media.video_hashes import (
    QUERY_EVERY_SECONDS,
    FrameHash,
    QueryFrames,
    check_queries,
    hash_frames,
)
from service.video_list import VideoList
from service.video_match import VideoRule

SIZE = (1280, 720)  # the long listed videos and the hashing-cost video
SMALL = (640, 360)  # every other video: a quarter of the pixels, a quarter of the CPU
FPS = 30.0
SCENE_SECONDS = 8.0
CARD_SECONDS = 3.0
CUT_SECONDS = 1.0  # black (flat) frames between scenes, as slideshows fade
DEFAULT_CACHE = Path("/tmp/hashguard-video-bench")
# Bumped when the videos change (v3: 24+ listed videos a split from photo quarters,
# 60 s 720p ones among them, black cuts), so the cache makes them anew.
VERSION = "v3"
LISTED_SHORT = 19  # listed videos of three scenes, 640x360
LISTED_LONG = 1  # listed videos of four 14.25 s scenes: 60 s of 1280x720 without cards
OTHER_SCENES = 2  # scenes of each unrelated video; they take quarters left over
OTHERS = 8  # unrelated videos (each also re-encoded to VP9) a split
# Edits changed since v3 was made (their cache keys change with them).
REVISED = {"bitrate/4": " veryfast"}
EDIT_PRESET = "ultrafast"  # x264 preset of the edits: a quick re-encode, and cheaper to make


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
    """A pan and zoom over each photo (the hashing-cost video)."""
    return _moves([p.image for p in photos], seed, [SCENE_SECONDS] * len(photos))


def _moves(images: Sequence[Image.Image], seed: int, seconds: Sequence[float]) -> list[Scene]:
    rng = np.random.default_rng(seed)
    out = []
    for image, length in zip(images, seconds, strict=True):
        start = tuple(float(x) for x in rng.uniform(0.35, 0.65, 2))
        end = tuple(float(x) for x in rng.uniform(0.35, 0.65, 2))
        zoom = (1.0, float(rng.uniform(1.15, 1.4)))
        out.append(Scene(image, length, zoom, start, end))  # type: ignore[arg-type]
    return out


def _quarters(photos: Sequence[LoadedPhoto]) -> list[tuple[str, Image.Image]]:
    """Each photo's four quarters, quarter by quarter (so consecutive quarters come from
    different photos): disjoint pictures, so no two videos show the same pixels."""
    out = []
    for corner in range(4):
        for photo in photos:
            w, h = photo.image.size
            left, top = (corner % 2) * w // 2, (corner // 2) * h // 2
            out.append(
                (
                    f"{photo.name}/q{corner}",
                    photo.image.crop((left, top, left + w // 2, top + h // 2)),
                )
            )
    return out


def _story(
    images: Sequence[Image.Image],
    seed: int,
    seconds: Sequence[float],
    size: tuple[int, int],
    cards: bool,
) -> Iterator[np.ndarray]:
    """Scenes cut together with a second of black between them, inside the site's intro
    and outro cards when `cards`."""
    black = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    parts: list[Iterable[np.ndarray]] = []
    if cards:
        parts.append(card("site", size, CARD_SECONDS, FPS, seed=1))
    for number, scene in enumerate(_moves(images, seed, seconds)):
        if number:
            parts.append(itertools.repeat(black, round(CUT_SECONDS * FPS)))
        parts.append(frames([scene], size, FPS))
    if cards:
        parts.append(card("more at site", size, CARD_SECONDS, FPS, seed=2))
    return itertools.chain(*parts)


def make_set(split: str, cache: Path) -> tuple[list[Video], list[Video]]:
    """(listed, unrelated) videos of one split, no photo quarter used twice. Listed:
    LISTED_LONG of 1280x720 (four 14.25 s scenes) and LISTED_SHORT of 640x360 (three scenes
    of 7-10 s); half of them, and every unrelated one, inside the same site cards."""
    photos, missing = load_registry((split,))  # type: ignore[arg-type]
    for note in missing:
        print(f"missing photo: {note}")
    quarters = _quarters(photos)
    rng = np.random.default_rng(17)
    plans: list[tuple[str, int, tuple[int, int], list[float], bool]] = []
    for number in range(LISTED_LONG):
        plans.append((f"listed-long{number}", 4, SIZE, [14.25] * 4, number % 2 == 1))
    for number in range(LISTED_SHORT):
        lengths = [float(x) for x in rng.uniform(7.0, 10.0, 3).round(1)]
        plans.append((f"listed-{number:02d}", 3, SMALL, lengths, number % 2 == 0))
    taken = sum(p[1] for p in plans)
    for number in range(min(OTHERS, (len(quarters) - taken) // OTHER_SCENES)):
        lengths = [float(x) for x in rng.uniform(7.0, 10.0, OTHER_SCENES).round(1)]
        plans.append((f"other-{number:02d}", OTHER_SCENES, SMALL, lengths, True))
    videos: list[Video] = []
    at = 0
    for seed, (name, count, size, lengths, cards) in enumerate(plans):
        used = quarters[at : at + count]
        at += count
        if len(used) < count:
            raise SystemExit(f"split {split}: not enough photos for {name}")
        full = f"{name}[{' '.join(n for n, _ in used)}]"
        key = f"{VERSION} {split} {full} {cards} {size} {FPS} {lengths}"
        data = _cached(
            cache,
            key,
            lambda u=used, s=seed, ln=lengths, z=size, c=cards: encode(  # type: ignore[misc]
                _story([image for _, image in u], s, ln, z, c), FPS, "h264"
            ),
        )
        videos.append(Video(full, data))
    listed = LISTED_LONG + LISTED_SHORT
    return videos[:listed], videos[listed:]


def edits(other: Sequence[Video]) -> dict[str, Callable[[bytes], bytes]]:
    """Each edit a re-uploader makes, as a function of the listed video's bytes."""

    def stream(data: bytes) -> tuple[Iterator[np.ndarray], float]:
        return decoded(data)

    def vp9(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(pics, fps, "vp9")

    def half_height(data: bytes) -> bytes:
        """720p -> 360p (the 640x360 videos: -> 180p)."""
        pics, fps = stream(data)
        first = next(pics)
        return encode(
            resized(itertools.chain([first], pics), first.shape[0] // 2),
            fps,
            "h264",
            preset=EDIT_PRESET,
        )

    def quarter_bitrate(data: bytes) -> bytes:
        with_rate = len(data) * 8 / _seconds(data)
        pics, fps = stream(data)
        # The source's own preset: ultrafast at a quarter of the bits is far worse than
        # a quarter of the bits (PDQ distances of 50-100 bits on the tune split).
        return encode(pics, fps, "h264", bitrate=int(with_rate / 4))

    def fps_24(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(retimed(pics, fps, 24.0), 24.0, "h264", preset=EDIT_PRESET)

    def middle_20(data: bytes) -> bytes:
        pics, fps = stream(data)
        seconds = _seconds(data)
        return encode(
            clip(pics, fps, seconds * 0.4, seconds * 0.2), fps, "h264", preset=EDIT_PRESET
        )

    def clip_5s(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(
            clip(pics, fps, _seconds(data) / 2 - 2.5, 5.0), fps, "h264", preset=EDIT_PRESET
        )

    def mirror(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(mirrored(pics), fps, "h264", preset=EDIT_PRESET)

    def letterbox(data: bytes) -> bytes:
        pics, fps = stream(data)
        return encode(letterboxed(pics, 0.3), fps, "h264", preset=EDIT_PRESET)

    def compilation(data: bytes) -> bytes:
        """10 s of another video, 5 s from the middle of this one, 10 s of a third."""
        pics, fps = stream(data)
        first = next(pics)
        height = first.shape[0]
        pics = itertools.chain([first], pics)
        before, b_fps = stream(other[0].data)
        after, a_fps = stream(other[1 % len(other)].data)
        middle = clip(pics, fps, _seconds(data) / 2 - 2.5, 5.0)
        parts: Iterable[np.ndarray] = itertools.chain(
            resized(clip(before, b_fps, 4.0, 10.0), height),
            middle,
            resized(clip(after, a_fps, 4.0, 10.0), height),
        )
        return encode(parts, fps, "h264", preset=EDIT_PRESET)

    return {
        "vp9": vp9,
        "half height": half_height,
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
    """The listed videos as the service holds them (service/video_list.py's index and
    rule), and every informative frame's PDQ for the nearest-distance diagnostic."""

    videos: VideoList
    values: np.ndarray  # (n, 32) uint8


def listing(hashes: Sequence[Sequence[FrameHash]], rule: VideoRule) -> Listing:
    videos = VideoList(rule)
    for entry, frames_ in enumerate(hashes):
        videos.add(entry, frames_)
    values = [np.frombuffer(f.pdq, dtype=np.uint8) for h in hashes for f in h]
    return Listing(videos, np.stack(values))


def queries(data: bytes, cache: Path) -> QueryFrames:
    """The check path's queries for an upload, cached by the file's digest (hashing
    every upload is most of a run's CPU; the rule can then be rerun in seconds)."""
    key = hashlib.sha256(f"queries {QUERY_EVERY_SECONDS} ".encode() + data).hexdigest()[:20]
    path = cache / f"{key}.npz"
    if path.exists():
        with np.load(path) as saved:
            return QueryFrames(*(saved[name] for name in QueryFrames.__slots__))
    made = check_queries(data, VideoLimits())
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, **{name: getattr(made, name) for name in QueryFrames.__slots__})
    return made


def check(data: bytes, listed: Listing, cache: Path) -> tuple[list[int], int]:
    """(entries the upload matches, the nearest frame distance to any listed frame)."""
    query = queries(data, cache)
    distances = np.unpackbits(query.queries[:, None, :] ^ listed.values[None, :, :], axis=-1)
    return [m.entry_id for m in listed.videos.search(query)], int(distances.sum(axis=-1).min())


def uploads(
    split: str, cache: Path
) -> tuple[list[Video], list[Video], dict[str, list[bytes]], list[tuple[str, bytes]]]:
    """(listed, unrelated, each edit's copies of the listed videos, the unrelated uploads
    as sent and re-encoded to VP9); everything encoded once and cached."""
    listed_videos, other = make_set(split, cache)
    made = edits(other)
    edited = {
        name: [
            _cached(
                cache,
                f"edit {VERSION} {name}{REVISED.get(name, '')} {v.name}",
                lambda e=edit, v=v: e(v.data),
            )  # type: ignore[misc]
            for v in listed_videos
        ]
        for name, edit in made.items()
    }
    negatives = []
    for video in other:
        negatives.append((f"{video.name} (as sent)", video.data))
        vp9 = _cached(cache, f"edit {VERSION} vp9 {video.name}", partial(made["vp9"], video.data))
        negatives.append((f"{video.name} (vp9)", vp9))
    return listed_videos, other, edited, negatives


def run(split: str, cache: Path, rule: VideoRule, make_only: bool = False) -> None:
    started, cpu = time.monotonic(), time.process_time()
    listed_videos, other, edited, negatives = uploads(split, cache)
    seconds = [_seconds(v.data) for v in listed_videos]
    print(
        f"split {split}: {len(listed_videos)} listed videos "
        f"({min(seconds):.0f}-{max(seconds):.0f} s, "
        f"{sum(seconds) / 60:.0f} min), {len(other)} unrelated; made in "
        f"{time.process_time() - cpu:.0f} s CPU; load average {os.getloadavg()[0]:.1f}"
    )
    if make_only:
        return
    cpu = time.process_time()
    hashes = [hash_frames(sample_frames(v.data)) for v in listed_videos]
    listed = listing(hashes, rule)
    print(f"rule {rule}")
    print(f"{'edit':<14} {'recall':>8} {'caught':>8}  missed (nearest frame distance)")
    false_matches, pairs_checked = 0, 0
    for name, copies in edited.items():
        caught, misses = 0, []
        for entry, (video, data) in enumerate(zip(listed_videos, copies, strict=True)):
            found, nearest = check(data, listed, cache)
            if entry in found:
                caught += 1
            else:
                misses.append(f"{video.name}({nearest})")
            wrong = [listed_videos[e].name for e in found if e != entry]
            pairs_checked += len(listed_videos) - 1
            false_matches += len(wrong)
            if wrong:
                print(f"FALSE MATCH: {name} of {video.name} -> {wrong}")
        total = len(listed_videos)
        print(f"{name:<14} {caught / total:>8.2f} {caught:>4}/{total:<3}  {' '.join(misses)}")
    for label, data in negatives:
        found, nearest = check(data, listed, cache)
        pairs_checked += len(listed_videos)
        false_matches += len(found)
        if found:
            print(f"FALSE MATCH: {label} -> {[listed_videos[e].name for e in found]}")
    print(
        f"false matches: {false_matches} of {pairs_checked} (upload, listed video it is not "
        f"made from) pairs; checked in {time.process_time() - cpu:.0f} s CPU, "
        f"{time.monotonic() - started:.0f} s wall; load average {os.getloadavg()[0]:.1f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=("tune", "holdout"), default="holdout")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--make-only", action="store_true", help="encode and cache the videos, match nothing"
    )
    args = parser.parse_args(argv)
    run(args.split, args.cache, VideoRule(), args.make_only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
