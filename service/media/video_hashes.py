"""A video's hashes: vPDQ (the PDQ, quality and time of one frame a second), MD5, SHA-256.

vPDQ is what Meta's vpdq tools compute: PDQ of the frame shown at each whole second.
Two text forms are read and written: python-threatexchange's signal string (a JSON list
of "hex,quality,seconds") and the vpdq CLI's file (lines "frame,quality,hex,seconds").
The canonical binary value, stored and indexed, is one 37-byte record per frame:
32 bytes of PDQ, 1 byte of quality, 4 bytes of milliseconds (big-endian).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pdqhash

from service.errors import InvalidInput
from service.media.borders import content_box, has_bars
from service.media.video import SampledFrame, Source, VideoLimits, sample_frames

PDQ_BYTES = 32
RECORD_BYTES = PDQ_BYTES + 1 + 4
# Meta's defaults (python-threatexchange vpdq_util): frames below this quality are not
# compared, and frames match within this PDQ distance.
QUALITY_THRESHOLD = 50
# The check path samples an upload this often: a clip cut at any instant then has a frame
# within 1/8 s of each second the victim's vPDQ sampled (service/video_match.py).
QUERY_EVERY_SECONDS = 0.25
# The longest video a vPDQ may describe, in frames: 24 hours at one a second.
MAX_FRAMES = 24 * 3600


@dataclass(frozen=True, slots=True)
class FrameHash:
    """One sampled frame: its PDQ (32 bytes), PDQ quality (0-100) and time in seconds."""

    pdq: bytes
    quality: int
    timestamp: float


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


@dataclass(frozen=True, slots=True)
class QueryFrames:
    """An upload's sampled frames as the check path searches them: each frame's time and
    quality, and PDQ queries tagged with the frame they come from (the frame itself, its
    mirror image, and the picture inside uniform bars with its mirror when it has bars)."""

    timestamps: np.ndarray  # float64, one per sampled frame
    qualities: np.ndarray  # uint8, one per sampled frame
    query_frame: np.ndarray  # int64, one per query: the sampled frame it comes from
    queries: np.ndarray  # (n, 32) uint8 PDQ values


def check_queries(source: Source, limits: VideoLimits) -> QueryFrames:
    """An uploaded video's queries: sampled at QUERY_EVERY_SECONDS, within `limits`."""
    return query_frames(
        sample_frames(source, dataclasses.replace(limits, every_seconds=QUERY_EVERY_SECONDS))
    )


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


# --- the canonical binary value ---------------------------------------------------------


def pack(frames: Sequence[FrameHash]) -> bytes:
    """Frames -> the canonical value (frames in time order)."""
    validate_frames(frames)
    out = bytearray()
    for frame in frames:
        out += frame.pdq
        out.append(frame.quality)
        out += round(frame.timestamp * 1000).to_bytes(4, "big")
    return bytes(out)


def unpack(value: bytes) -> list[FrameHash]:
    """The canonical value -> frames; InvalidInput when it is not one."""
    if not value or len(value) % RECORD_BYTES:
        raise InvalidInput(
            f"vpdq value must be a whole number of {RECORD_BYTES}-byte frame records "
            f"(PDQ, quality, milliseconds), got {len(value)} bytes"
        )
    frames = []
    for start in range(0, len(value), RECORD_BYTES):
        record = value[start : start + RECORD_BYTES]
        frames.append(
            FrameHash(
                record[:PDQ_BYTES],
                record[PDQ_BYTES],
                int.from_bytes(record[PDQ_BYTES + 1 :], "big") / 1000,
            )
        )
    validate_frames(frames)
    return frames


def validate_frames(frames: Sequence[FrameHash]) -> None:
    """Refuse what no real vPDQ holds, saying what is wrong with which frame."""
    if not frames:
        raise InvalidInput("vpdq has no frames")
    if len(frames) > MAX_FRAMES:
        raise InvalidInput(f"vpdq has {len(frames):,} frames; at most {MAX_FRAMES:,} are accepted")
    previous = -1.0
    for number, frame in enumerate(frames):
        if len(frame.pdq) != PDQ_BYTES:
            raise InvalidInput(f"vpdq frame {number}: PDQ must be {PDQ_BYTES} bytes")
        if not 0 <= frame.quality <= 100:
            raise InvalidInput(f"vpdq frame {number}: quality {frame.quality} is not 0-100")
        if not 0 <= frame.timestamp < 2**32 / 1000:
            raise InvalidInput(f"vpdq frame {number}: time {frame.timestamp} s is out of range")
        if frame.timestamp < previous:
            raise InvalidInput(f"vpdq frame {number}: times must not go backwards")
        previous = frame.timestamp


# --- text forms ----------------------------------------------------------------------------


def to_threatexchange(frames: Sequence[FrameHash]) -> str:
    """python-threatexchange's VPDQ signal string: a JSON list of "hex,quality,seconds"."""
    return json.dumps(
        [f"{f.pdq.hex()},{f.quality},{f.timestamp:.3f}" for f in frames], separators=(",", ":")
    )


def from_threatexchange(text: str) -> list[FrameHash]:
    """Read python-threatexchange's signal string (any JSON spacing, any time precision)."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput('vpdq text is not a JSON list of "hex,quality,seconds"') from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidInput('vpdq text is not a JSON list of "hex,quality,seconds"')
    frames = [_frame(item.split(","), (0, 1, 2), number) for number, item in enumerate(items)]
    validate_frames(frames)
    return frames


def from_vpdq_file(text: str) -> list[FrameHash]:
    """Read the vpdq CLI's hash file: one "frame,quality,hex,seconds" line per frame."""
    lines = [line for line in text.splitlines() if line.strip()]
    frames = [_frame(line.split(","), (2, 1, 3), number) for number, line in enumerate(lines)]
    validate_frames(frames)
    return frames


def to_vpdq_file(frames: Sequence[FrameHash], fps: float | None = None) -> str:
    """The vpdq CLI's file form; frame numbers come from `fps` when known, else the index."""
    return "".join(
        f"{round(f.timestamp * fps) if fps else n},{f.quality},{f.pdq.hex()},{f.timestamp:.3f}\n"
        for n, f in enumerate(frames)
    )


def _frame(parts: list[str], order: tuple[int, int, int], number: int) -> FrameHash:
    hex_at, quality_at, time_at = order
    if len(parts) != max(order) + 1:
        raise InvalidInput(f"vpdq frame {number}: expected {max(order) + 1} comma-separated fields")
    try:
        pdq = bytes.fromhex(parts[hex_at].strip())
        quality = int(parts[quality_at])
        timestamp = float(parts[time_at])
    except ValueError:
        raise InvalidInput(f"vpdq frame {number}: {','.join(parts)[:120]!r} is malformed") from None
    if not np.isfinite(timestamp):
        raise InvalidInput(f"vpdq frame {number}: time must be a number of seconds")
    return FrameHash(pdq, quality, timestamp)
