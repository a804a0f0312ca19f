"""Find solid boxes pasted over a photo (a site's logo, a sticker, a censor bar) and paint
them over with their surroundings, so PDQ sees roughly the photo underneath.

A solid box covering 3 % of a photo moves its PDQ by 20-70 bits; filling it by
interpolating the pixels around it brings the hash back within a few bits on most photos
(docs/QUALITY.md). Used on the check path only, as an extra candidate: the victim's list
holds the photo's own hashes. Pure numpy/scipy over an RGB array.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from service.media.borders import Box

# Neighbouring pixels of a pasted box differ by at most this per channel (lossless or
# good JPEG); natural flat areas (sky) rarely form a filled rectangle this even.
FLAT_STEP = 4
MIN_AREA, MAX_AREA = 0.005, 0.12  # share of the image a box may cover
MIN_FILL = 0.9  # share of its bounding rectangle the flat region must fill
# A pasted box is one colour: 90 % of its pixels lie within this many levels per channel
# (5th to 95th percentile), also after JPEG at quality 50 (at most 8 on the tune photos).
# Most of a photo's own flat regions that pass the step test are gradients (shaded walls:
# 9-23 levels) and are left alone; some pass (brick mortar: 5-12), which is why the check
# path also hashes its strips as sent (service.media.crops).
MAX_SPREAD = 8
PAD = 2  # pixels around the box also repainted (anti-aliased or JPEG-blurred edge)


def solid_boxes(rgb: np.ndarray) -> list[Box]:
    """Bounding boxes of flat, nearly rectangular regions of `rgb` (height, width, 3)."""
    pixels = rgb.astype(np.int16)
    flat = np.ones(rgb.shape[:2], dtype=bool)
    flat[:, 1:] &= np.abs(pixels[:, 1:] - pixels[:, :-1]).max(axis=-1) <= FLAT_STEP
    flat[1:, :] &= np.abs(pixels[1:] - pixels[:-1]).max(axis=-1) <= FLAT_STEP
    labels = ndimage.label(flat)[0]
    height, width = rgb.shape[:2]
    boxes = []
    for label, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        rows, cols = found
        area = (rows.stop - rows.start) * (cols.stop - cols.start)
        if not MIN_AREA * height * width <= area <= MAX_AREA * height * width:
            continue
        inside = labels[found] == label
        if inside.sum() < MIN_FILL * area:
            continue
        low, high = np.percentile(rgb[found][inside], [5, 95], axis=0)
        if (high - low).max() <= MAX_SPREAD:
            boxes.append((cols.start, rows.start, cols.stop, rows.stop))
    return boxes


def fill_boxes(rgb: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """A copy of `rgb` with each box replaced by the mean of a horizontal and a vertical
    linear interpolation between the pixels just outside it (one side when it touches
    the edge)."""
    out = rgb.astype(np.float32)
    height, width = out.shape[:2]
    for left, top, right, bottom in boxes:
        x0, y0 = max(0, left - PAD), max(0, top - PAD)
        x1, y1 = min(width, right + PAD), min(height, bottom + PAD)
        guesses = []
        if x0 > 0 or x1 < width:
            before = out[y0:y1, x0 - 1] if x0 > 0 else out[y0:y1, x1]
            after = out[y0:y1, x1] if x1 < width else out[y0:y1, x0 - 1]
            t = (np.arange(x1 - x0) + 1) / (x1 - x0 + 1)
            guesses.append(
                before[:, None] * (1 - t)[None, :, None] + after[:, None] * t[None, :, None]
            )
        if y0 > 0 or y1 < height:
            before = out[y0 - 1, x0:x1] if y0 > 0 else out[y1, x0:x1]
            after = out[y1, x0:x1] if y1 < height else out[y0 - 1, x0:x1]
            t = (np.arange(y1 - y0) + 1) / (y1 - y0 + 1)
            guesses.append(before[None] * (1 - t)[:, None, None] + after[None] * t[:, None, None])
        if guesses:
            out[y0:y1, x0:x1] = sum(guesses) / len(guesses)
    return np.clip(out.round(), 0, 255).astype(np.uint8)
