"""Hashing a video: HashGuard's sampler against Meta's vpdq reference, in one run.

Makes a 60 s 720p H.264 video from package photos (cached in --cache), then hashes it
with each in turn, alternating, --rounds times: CPU seconds (every thread of the
process) and wall seconds, per second of video. Then compares the two hashes frame by
frame: how many frames each took, and the PDQ distance between frames of the same
second.

    pip install vpdq   # builds against FFmpeg: apt-get install libavcodec-dev \
                       #   libavformat-dev libswscale-dev libavutil-dev libavdevice-dev pkg-config
    python -m loadtests.video_cost --agreement

`--agreement` also hashes the quality benchmark's edits of that video (VP9, half
height, bitrate / 4, 24 fps, a 20 % clip, mirrored, letterboxed) with both. The
reference is optional: without it only HashGuard's figures are printed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from loadtests.photos import load_registry
from loadtests.quality_videos import DEFAULT_CACHE, FPS, SIZE, _cached, _scenes, edits
from loadtests.videos import encode, frames
from service.media.video import VideoLimits, sample_frames
from service.media.video_hashes import FrameHash, hash_frames

SECONDS = 60


def make_video(cache: Path) -> bytes:
    photos, _ = load_registry(("tune",))
    scenes = _scenes(photos[: SECONDS // 8 + 1], seed=7)
    return _cached(
        cache,
        f"cost v1 {SIZE} {FPS} {SECONDS}",
        lambda: encode(
            (f for _, f in zip(range(int(SECONDS * FPS)), frames(scenes, SIZE, FPS), strict=False)),
            FPS,
            "h264",
        ),
    )


def ours(path: str, threads: int) -> list[FrameHash]:
    return hash_frames(sample_frames(path, VideoLimits(decoder_threads=threads)))


def reference(path: str, threads: int) -> list[FrameHash]:
    import vpdq  # type: ignore[import-not-found]

    return [
        FrameHash(bytes.fromhex(f.hex), int(f.quality), float(f.timestamp))
        for f in vpdq.computeHash(path, seconds_per_hash=1.0, thread_count=threads)
    ]


def timed(
    hasher: Callable[[str, int], list[FrameHash]], path: str, threads: int
) -> tuple[float, float, list[FrameHash]]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = hasher(path, threads)
    return time.process_time() - cpu, time.perf_counter() - wall, result


def agreement(a: Sequence[FrameHash], b: Sequence[FrameHash]) -> str:
    by_second = {round(f.timestamp): f for f in b}
    distances = [
        (
            int.from_bytes(f.pdq, "big") ^ int.from_bytes(by_second[round(f.timestamp)].pdq, "big")
        ).bit_count()
        for f in a
        if round(f.timestamp) in by_second
    ]
    d = np.array(distances)
    return (
        f"frames {len(a)} vs {len(b)}; {len(d)} seconds in both; PDQ distance per frame: "
        f"median {np.median(d):.0f}, p95 {np.percentile(d, 95):.0f}, max {d.max()}; "
        f"<= 31 bits: {(d <= 31).mean():.0%}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="decoder/hasher threads, both")
    parser.add_argument(
        "--agreement", action="store_true", help="also compare both on edits of the video"
    )
    args = parser.parse_args(argv)
    data = make_video(args.cache)
    try:
        import vpdq  # type: ignore[import-not-found]  # noqa: F401

        hashers = {"hashguard": ours, "vpdq reference": reference}
    except ImportError:
        print("vpdq is not installed: HashGuard alone")
        hashers = {"hashguard": ours}
    with tempfile.NamedTemporaryFile(suffix=".mp4") as handle:
        handle.write(data)
        handle.flush()
        print(
            f"{SECONDS} s {SIZE[0]}x{SIZE[1]} H.264 at {FPS:g} fps, {len(data):,} bytes; "
            f"threads {args.threads}; load average {os.getloadavg()[0]:.1f}"
        )
        print(f"{'hasher':<16} {'round':>5} {'CPU s':>7} {'wall s':>7} {'CPU s per video s':>18}")
        results: dict[str, list[FrameHash]] = {}
        cpu_totals: dict[str, list[float]] = {name: [] for name in hashers}
        for round_ in range(args.rounds):
            for name, hasher in hashers.items():
                cpu, wall, results[name] = timed(hasher, handle.name, args.threads)
                cpu_totals[name].append(cpu)
                print(f"{name:<16} {round_:>5} {cpu:>7.2f} {wall:>7.2f} {cpu / SECONDS:>18.3f}")
    if len(hashers) == 2:
        best = {name: min(values) for name, values in cpu_totals.items()}
        print(
            f"CPU ratio hashguard / reference (best of {args.rounds}): "
            f"{best['hashguard'] / best['vpdq reference']:.2f}"
        )
        print("agreement: " + agreement(results["hashguard"], results["vpdq reference"]))
        if args.agreement:
            agree_on_edits(data, args.cache, args.threads)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


def agree_on_edits(data: bytes, cache: Path, threads: int) -> None:
    """Agreement on the quality benchmark's edits of the same video (other codecs,
    sizes, frame rates, a clip), each file hashed by both."""
    made = edits([])
    print(f"{'file':<22} agreement (frames HashGuard vs reference; distances per second)")
    for name in ("vp9", "half height", "bitrate/4", "24fps", "clip 20%", "mirror", "letterbox"):
        edited = _cached(cache, f"cost edit v1 {name} {SECONDS}", partial(made[name], data))
        suffix = ".webm" if name == "vp9" else ".mp4"
        with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
            handle.write(edited)
            handle.flush()
            a, b = ours(handle.name, threads), reference(handle.name, threads)
        print(f"{name:<22} {agreement(a, b)}")


if __name__ == "__main__":
    raise SystemExit(main())
