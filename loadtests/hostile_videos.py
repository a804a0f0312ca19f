"""Hostile videos: files a forum may be sent to make its checks slow, large or crash.

Each is made here with PyAV's own encoders (and, for headers that lie, a few bytes
patched afterwards), small enough to build in a test:

- a bomb: a tiny file of huge frames (4K of one flat colour: a few KB a second to
  store, 12 MB a frame to decode), and one whose decoder keeps the most frames (H.264
  with 16 reference frames and B-pyramids, the deepest buffer the standard allows);
- frames larger than the header says (MJPEG in AVI whose header declares 64x64 and
  whose frames are 8000x8000), and a header declaring a size past every limit;
- long and endless streams: a two-hour MP4 (its duration is in the header) and a long
  MPEG-TS (no duration anywhere: found by decoding);
- zero frames, not a video at all, a cut file, an odd codec (FFV1) and an odd container
  (FLV).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable
from typing import Any

import av
import numpy as np
from PIL import Image

FLAT = (96, 128, 160)


def _encode(
    pictures: Iterable[np.ndarray],
    fps: int,
    codec: str = "libx264",
    container_format: str = "mp4",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        first = True
        for rgb in pictures:
            if first:
                stream.height, stream.width = rgb.shape[:2]
                first = False
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _flat(width: int, height: int, count: int) -> Iterable[np.ndarray]:
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = FLAT
    for n in range(count):
        frame[:8, :8] = n % 256  # a little change, so no encoder drops the frame
        yield frame


def _textured(width: int, height: int, count: int, seed: int = 0) -> Iterable[np.ndarray]:
    rng = np.random.default_rng(seed)
    tile = Image.fromarray(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8))
    base = np.asarray(tile.resize((width, height), Image.Resampling.BILINEAR))
    for n in range(count):
        yield np.roll(base, n * 4, axis=1)


def flat_4k_bomb(seconds: int = 10, fps: int = 30) -> bytes:
    """3840x2160 frames of one colour: about 1 KB a second of file, 12 MB a frame."""
    return _encode(_flat(3840, 2160, seconds * fps), fps, options={"preset": "ultrafast"})


def deep_buffer_bomb(width: int = 1920, height: int = 1080, seconds: int = 4) -> bytes:
    """H.264 that makes the decoder hold the most frames: 16 references, B-pyramids."""
    options = {"preset": "ultrafast", "x264-params": "ref=16:bframes=16:b-pyramid=normal"}
    return _encode(_flat(width, height, seconds * 25), 25, options=options)


def _mjpeg_avi(width: int, height: int, count: int) -> bytes:
    return _encode(_textured(width, height, count), 10, "mjpeg", "avi", "yuvj420p", {"q:v": "31"})


def _patch_sof(data: bytes, width: int, height: int) -> bytes:
    """Every JPEG frame's SOF0 size set to width x height (the scan data is left alone:
    a decoder allocates the frame before it finds the data short)."""
    out = bytearray(data)
    at = out.find(b"\xff\xc0")
    while at >= 0:
        out[at + 5 : at + 9] = struct.pack(">HH", height, width)
        at = out.find(b"\xff\xc0", at + 9)
    return bytes(out)


def _patch_avi_header(data: bytes, width: int, height: int) -> bytes:
    """The AVI main header's and the stream format's declared size."""
    out = bytearray(data)
    avih = out.find(b"avih")
    out[avih + 8 + 32 : avih + 8 + 40] = struct.pack("<II", width, height)
    strf = out.find(b"strf")
    out[strf + 8 + 4 : strf + 8 + 12] = struct.pack("<ii", width, height)
    return bytes(out)


def growing_frames_bomb() -> bytes:
    """An AVI whose header says 64x64 and whose MJPEG frames say 8000x8000."""
    return _patch_sof(_mjpeg_avi(64, 64, 20), 8000, 8000)


def huge_declared() -> bytes:
    """An AVI declaring 30000x30000 frames in its header and its frames."""
    return _patch_avi_header(_patch_sof(_mjpeg_avi(64, 64, 20), 30000, 30000), 30000, 30000)


def long_video(seconds: int = 7200, container_format: str = "mp4") -> bytes:
    """64x64 at one frame a second (two hours: 160 KB as MP4, 5 MB as MPEG-TS)."""
    return _encode(
        _flat(64, 64, seconds),
        1,
        "libx264",
        container_format,
        options={"preset": "ultrafast", "g": "600"},
    )


def zero_frames() -> bytes:
    """A Matroska file cut where its first cluster of frames begins: a video stream and
    no frame in it."""
    data = odd_codec()
    return data[: data.index(b"\x1f\x43\xb6\x75")]


def odd_codec() -> bytes:
    """FFV1 (lossless, archival) in Matroska: decodable, rare on forums."""
    return _encode(_textured(320, 240, 30), 10, "ffv1", "matroska", "yuv420p")


def odd_container() -> bytes:
    """FLV, a container the service does not accept."""
    return _encode(_textured(320, 240, 20), 10, "flv", "flv", "yuv420p")


def not_a_video() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(next(iter(_textured(320, 240, 1)))).save(buffer, format="JPEG")
    return buffer.getvalue()


def big_animation(side: int = 2000, frames: int = 40) -> bytes:
    """An animated GIF on a side x side canvas: Pillow decodes every frame at full size."""
    pictures = [Image.fromarray(p) for p in _textured(side, side, frames)]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=100, loop=0
    )
    return buffer.getvalue()
