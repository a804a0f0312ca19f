"""The parts of an upload that show only a region of it, or show it turned: each photo found
inside the upload (service.media.panels) and the upload turned back by the small angle its
filled corners give (service.media.deskew), hashed with PDQ for the sub-window entries.

Matches through these parts are partial (MatchPart.PANEL, MatchPart.ROTATED): they ask for
REVIEW and never vet or block a whole picture alone (docs/SECURITY.md), and each says where
in the upload it was, so a moderator sees which tile or region matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

from service.domain import MatchPart
from service.media.borders import MIN_CONTENT, Box, trim
from service.media.deskew import deskewed, rotation_angle
from service.media.hashes import pack_bits
from service.media.panels import panel_boxes
from service.media.snap import snapped

# Each panel is hashed from a copy at most this many pixels on its long side. PDQ reduces
# every picture to 64 x 64 first, so this moves a panel's hash by a few bits at most and
# costs about a quarter of hashing at 512 (docs/BENCHMARKS.md, "Partial matching's cost").
PANEL_SIDE = 256


@dataclass(frozen=True, slots=True)
class RegionQuery:
    value: bytes  # PDQ of the part
    part: MatchPart
    region: str  # where in the upload, in words a moderator reads


def _pdq(image: Image.Image, side: int) -> tuple[bytes, int]:
    if max(image.size) > side:
        image = image.copy()
        image.thumbnail((side, side), Image.Resampling.BILINEAR)
    bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(image)))
    return pack_bits(bits), int(quality)


def _trimmed(small: np.ndarray, box: Box) -> Box:
    """`box` without the uniform bars inside it (a gutter's sliver, the white around a
    photo fitted into a collage cell), as service.media.borders cuts them but however
    thin: a 5-pixel sliver of gutter on a 250-pixel tile moves PDQ by 30 bits or more."""
    left, top, right, bottom = box
    cell = small[top:bottom, left:right]
    height, width = cell.shape[:2]
    x0, y0, x1, y1 = trim(cell, trim(cell, (0, 0, width, height), rows=True), rows=False)
    if y1 - y0 < MIN_CONTENT * height or x1 - x0 < MIN_CONTENT * width:
        return box
    return left + x0, top + y0, left + x1, top + y1


def _scaled(box: Box, scale: float) -> Box:
    left, top, right, bottom = box
    return round(left * scale), round(top * scale), round(right * scale), round(bottom * scale)


def describe(box: Box, width: int, height: int) -> str:
    """A box as shares of the upload's sides: "x 52-98 %, y 0-48 %"."""
    left, top, right, bottom = box
    return (
        f"x {round(100 * left / width)}-{round(100 * right / width)} %, "
        f"y {round(100 * top / height)}-{round(100 * bottom / height)} %"
    )


def region_queries(
    image: Image.Image, small: np.ndarray, min_quality: int, hash_side: int
) -> list[RegionQuery]:
    """PDQ of the upload turned back (when its corners show a small rotation) and of each
    panel found in it. `image` is the decoded upload, `small` its copy at `hash_side`
    (where the geometry is found); the parts are cut out of `image`. Parts too flat for
    PDQ (below `min_quality`) are left out."""
    height, width = small.shape[:2]
    found: list[RegionQuery] = []
    angle = rotation_angle(small)
    if angle is not None:
        value, quality = _pdq(deskewed(image, angle), hash_side)
        if quality >= min_quality:
            found.append(RegionQuery(value, MatchPart.ROTATED, f"turned back {angle:+.1f}°"))
    scale = image.width / width
    # each panel as found and without the uniform bars inside it (a gutter's sliver, the
    # white around a photo fitted into a cell), when they differ: a photo with its own
    # flat margin is cut by its victim's windows one way or the other. Cuts that snap
    # onto the same box of the upload are hashed once.
    reach = max(2, round(2 * scale))
    cuts: dict[Box, Box] = {}
    for box in panel_boxes(small):
        for cut in (box, _trimmed(small, box)):
            cuts.setdefault(snapped(image, _scaled(cut, scale), reach), cut)
    for full, cut in cuts.items():
        value, quality = _pdq(image.crop(full), PANEL_SIDE)
        if quality >= min_quality:
            found.append(RegionQuery(value, MatchPart.PANEL, describe(cut, width, height)))
    return found
