"""A vPDQ value: a video's frame hashes, their canonical binary form and text forms.

vPDQ is what Meta's vpdq tools compute: PDQ of the frame shown at each whole second.
Two text forms are read and written: python-threatexchange's signal string (a JSON list
of "hex,quality,seconds") and the vpdq CLI's file (lines "frame,quality,hex,seconds").
The canonical binary value, stored and indexed, is one 37-byte record per frame:
32 bytes of PDQ, 1 byte of quality, 4 bytes of milliseconds (big-endian).

A check's query uses the same records with one addition: records may repeat a time, and
such records are variants (a mirror image, the picture inside bars) of the one frame
shown then (QueryFrames). Pure: numpy only (service/media computes the frames).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput

PDQ_BYTES = 32
RECORD_BYTES = PDQ_BYTES + 1 + 4
# Meta's defaults (python-threatexchange vpdq_util): frames below this quality are not
# compared, and frames match within this PDQ distance.
QUALITY_THRESHOLD = 50
# The longest video a vPDQ may describe, in frames: 24 hours at one a second.
MAX_FRAMES = 24 * 3600
_MAX_MS = 2**32 - 1


@dataclass(frozen=True, slots=True)
class FrameHash:
    """One sampled frame: its PDQ (32 bytes), PDQ quality (0-100) and time in seconds."""

    pdq: bytes
    quality: int
    timestamp: float


@dataclass(frozen=True, slots=True)
class QueryFrames:
    """An upload's sampled frames as the check path searches them: each frame's time and
    quality, and PDQ queries tagged with the frame they come from (the frame itself, its
    mirror image, and the picture inside uniform bars with its mirror when it has bars)."""

    timestamps: np.ndarray  # float64, one per sampled frame
    qualities: np.ndarray  # uint8, one per sampled frame
    query_frame: np.ndarray  # int64, one per query: the sampled frame it comes from
    queries: np.ndarray  # (n, 32) uint8 PDQ values


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
    _check_length(value)
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


def require_increasing(frames: Sequence[FrameHash]) -> None:
    """A listed vPDQ has one frame per time: refuse a time that is not after the one
    before (a check's query may repeat one, for a frame's variants)."""
    for number in range(1, len(frames)):
        if frames[number].timestamp <= frames[number - 1].timestamp:
            raise InvalidInput(
                f"vpdq frame {number}: time {frames[number].timestamp:.3f} s is not after "
                f"frame {number - 1}'s ({frames[number - 1].timestamp:.3f} s); a video's "
                "frames are listed once each, in time order"
            )


def _check_length(value: bytes) -> None:
    if not value or len(value) % RECORD_BYTES:
        raise InvalidInput(
            f"vpdq value must be a whole number of {RECORD_BYTES}-byte frame records "
            f"(PDQ, quality, milliseconds), got {len(value)} bytes"
        )


# --- a check's query ----------------------------------------------------------------------


def pack_query(frames: QueryFrames) -> bytes:
    """QueryFrames -> records (each query's PDQ with its frame's quality and time), so a
    computed query travels like a supplied one (service.domain.Query.value)."""
    count = len(frames.queries)
    records = np.empty((count, RECORD_BYTES), dtype=np.uint8)
    records[:, :PDQ_BYTES] = frames.queries
    records[:, PDQ_BYTES] = frames.qualities[frames.query_frame]
    ms = np.minimum(np.round(frames.timestamps[frames.query_frame] * 1000), _MAX_MS)
    records[:, PDQ_BYTES + 1 :] = ms.astype(">u4").view(np.uint8).reshape(count, 4)
    return records.tobytes()


def unpack_query(value: bytes) -> QueryFrames:
    """Records -> QueryFrames: consecutive records with the same time are one frame's
    variants (a supplied vPDQ, one record a frame, is the simplest such query)."""
    _check_length(value)
    records = np.frombuffer(value, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    ms = records[:, PDQ_BYTES + 1 :].copy().view(">u4").ravel().astype(np.int64)
    qualities = records[:, PDQ_BYTES]
    if np.any(np.diff(ms) < 0):
        number = int(np.flatnonzero(np.diff(ms) < 0)[0]) + 1
        raise InvalidInput(f"vpdq frame {number}: times must not go backwards")
    if np.any(qualities > 100):
        number = int(np.flatnonzero(qualities > 100)[0])
        raise InvalidInput(f"vpdq frame {number}: quality {qualities[number]} is not 0-100")
    starts = np.concatenate([[True], np.diff(ms) > 0])
    query_frame = np.cumsum(starts) - 1
    return QueryFrames(
        ms[starts] / 1000.0,
        qualities[starts].copy(),
        query_frame.astype(np.int64),
        np.ascontiguousarray(records[:, :PDQ_BYTES]),
    )


# --- text forms ----------------------------------------------------------------------------


def to_threatexchange(frames: Sequence[FrameHash]) -> str:
    """python-threatexchange's VPDQ signal string: a JSON list of "hex,quality,seconds"."""
    return json.dumps(
        [f"{f.pdq.hex()},{f.quality},{f.timestamp:.3f}" for f in frames], separators=(",", ":")
    )


def from_threatexchange(text: str) -> list[FrameHash]:
    """Read python-threatexchange's signal string (any JSON spacing, any time precision;
    times its 3 significant digits made equal are spread back apart)."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput('vpdq text is not a JSON list of "hex,quality,seconds"') from None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidInput('vpdq text is not a JSON list of "hex,quality,seconds"')
    frames = [_frame(item.split(","), (0, 1, 2), number) for number, item in enumerate(items)]
    validate_frames(frames)
    return _spread_rounded_times(frames)


def _spread_rounded_times(frames: list[FrameHash]) -> list[FrameHash]:
    """python-threatexchange (1.2.17) writes times to 3 significant digits, so from
    1000 s on, ten seconds of frames share one time ("1.01e+03"). Each such run is
    spread evenly over the interval that rounds to its time (between its neighbours),
    which puts one-a-second frames back within half a second of where they were; a run
    at time 0 cannot be told apart and stays (refused as not increasing)."""
    out = list(frames)
    # The sampling interval, from the times under 100 s (written to a tenth of a second
    # or better): a run cut short by the video's end is not spread wider than that.
    early = np.array([f.timestamp for f in out if f.timestamp < 100])
    steps = np.diff(early)
    interval = float(np.median(steps[steps > 0])) if np.any(steps > 0) else math.inf
    start = 0
    while start < len(out):
        end = start
        while end + 1 < len(out) and out[end + 1].timestamp == out[start].timestamp:
            end += 1
        time_, count = out[start].timestamp, end - start + 1
        if count > 1 and time_ > 0:
            unit = 10.0 ** (math.floor(math.log10(time_)) - 2)
            low = max(time_ - unit / 2, out[start - 1].timestamp if start else 0.0)
            high = time_ + unit / 2
            if end + 1 < len(out):
                high = min(high, out[end + 1].timestamp)
            step = min((high - low) / count, interval)
            for n in range(count):
                f = out[start + n]
                out[start + n] = FrameHash(f.pdq, f.quality, low + (n + 0.5) * step)
        start = end + 1
    return out


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
