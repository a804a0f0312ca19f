"""Put a panel's sides exactly on the upload's edges: panels are found on a copy of at most
512 pixels (service.media.panels), where a side can fall a pixel or two off the photo's
edge, and PDQ moves 10-30 bits per 1 % of a side cut or added (docs/QUALITY.md,
"Rotations, off-centre crops and panels"). Each side is moved, within a few pixels of the
decoded upload, to the row (column) across which the upload changes most along that side.
Pure numpy over narrow bands of the upload; no image leaves the function.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.media.borders import Box

INSET = 0.1  # each end of a side left out of its profile (corners, a neighbouring edge)


def _step_profile(band: np.ndarray) -> np.ndarray:
    """(rows - 1,): how much band (rows, length, 3) changes between consecutive rows,
    summed over the channels and averaged along the rows."""
    values = band.astype(np.int16)
    return np.asarray(np.abs(values[1:] - values[:-1]).sum(axis=2).mean(axis=1))


def _snap_line(rgb: np.ndarray, line: int, lo: int, hi: int, reach: int) -> int:
    """Where between rows of `rgb` (h, w, 3) the strongest step within `reach` of `line`
    is, judged between columns lo and hi; `line` itself when it is an edge of `rgb`."""
    height = rgb.shape[0]
    if line <= 0 or line >= height:
        return line
    inset = round((hi - lo) * INSET)
    lo, hi = lo + inset, hi - inset
    first, last = max(0, line - reach - 1), min(height, line + reach + 1)
    if hi - lo < 4 or last - first < 3:
        return line
    profile = _step_profile(rgb[first:last, lo:hi])
    return first + 1 + int(profile.argmax())


def snapped(image: Image.Image, box: Box, reach: int) -> Box:
    """`box` (in `image`'s pixels) with each side inside the upload moved by at most
    `reach` pixels to where the upload changes most along it."""
    left, top, right, bottom = box
    width, height = image.size
    lo_x, hi_x = max(0, left - reach - 1), min(width, right + reach + 1)
    lo_y, hi_y = max(0, top - reach - 1), min(height, bottom + reach + 1)
    region = np.asarray(image.crop((lo_x, lo_y, hi_x, hi_y)).convert("RGB"))
    flipped = region.transpose(1, 0, 2)
    new_top = _snap_line(region, top - lo_y, left - lo_x, right - lo_x, reach) + lo_y
    new_bottom = _snap_line(region, bottom - lo_y, left - lo_x, right - lo_x, reach) + lo_y
    new_left = _snap_line(flipped, left - lo_x, top - lo_y, bottom - lo_y, reach) + lo_x
    new_right = _snap_line(flipped, right - lo_x, top - lo_y, bottom - lo_y, reach) + lo_x
    if new_right - new_left < 16 or new_bottom - new_top < 16:
        return box
    return new_left, new_top, new_right, new_bottom
