"""A video's hashes: vPDQ (the PDQ, quality and time of one frame a second), MD5, SHA-256.

vPDQ is what Meta's vpdq tools compute: PDQ of the frame shown at each whole second.
This module computes it from decoded frames (service/media/video.py); the value's binary
and text forms live with its hash type (service/signals/vpdq_frames.py) and are
re-exported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pdqhash

from service.errors import InvalidInput
from service.media.borders import content_box, has_bars
from service.media.video import OnHeader, SampledFrame, Source, VideoLimits, sample_frames
from service.signals.vpdq_frames import (  # the value's format; re-exported for callers
    MAX_FRAMES,
    PDQ_BYTES,
    QUALITY_THRESHOLD,
    RECORD_BYTES,
    FrameHash,
    QueryFrames,
    from_threatexchange,
    from_vpdq_file,
    pack,
    to_threatexchange,
    to_vpdq_file,
    unpack,
    validate_frames,
)

__all__ = [
    "MAX_FRAMES",
    "PDQ_BYTES",
    "QUALITY_THRESHOLD",
    "QUERY_EVERY_SECONDS",
    "RECORD_BYTES",
    "FrameHash",
    "QueryFrames",
    "VideoHashes",
    "check_queries",
    "file_digests",
    "from_threatexchange",
    "from_vpdq_file",
    "hash_frames",
    "pack",
    "query_frames",
    "to_threatexchange",
    "to_vpdq_file",
    "unpack",
    "validate_frames",
]

# The check path samples an upload this often: a clip cut at any instant then has a frame
# within 1/8 s of each second the victim's vPDQ sampled (service/video_match.py).
QUERY_EVERY_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class VideoHashes:
    """Everything computed from one video file."""

    frames: tuple[FrameHash, ...]
    md5: bytes
    sha256: bytes


def hash_frames(samples: Iterable[SampledFrame]) -> list[FrameHash]:
    """PDQ of each sampled frame (pdqhash, the same code as the photo path)."""
    out = []
    for sample in samples:
        bits, quality = pdqhash.compute(sample.rgb)
        out.append(
            FrameHash(np.packbits(bits.astype(np.uint8)).tobytes(), int(quality), sample.timestamp)
        )
    return out


def check_queries(
    source: Source,
    limits: VideoLimits,
    *,
    on_header: OnHeader | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> QueryFrames:
    """An uploaded video's queries: sampled at QUERY_EVERY_SECONDS, within `limits`
    (`on_header` and `cancelled` as for sample_frames)."""
    limits = dataclasses.replace(limits, every_seconds=QUERY_EVERY_SECONDS)
    return query_frames(sample_frames(source, limits, on_header=on_header, cancelled=cancelled))


def query_frames(samples: Iterable[SampledFrame]) -> QueryFrames:
    """The check path's queries for sampled frames (see QueryFrames)."""
    times: list[float] = []
    qualities: list[int] = []
    owners: list[int] = []
    values: list[bytes] = []
    for number, sample in enumerate(samples):
        bits, quality = pdqhash.compute(sample.rgb)
        times.append(sample.timestamp)
        qualities.append(int(quality))
        pictures = [sample.rgb]
        height, width = sample.rgb.shape[:2]
        box = content_box(sample.rgb)
        if has_bars(box, width, height):
            left, top, right, bottom = box
            pictures.append(sample.rgb[top:bottom, left:right])
        variants = [np.packbits(bits.astype(np.uint8)).tobytes()]
        for index, picture in enumerate(pictures):
            if index:
                inner, _ = pdqhash.compute(np.ascontiguousarray(picture))
                variants.append(np.packbits(inner.astype(np.uint8)).tobytes())
            mirror, _ = pdqhash.compute(np.ascontiguousarray(picture[:, ::-1]))
            variants.append(np.packbits(mirror.astype(np.uint8)).tobytes())
        owners += [number] * len(variants)
        values += variants
    if not times:
        raise InvalidInput("video has no decodable frames")
    return QueryFrames(
        np.asarray(times, dtype=np.float64),
        np.asarray(qualities, dtype=np.uint8),
        np.asarray(owners, dtype=np.int64),
        np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), PDQ_BYTES),
    )


def file_digests(data: bytes) -> tuple[bytes, bytes]:
    """(MD5, SHA-256) of a file's bytes: the exact-copy hashes StopNCII lists."""
    return hashlib.md5(data, usedforsecurity=False).digest(), hashlib.sha256(data).digest()
