"""Videos made from package photos, and the edits re-uploaders make to them.

A "scene" is a slow pan and zoom over one photo (a Ken Burns move), so consecutive
seconds differ as they do in real footage; a video is a few scenes cut together. Every
video here is encoded with PyAV's own encoders (FFmpeg in PyAV's wheels). The edits
re-encode, resize, cut, mirror, letterbox, change the frame rate or the bitrate, or
splice a few seconds into other material, as leak sites do.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw

# Codec, container format and pixel format of each encoding the benchmark uses.
ENCODINGS = {
    "h264": ("libx264", "mp4", "yuv420p"),
    "vp9": ("libvpx-vp9", "webm", "yuv420p"),
    "mpeg4": ("mpeg4", "mov", "yuv420p"),
    "mkv": ("libx264", "matroska", "yuv420p"),
    "gif": ("gif", "gif", "rgb8"),
}


@dataclass(frozen=True, slots=True)
class Scene:
    """`seconds` of a move over `photo`: from zoom `zoom[0]` at centre `start` to
    `zoom[1]` at `end` (centres as shares of the photo's width and height)."""

    photo: Image.Image
    seconds: float
    zoom: tuple[float, float] = (1.0, 1.25)
    start: tuple[float, float] = (0.45, 0.45)
    end: tuple[float, float] = (0.55, 0.55)


def frames(scenes: Sequence[Scene], size: tuple[int, int], fps: float) -> Iterator[np.ndarray]:
    """RGB frames of the scenes, one after another, at `fps`, each `size` (w, h)."""
    width, height = size
    for scene in scenes:
        count = max(1, round(scene.seconds * fps))
        photo = scene.photo.convert("RGB")
        for i in range(count):
            share = i / max(1, count - 1)
            yield _view(photo, scene, share, width, height)


def _view(photo: Image.Image, scene: Scene, share: float, width: int, height: int) -> np.ndarray:
    zoom = scene.zoom[0] + (scene.zoom[1] - scene.zoom[0]) * share
    cx = scene.start[0] + (scene.end[0] - scene.start[0]) * share
    cy = scene.start[1] + (scene.end[1] - scene.start[1]) * share
    pw, ph = photo.size
    # The largest box of the output's aspect ratio inside the photo, shrunk by the zoom.
    aspect = width / height
    box_w = min(pw, ph * aspect) / zoom
    box_h = box_w / aspect
    left = min(max(cx * pw - box_w / 2, 0), pw - box_w)
    top = min(max(cy * ph - box_h / 2, 0), ph - box_h)
    view = photo.resize(
        (width, height), Image.Resampling.BILINEAR, box=(left, top, left + box_w, top + box_h)
    )
    return np.asarray(view)


def encode(
    pictures: Iterable[np.ndarray],
    fps: float,
    encoding: str = "h264",
    bitrate: int | None = None,
    preset: str = "veryfast",
) -> bytes:
    """Encode RGB frames with one of ENCODINGS; returns the file's bytes. `preset` is
    x264's speed preset (the quality benchmark re-encodes its edits "ultrafast")."""
    codec, container_format, pix_fmt = ENCODINGS[encoding]
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        rate = _rate(fps)
        stream: Any = container.add_stream(codec, rate=rate)  # a VideoStream
        stream.pix_fmt = pix_fmt
        if bitrate:
            stream.bit_rate = bitrate
        if codec == "libx264":
            stream.options = {"preset": preset, **({} if bitrate else {"crf": "23"})}
        elif codec == "libvpx-vp9":
            stream.options = {
                "deadline": "realtime",
                "cpu-used": "8",
                "row-mt": "1",
                **({} if bitrate else {"crf": "32", "b": "0"}),
            }
        first = True
        for rgb in pictures:
            if first:
                stream.height, stream.width = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
                first = False
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(rgb[: stream.height, : stream.width]), format="rgb24"
            )
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _rate(fps: float) -> Fraction | int:
    return Fraction(fps).limit_denominator(1001) if fps != int(fps) else int(fps)


def decoded(data: bytes) -> tuple[Iterator[np.ndarray], float]:
    """A video's frames as RGB, one at a time (a 720p minute is 5 GB of pixels), and its
    frame rate, for the edits below."""
    container: Any = av.open(io.BytesIO(data))  # an InputContainer (mode "r")
    stream = container.streams.video[0]
    rate = float(stream.average_rate or stream.guessed_rate or 25)

    def each() -> Iterator[np.ndarray]:
        with container:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")

    return each(), rate


# --- the edits re-uploaders make (each over a stream of frames) -------------------------


def resized(pictures: Iterable[np.ndarray], height: int) -> Iterator[np.ndarray]:
    """Scale every frame to `height` rows, keeping the aspect ratio."""
    for p in pictures:
        h, w = p.shape[:2]
        width = round(w * height / h / 2) * 2
        yield np.asarray(Image.fromarray(p).resize((width, height), Image.Resampling.BILINEAR))


def retimed(pictures: Iterable[np.ndarray], fps: float, new_fps: float) -> Iterator[np.ndarray]:
    """The same motion shown at another frame rate (frames dropped or repeated)."""
    shown = 0
    for i, p in enumerate(pictures):
        until = (i + 1) * new_fps / fps
        while shown < until - 1e-9:
            yield p
            shown += 1


def clip(
    pictures: Iterable[np.ndarray], fps: float, start: float, seconds: float
) -> Iterator[np.ndarray]:
    """`seconds` of video from `start` seconds."""
    first = round(start * fps)
    yield from itertools.islice(pictures, first, first + round(seconds * fps))


def mirrored(pictures: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for p in pictures:
        yield np.ascontiguousarray(p[:, ::-1])


def letterboxed(pictures: Iterable[np.ndarray], share: float = 0.3) -> Iterator[np.ndarray]:
    """Each frame shrunk into black bars above and below taking `share` of the height."""
    for p in pictures:
        h, w = p.shape[:2]
        inner = round(h * (1 - share) / 2) * 2
        inner_w = round(w * inner / h / 2) * 2
        top, left = (h - inner) // 2, (w - inner_w) // 2
        canvas = np.zeros_like(p)
        canvas[top : top + inner, left : left + inner_w] = np.asarray(
            Image.fromarray(p).resize((inner_w, inner), Image.Resampling.BILINEAR)
        )
        yield canvas


def card(
    text: str, size: tuple[int, int], seconds: float, fps: float, seed: int = 0
) -> Iterator[np.ndarray]:
    """A site's logo card: a textured logo (PDQ quality well above 50, so the match rule,
    not the quality floor, must keep it from matching) that grows on a flat background."""
    width, height = size
    rng = np.random.default_rng(seed)
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    texture = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize(
        (min(width, height), min(width, height)), Image.Resampling.NEAREST
    )
    count = round(seconds * fps)
    for i in range(count):
        picture = Image.new("RGB", size, colour)
        side = int(min(width, height) * (0.6 + 0.3 * i / max(1, count - 1)))
        logo = texture.resize((side, side), Image.Resampling.BILINEAR)
        picture.paste(logo, ((width - side) // 2, (height - side) // 2))
        ImageDraw.Draw(picture).text((10, 10), text, fill=(255, 255, 255))
        yield np.asarray(picture)
