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
    no bars, and then this costs one line); then in chunks that double, so a bar costs
    about its own pixels rather than half the image's."""

    def close(block: np.ndarray) -> np.ndarray:
        diff = np.abs(block.astype(np.int16) - colour).max(axis=-1)
        return np.asarray((diff <= TOLERANCE).mean(axis=-1) >= LINE_SHARE)

    if lines.shape[0] == 0 or lines.shape[1] == 0:
        return 0
    colour = np.median(lines[0], axis=0).astype(np.int16)
    if not close(lines[:1])[0]:
        return 0
    limit, done, step = len(lines) // 2, 1, 8
    while done < limit:
        bar = close(lines[done : min(limit, done + step)])
        if not bar.all():
            return done + int(bar.argmin())
        done, step = done + len(bar), step * 2
    return limit


def trim(rgb: np.ndarray, box: Box, rows: bool) -> Box:
    """`box` with the bars above and below it (`rows`) or left and right of it cut off,
    looking only at the pixels inside `box`."""
    left, top, right, bottom = box
    inside = rgb[top:bottom, left:right]
    if rows:
        return left, top + _bar_lines(inside), right, bottom - _bar_lines(inside[::-1])
    across = inside.transpose(1, 0, 2)
    return left + _bar_lines(across), top, right - _bar_lines(across[::-1]), bottom


def _kept(rgb: np.ndarray, box: Box) -> Box:
    """`box` without cuts too small to be bars, and the whole image when what is left is
    too small to be a photo (a flat image)."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = box
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


def content_box(rgb: np.ndarray) -> Box:
    """The box of `rgb` (height, width, 3) left after cutting uniform bars on each side,
    every side judged over the whole image; the whole image when there are none."""
    height, width = rgb.shape[:2]
    whole: Box = (0, 0, width, height)
    _, top, _, bottom = trim(rgb, whole, rows=True)
    left, _, right, _ = trim(rgb, whole, rows=False)
    return _kept(rgb, (left, top, right, bottom))


def _nested_box(rgb: np.ndarray) -> Box:
    height, width = rgb.shape[:2]
    box: Box = (0, 0, width, height)
    for rows in (True, False, True):
        box = trim(rgb, box, rows)
    return _kept(rgb, box)


def content_boxes(rgb: np.ndarray) -> list[Box]:
    """The readings of where the photo inside bars is, most likely first: every side
    judged over the whole image (`content_box`), and rows and columns cut in turn, each
    looking only at what the other left (rows, columns, rows again). They differ when a
    photo's own margin is close to the bars' colour: a dark-edged photo in black bars is
    cut at its own dark edge only by the second, which is how it is cut without bars."""
    first = content_box(rgb)
    nested = _nested_box(rgb)
    return [first] if nested == first else [first, nested]


def has_bars(box: Box, width: int, height: int) -> bool:
    return box != (0, 0, width, height)
