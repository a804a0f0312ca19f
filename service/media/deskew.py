"""Undo a small rotation: the photo inside an upload that was turned by a few degrees and
saved on a grown canvas, its corners filled with one colour (what image editors and phone
apps do when they rotate with "expand").

PDQ moves by 30-40 bits per degree of rotation (docs/QUALITY.md, "Rotations, off-centre
crops and panels"), so a photo turned by 3° is already out of reach, while the angle can be
read off the upload itself: each filled corner is a right triangle whose legs give the
tangent of the angle, to a small fraction of a degree. The check path turns the upload back
by that angle and cuts out the rectangle the photo had (`deskewed`), one extra candidate
part; an upload without four uniform corners costs a few pixel reads and adds nothing.
Pure numpy and Pillow over the decoded upload; no image leaves the function.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

# A pixel belongs to the fill when every channel is within this many levels of the
# corners' colour (JPEG at quality 75-85 keeps a flat fill within about 10 levels).
TOLERANCE = 24
# Angles outside this range are not deskewed: below it the whole upload is already close
# to the photo (PDQ moves about 30 bits per degree), above it the corners are no longer
# thin triangles and the upload is more likely a framed picture than a tilted one.
MIN_DEGREES, MAX_DEGREES = 0.7, 15.0
# At least MIN_CORNERS corners' angles must agree within AGREEMENT degrees (a real
# rotation gives the same triangle four times; a photo's own dark corner does not).
AGREEMENT = 0.6
MIN_CORNERS = 2


def _depths(off: np.ndarray) -> np.ndarray:
    """For each line of `off` (n, length: True where a pixel is not fill), how many
    leading pixels are fill: the first 3 non-fill pixels in a row end the run (a stray
    JPEG pixel does not)."""
    stop = off[:, :-2] & off[:, 1:-1] & off[:, 2:]
    found = stop.any(axis=1)
    return np.asarray(np.where(found, stop.argmax(axis=1), off.shape[1]))


def _legs(depth: np.ndarray) -> tuple[float, float] | None:
    """The legs (along the lines, across them) of the fill triangle whose depth profile is
    `depth` (line by line from the corner), from a straight-line fit over the lines it
    spans: the corner line itself is left out (the photo's extreme corner touches it in
    one blended pixel, so it reads as all fill)."""
    length = int(depth.max(initial=0))
    inside = np.flatnonzero(depth <= 1)
    contact = int(inside[0]) if inside.size else len(depth)
    if contact < 8 or contact >= len(depth) - 1:
        return None
    lo, hi = max(1, contact // 10), max(2, contact - contact // 10)
    x = np.arange(lo, hi)
    slope, intercept = np.polyfit(x, depth[lo:hi].astype(float), 1)
    if slope >= 0 or intercept <= 0 or length < 2:
        return None
    return float(intercept), float(intercept / -slope)


def rotation_angle(rgb: np.ndarray) -> float | None:
    """The angle in degrees (counter-clockwise, as PIL's rotate) an upload (h, w, 3) was
    turned by, read from its four filled corners; None when its corners are not the
    filled triangles of a small rotation."""
    height, width = rgb.shape[:2]
    if height < 32 or width < 32:
        return None
    corners = np.array([rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]], dtype=np.int16)
    colour = np.median(corners, axis=0)
    if np.abs(corners - colour).max() > TOLERANCE:
        return None
    off = np.abs(rgb.astype(np.int16) - colour.astype(np.int16)).max(axis=-1) > TOLERANCE
    half_h, half_w = height // 2, width // 2
    # Each corner's triangle seen line by line from that corner, along rows (depth in x)
    # and along columns (depth in y); the view that crosses more lines is fitted.
    views = {
        "top-left": (off[:half_h], off[:, :half_w].T),
        "top-right": (off[:half_h, ::-1], off[:, ::-1][:, :half_w].T),
        "bottom-left": (off[::-1][:half_h], off[::-1, :half_w].T),
        "bottom-right": (off[::-1, ::-1][:half_h], off[::-1, ::-1][:, :half_w].T),
    }
    # Turned counter-clockwise, the top-left and bottom-right triangles lie along the
    # horizontal edges (long horizontal leg) and the other two along the vertical ones.
    signs = {"top-left": 1, "top-right": -1, "bottom-left": -1, "bottom-right": 1}
    angles = []
    for corner, (rows, columns) in views.items():
        by_rows, by_columns = _legs(_depths(rows)), _legs(_depths(columns))
        if by_rows is not None and (by_columns is None or by_rows[1] >= by_columns[1]):
            along_x, along_y = by_rows
        elif by_columns is not None:
            along_y, along_x = by_columns
        else:
            continue
        sign = signs[corner]
        if along_x >= along_y:
            angles.append(sign * math.degrees(math.atan2(along_y, along_x)))
        else:
            angles.append(-sign * math.degrees(math.atan2(along_x, along_y)))
    # A photo's own dark (or white) corner blends into a fill of its colour and bends
    # that corner's triangle; the corners that agree with each other are the rotation's.
    agreeing = max(
        ([a for a in angles if abs(a - centre) <= AGREEMENT] for centre in angles),
        key=len,
        default=[],
    )
    if len(agreeing) < MIN_CORNERS:
        return None
    angle = float(np.median(agreeing))
    return angle if MIN_DEGREES <= abs(angle) <= MAX_DEGREES else None


def deskewed(image: Image.Image, degrees: float) -> Image.Image:
    """`image` turned back by `degrees` and cut to the rectangle the photo had before it
    was turned onto a grown canvas (its size solved from the canvas size and the angle)."""
    width, height = image.size
    c, s = math.cos(math.radians(abs(degrees))), math.sin(math.radians(abs(degrees)))
    det = c * c - s * s
    w, h = (width * c - height * s) / det, (height * c - width * s) / det
    turned = image.rotate(-degrees, Image.Resampling.BILINEAR)
    left, top = (width - w) / 2, (height - h) / 2
    return turned.crop((round(left), round(top), round(left + w), round(top + h)))
