"""Find the photo inside a uniform frame: letterbox and pillarbox bars, coloured frames.

A re-uploader who pastes a photo into black bars (or a white frame) changes every PDQ
bit, because PDQ hashes the whole canvas. Cutting the bars off again gives back nearly the
photo's own hash. Done the same way on both sides (the victim's `hashguard hash` and the
check path), so a photo that really has a dark edge is cut alike everywhere.

Unlike a black-only trim (python-threatexchange's unletterboxing keeps rows whose every
pixel is below a threshold), a bar here may be any solid colour, and a row counts as bar
when nearly all its pixels are close to the edge's colour, so JPEG ringing and a stray
pixel do not stop the cut. Pure numpy over an RGB array; no image I/O.
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]  # left, top, right, bottom (PIL's crop box)

# A line is bar when at least this share of its pixels lies within TOLERANCE grey levels
# (per channel) of the bar colour. JPEG at quality 75 keeps black bars within about 10
# levels except next to the photo; 24 leaves room for that.
TOLERANCE = 24
LINE_SHARE = 0.97
# Bars narrower than this share of a side are left alone (a 1-2 px edge changes no PDQ
# bit worth the extra hash); content narrower than MIN_CONTENT of a side is not a photo
# in a frame but a flat image, and is left whole.
MIN_BAR = 0.02
MIN_CONTENT = 0.3


def _bar_lines(lines: np.ndarray) -> int:
    """How many leading lines of `lines` (n, length, 3) are bar: close to the colour of
    the first line (its median), which must itself be nearly uniform. Looks no further
    than half way, and only past the first line when that one is bar (most uploads have
    no bars, and then this costs one line)."""

    def close(block: np.ndarray) -> np.ndarray:
        diff = np.abs(block.astype(np.int16) - colour).max(axis=-1)
        return np.asarray((diff <= TOLERANCE).mean(axis=-1) >= LINE_SHARE)

    colour = np.median(lines[0], axis=0).astype(np.int16)
    if not close(lines[0]):
        return 0
    bar = close(lines[: len(lines) // 2])
    return int(bar.argmin()) if not bar.all() else len(bar)


def content_box(rgb: np.ndarray) -> Box:
    """The box of `rgb` (height, width, 3) left after cutting uniform bars on each side;
    the whole image when there are none."""
    height, width = rgb.shape[:2]
    pixels = rgb
    top = _bar_lines(pixels)
    bottom = height - _bar_lines(pixels[::-1])
    left = _bar_lines(pixels.transpose(1, 0, 2))
    right = width - _bar_lines(pixels.transpose(1, 0, 2)[::-1])
    if bottom - top < MIN_CONTENT * height:
        top, bottom = 0, height
    if right - left < MIN_CONTENT * width:
        left, right = 0, width
    return (
        left if left >= MIN_BAR * width else 0,
        top if top >= MIN_BAR * height else 0,
        right if width - right >= MIN_BAR * width else width,
        bottom if height - bottom >= MIN_BAR * height else height,
    )


def has_bars(box: Box, width: int, height: int) -> bool:
    return box != (0, 0, width, height)
