"""Video bytes -> one RGB frame a second, within budgets.

Videos come from strangers, so decoding is bounded before and while it runs: the file's
size, the frame size the container declares (and every decoded frame's, since a stream
may change size), the seconds of video, the frames decoded (an endless stream of tiny
frames at a huge rate) and the wall time. Each is refused with LimitExceeded
(INVALID_ARGUMENT: the same request cannot pass) or InvalidInput, with a message that
says which limit and its figure. Nothing here keeps or logs the bytes.

A caller that budgets memory learns the frame size from `on_header` before any frame is
decoded, and the decoders are then held to that size (FFmpeg's max_pixels): a stream
that declares small frames and then sends large ones ends where they start. A caller
whose client went away sets `cancelled`, and decoding stops at the next packet.

Only the sampled frames are converted to RGB (about one in 25-30); the others are only
decoded, which the codec must do anyway. FFmpeg comes inside PyAV's wheels.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import av
import av.error
import numpy as np
from PIL import Image

from service.errors import Cancelled, InvalidInput, LimitExceeded

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Containers a forum sees as video (FFmpeg's demuxer names). Animated GIF and WebP are
# videos too, read by Pillow (FFmpeg's WebP decoder has no animation).
ALLOWED_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts"})
ANIMATED_FORMATS = ("GIF", "WEBP")
# Browsers show a GIF frame of 0-10 ms for 100 ms; so does this sampler.
MIN_FRAME_MS = 20
DEFAULT_FRAME_MS = 100
# A packet shown this close before the next sampled second is decoded in full.
SKIP_MARGIN = 0.001
# FFmpeg checks max_pixels against the frame's width rounded up to its stride alignment
# (up to 64 pixels), so the cap set from a header leaves that much room on each side,
# and some decoders check buffers larger than the frame (MPEG-4 part 2 asks up to
# 600,000 pixels for a 2000x64 frame, 54,000 for 16x16): so many pixels more again.
ALIGN_SLACK = 64
# Sampled frames larger than 1080p are scaled down to it before they are hashed: PDQ's
# cost grows faster than the pixels (0.04 s of CPU for a 1080p frame, 0.6 s for 4K, and
# a check hashes four frames a second with their variants), while what PDQ looks at is a
# 64x64 summary; a 4K flat-colour file of a few KB a second would otherwise cost
# seconds of CPU per second of video.
HASHED_PIXELS = 1920 * 1080
SLACK_PIXELS = 1024 * 600


@dataclass(frozen=True, slots=True)
class VideoLimits:
    """What one video may cost. The defaults fit a forum upload of up to 30 minutes in 4K;
    `docs/SECURITY.md` lists them with their figures."""

    max_bytes: int = 512 * 1024 * 1024
    max_seconds: float = 30 * 60
    max_frame_pixels: int = 3840 * 2160
    max_frames: int = 30 * 60 * 120  # 30 minutes at 120 frames a second
    max_wall_seconds: float = 300.0
    every_seconds: float = 1.0  # one sampled frame per this many seconds (vPDQ's rate)
    decoder_threads: int = 1  # frame threads each hold frames: memory grows with them


@dataclass(frozen=True, slots=True)
class SampledFrame:
    """One frame kept by the sampler: when it is shown (seconds from the first frame) and
    its pixels as an (height, width, 3) uint8 array."""

    timestamp: float
    rgb: np.ndarray


class MemoryReader(io.RawIOBase):
    """A read-only, seekable file over bytes already in memory (a CheckVideo stream's
    buffer), so the decoders read them where they are: io.BytesIO would copy a
    bytearray first, doubling what a large video holds."""

    def __init__(self, data: bytes | bytearray) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._at = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        count = max(0, min(len(out), len(self._view) - self._at))
        out[:count] = self._view[self._at : self._at + count]
        self._at += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: len(self._view)}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def close(self) -> None:
        self._view.release()
        super().close()


Source = bytes | str | Path | BinaryIO
# Called with the frame size (width, height) the header declares (0 x 0 when it declares
# none), before any frame is decoded; decoders are then held to held_pixels of it. It
# may raise to stop (a budget it cannot get).
OnHeader = Callable[[int, int], None]


def sample_frames(
    source: Source,
    limits: VideoLimits = VideoLimits(),
    *,
    on_header: OnHeader | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[SampledFrame]:
    """Yield the first frame at or after each multiple of `limits.every_seconds`.

    A file cut short yields the frames before the cut; a file with no decodable frame
    raises InvalidInput. Limits raise LimitExceeded as soon as they are passed;
    `cancelled()` turning true raises Cancelled.
    """
    watch = _Watch(on_header or _ignore, cancelled or _never)
    if _is_animated_image(source):
        yield from _sample_animation(source, limits, watch)
        return
    container = _open(source, limits)
    try:
        yield from _sample(container, limits, watch)
    finally:
        container.close()


@dataclass(frozen=True, slots=True)
class _Watch:
    on_header: OnHeader
    cancelled: Callable[[], bool]

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled("the video check was cancelled")


def _ignore(width: int, height: int) -> None:
    return None


def _never() -> bool:
    return False


def is_animation(data: bytes) -> bool:
    """True for GIF and WebP bytes: the caller asks `animation_frames` whether there is
    more than one frame (a still GIF is a photo)."""
    return data[:6] in (b"GIF87a", b"GIF89a") or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _is_animated_image(source: Source) -> bool:
    if isinstance(source, bytes):
        head = source[:12]
    elif isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            head = handle.read(12)
    else:
        position = source.tell()
        head = source.read(12)
        source.seek(position)
    return is_animation(head)


def _sample_animation(source: Source, limits: VideoLimits, watch: _Watch) -> Iterator[SampledFrame]:
    """Animated GIF and WebP through Pillow, each frame shown for its own duration."""
    size = _size(source)
    if size > limits.max_bytes:
        raise LimitExceeded(
            "video_bytes", f"video is {size:,} bytes; the limit is {limits.max_bytes:,}"
        )
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(handle, formats=ANIMATED_FORMATS) as image:
            width, height = image.size
            if width * height > limits.max_frame_pixels:
                raise LimitExceeded("video_frame_pixels", _pixels_message(width, height, limits))
            watch.on_header(width, height)
            count = getattr(image, "n_frames", 1)
            if count > limits.max_frames:
                raise LimitExceeded(
                    "video_frames", f"video has more than {limits.max_frames:,} frames"
                )
            deadline = time.monotonic() + limits.max_wall_seconds
            at, next_time = 0.0, 0.0
            for index in range(count):
                watch.check()
                image.seek(index)
                image.load()  # WebP sets the frame's duration when it decodes it
                if time.monotonic() > deadline:
                    raise LimitExceeded("video_seconds", _wall_message(limits))
                if at > limits.max_seconds:
                    raise LimitExceeded("video_seconds", _duration_message(at, limits))
                if at + 1e-6 >= next_time:
                    yield SampledFrame(round(at, 3), _reduced(image.convert("RGB")))
                    next_time = _next_sample(at, limits)
                shown = image.info.get("duration") or DEFAULT_FRAME_MS
                at += (shown if shown >= MIN_FRAME_MS else DEFAULT_FRAME_MS) / 1000
    except (LimitExceeded, InvalidInput, Cancelled):
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"animation could not be decoded ({_reason(exc)})") from None


def _next_sample(at: float, limits: VideoLimits) -> float:
    return (math.floor(at / limits.every_seconds + 1e-6) + 1) * limits.every_seconds


def _open(source: Source, limits: VideoLimits) -> av.container.InputContainer:
    size = _size(source)
    if size == 0:
        raise InvalidInput("video is empty")
    if size > limits.max_bytes:
        raise LimitExceeded(
            "video_bytes", f"video is {size:,} bytes; the limit is {limits.max_bytes:,}"
        )
    handle: str | BinaryIO = (
        io.BytesIO(source)
        if isinstance(source, bytes)
        else str(source)
        if isinstance(source, (str, Path))
        else source
    )
    try:
        # max_pixels makes FFmpeg's decoders refuse an oversized frame before allocating
        # it; `options` reaches the demuxer and every stream's decoder alike.
        container = av.open(
            handle,
            mode="r",
            options={"max_pixels": str(limits.max_frame_pixels)},
            timeout=limits.max_wall_seconds,
        )
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"bytes are not a video the service can decode ({_reason(exc)})"
        ) from None
    if container.format.name not in ALLOWED_CONTAINERS:
        container.close()
        raise InvalidInput(
            f"video container {container.format.name!r} is not accepted; "
            "send MP4, MOV, WebM, MKV, AVI, MPEG-TS, animated GIF or animated WebP"
        )
    return container


def _size(source: Source) -> int:
    if isinstance(source, bytes):
        return len(source)
    if isinstance(source, (str, Path)):
        return Path(source).stat().st_size
    position = source.tell()
    end = source.seek(0, io.SEEK_END)
    source.seek(position)
    return end - position


def _sample(
    container: av.container.InputContainer, limits: VideoLimits, watch: _Watch
) -> Iterator[SampledFrame]:
    if not container.streams.video:
        raise InvalidInput("the file has no video stream")
    stream = container.streams.video[0]
    _check_declared(stream, container, limits)
    context = stream.codec_context
    watch.on_header(context.width, context.height)
    # Held to the size the caller budgeted for, from the first frame decoded (the
    # decoder opens at its first packet, with these options).
    held = held_pixels(context.width, context.height, limits)
    context.options = {**context.options, "max_pixels": str(held)}
    context.thread_count = max(1, limits.decoder_threads)
    time_base = float(stream.time_base) if stream.time_base else None
    deadline = time.monotonic() + limits.max_wall_seconds
    packets = 0
    start: float | None = None
    next_time = 0.0
    try:
        for packet in container.demux(stream):
            packets += 1
            if packets > limits.max_frames:
                raise LimitExceeded(
                    "video_frames", f"video has more than {limits.max_frames:,} frames"
                )
            if time.monotonic() > deadline:
                raise LimitExceeded("video_seconds", _wall_message(limits))
            watch.check()
            # Frames no other frame refers to (most B-frames) are left undecoded until the
            # next sampled second: about half the decoding, the same frames sampled.
            wanted_soon = (
                start is None
                or packet.pts is None
                or time_base is None
                or packet.pts * time_base - start >= next_time - SKIP_MARGIN
            )
            context.skip_frame = "DEFAULT" if wanted_soon else "NONREF"
            for frame in packet.decode():
                if frame.width * frame.height > limits.max_frame_pixels:
                    raise LimitExceeded(
                        "video_frame_pixels", _pixels_message(frame.width, frame.height, limits)
                    )
                shown = frame.time if frame.time is not None else packets / _rate(stream)
                start = shown if start is None else start
                at = max(0.0, shown - start)
                if at > limits.max_seconds:
                    raise LimitExceeded("video_seconds", _duration_message(at, limits))
                if at + 1e-6 >= next_time:
                    yield SampledFrame(round(at, 3), _rgb(frame))
                    next_time = _next_sample(at, limits)
    except av.error.FFmpegError as exc:
        if start is None:
            raise InvalidInput(f"video could not be decoded ({_reason(exc)})") from None
        return  # cut short: what was decoded before the damage is still the video
    except MemoryError:
        raise InvalidInput("video could not be decoded (out of memory)") from None
    if start is None:
        raise InvalidInput("video has no decodable frames")


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    """The frame as RGB; one larger than HASHED_PIXELS scaled down to it (area average)
    in the same pass as the colour conversion."""
    pixels = frame.width * frame.height
    if pixels <= HASHED_PIXELS:
        return frame.to_ndarray(format="rgb24")
    scale = math.sqrt(HASHED_PIXELS / pixels)
    width, height = max(2, int(frame.width * scale)), max(2, int(frame.height * scale))
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")


def _reduced(image: Image.Image) -> np.ndarray:
    """An animation's frame as RGB, box-reduced below HASHED_PIXELS when larger."""
    pixels = image.width * image.height
    if pixels > HASHED_PIXELS:
        image = image.reduce(math.ceil(math.sqrt(pixels / HASHED_PIXELS)))
    return np.asarray(image)


def held_pixels(width: int, height: int, limits: VideoLimits) -> int:
    """The pixels a frame may have once the header declared `width` x `height`: room for
    stride alignment and decoders' larger buffers, or the limit when none is declared."""
    if width > 0 and height > 0:
        return (width + ALIGN_SLACK) * (height + ALIGN_SLACK) + SLACK_PIXELS
    return limits.max_frame_pixels


def _check_declared(
    stream: av.video.stream.VideoStream, container: av.container.InputContainer, limits: VideoLimits
) -> None:
    """Refuse what the header already says is over a limit, before decoding anything."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_frame_pixels:
        raise LimitExceeded("video_frame_pixels", _pixels_message(width, height, limits))
    declared = _declared_seconds(stream, container)
    if declared is not None and declared > limits.max_seconds:
        raise LimitExceeded("video_seconds", _duration_message(declared, limits))


def _declared_seconds(
    stream: av.video.stream.VideoStream, container: av.container.InputContainer
) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _rate(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _pixels_message(width: int, height: int, limits: VideoLimits) -> str:
    return (
        f"video frames are {width}x{height} = {width * height:,} pixels; "
        f"the limit is {limits.max_frame_pixels:,}"
    )


def _duration_message(seconds: float, limits: VideoLimits) -> str:
    return f"video runs {seconds:,.0f} s or more; the limit is {limits.max_seconds:,.0f} s"


def _wall_message(limits: VideoLimits) -> str:
    return (
        f"decoding took longer than {limits.max_wall_seconds:g} s; send a shorter or smaller video"
    )


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]
