"""Hashes that survive crops, frames and captions: sub-window hashes on the victim's side
and candidate parts of an upload on the check side (docs/QUALITY.md, "Crops, borders and
captions").

PDQ hashes the whole picture, so cutting 5 % off each side of a photo moves its PDQ by
40-60 bits and a letterbox moves it by more than 100. Two remedies, both pure functions
over PIL images:

- `window_hashes` (victim side, in `hashguard hash`): the PDQ of each of a fixed set of
  sub-windows of the photo (centred and shifted crops at a few scales). A cropped
  re-upload is close to the window it resembles. The image stays on the victim's machine;
  only these hashes are submitted, as `pdq-window` entries of the same case.
- `candidate_queries` (check side): the PDQ of the upload with its uniform bars cut off
  (service.media.borders) and solid boxes painted over (service.media.overlays), and of its top and
  bottom strips (where captions sit), matched against the window entries (which include
  the whole photo) together with the upload's own 8 dihedral PDQ hashes; and the pHash
  of the parts that stand for the whole photo (inside its bars, boxes painted over),
  matched against the listed pHash, which a photo too flat for a listed PDQ still has.

Both hash a copy scaled to at most HASH_SIDE pixels: PDQ reduces every image to 64x64
anyway, and at that size a window costs a few milliseconds instead of tens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pdqhash
from PIL import Image

from service.domain import HashValue, MatchPart
from service.media.borders import Box, content_boxes, has_bars
from service.media.hashes import pack_bits, phash_bytes
from service.media.overlays import fill_boxes, solid_boxes
from service.media.regions import region_queries
from service.signals.pdq_window import PDQ_WINDOW

HASH_SIDE = 512


@dataclass(frozen=True, slots=True)
class Window:
    """A sub-window as fractions of the photo: its width and height, and where it sits in
    the slack left around it (0 = against the left/top edge, 0.5 = centred, 1 = right/bottom)."""

    width: float
    height: float
    x: float = 0.5
    y: float = 0.5

    def box(self, width: int, height: int) -> Box:
        w, h = round(width * self.width), round(height * self.height)
        left, top = round((width - w) * self.x), round((height - h) * self.y)
        return left, top, left + w, top + h


def _grid(scale: float, anchors: Sequence[tuple[float, float]]) -> list[Window]:
    return [Window(scale, scale, x, y) for x, y in anchors]


_CENTRE = [(0.5, 0.5)]
_CORNERS = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]
_SIDES = [(0.0, 0.5), (1.0, 0.5), (0.5, 0.0), (0.5, 1.0)]
# The check path also hashes the top and the bottom STRIP of an upload (a caption or a
# banner usually sits at one of them); the windows below include those strips of the
# photo, and the same windows catch crops taken from one side.
STRIP = 0.7
# Chosen on the quality benchmark's tune photos (docs/QUALITY.md): centred windows every
# 5 % of the side catch centred crops up to 25 %, corner and side windows catch crops
# taken more from one side. Issue 18 added the corner and side windows at 85 % and the
# centre, corner and side windows at 70 %: a crop keeping 85 % or 70 % of each side taken
# from a corner or a side is then a listed window itself ("Rotations, off-centre crops
# and panels" in docs/QUALITY.md; crops between these positions still miss).
DEFAULT_WINDOWS: tuple[Window, ...] = tuple(
    _grid(1.0, _CENTRE)  # the whole photo: what a letterboxed or stamped upload is near
    + _grid(0.95, _CENTRE)
    + _grid(0.9, _CENTRE + _CORNERS)
    + _grid(0.85, _CENTRE)
    + _grid(0.8, _CENTRE + _CORNERS + _SIDES)
    + _grid(0.75, _CENTRE)
    + [Window(1.0, STRIP, 0.5, 0.0), Window(1.0, STRIP, 0.5, 1.0)]
    + [Window(1.0, 0.8, 0.5, 0.0), Window(1.0, 0.8, 0.5, 1.0)]
    + [Window(0.8, 1.0, 0.0, 0.5), Window(0.8, 1.0, 1.0, 0.5)]
    + _grid(0.85, _CORNERS + _SIDES)  # issue 18: off-centre crops to 85 % and 70 %
    + _grid(0.7, _CENTRE + _CORNERS + _SIDES)
)
# The windows issue 18 added (the last 17 above); the quality benchmark lists a photo
# with and without them to measure what they bring.
OFF_CENTRE_WINDOWS: tuple[Window, ...] = DEFAULT_WINDOWS[-17:]
# The parts of an upload hashed on the check path besides the whole (and besides the
# photo inside a frame): its top and bottom strips.
CHECK_STRIPS: tuple[Window, ...] = (Window(1.0, STRIP, 0.5, 0.0), Window(1.0, STRIP, 0.5, 1.0))


def reduced(image: Image.Image, side: int = HASH_SIDE) -> Image.Image:
    """A copy whose long side is at most `side` (the image itself when already smaller)."""
    if max(image.size) <= side:
        return image
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.BILINEAR)
    return copy


def _pdq(pixels: np.ndarray) -> tuple[bytes, int]:
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return pack_bits(bits), int(quality)


def window_hashes(
    image: Image.Image, min_quality: int, windows: Sequence[Window] = DEFAULT_WINDOWS
) -> list[HashValue]:
    """PDQ of each sub-window of the photo (and of the photo inside its frame, when it has
    one), skipping windows too flat for PDQ to be trusted (below `min_quality`).
    Duplicates (tiny images) are dropped."""
    rgb = np.asarray(reduced(image.convert("RGB")))
    height, width = rgb.shape[:2]
    boxes = [w.box(width, height) for w in windows]
    boxes[:0] = [b for b in content_boxes(rgb) if has_bars(b, width, height)]
    found: dict[bytes, HashValue] = {}
    for left, top, right, bottom in boxes:
        if right - left < 16 or bottom - top < 16:
            continue
        value, quality = _pdq(rgb[top:bottom, left:right])
        if quality >= min_quality:
            found.setdefault(value, HashValue(PDQ_WINDOW, value, quality))
    return list(found.values())


def _strips(rgb: np.ndarray) -> list[np.ndarray]:
    return [
        rgb[y0:y1, x0:x1]
        for x0, y0, x1, y1 in (s.box(rgb.shape[1], rgb.shape[0]) for s in CHECK_STRIPS)
    ]


@dataclass(frozen=True, slots=True)
class Candidates:
    """An upload's candidate parts as queries: `pdq` for the window entries (whole-photo
    parts and strips), `phash` for the pHash entries (whole-photo parts only).
    `parts[i]` says which part `pdq[i]` was computed from (MatchPart.INNER for the
    whole-photo parts, STRIP for strips), which decides what a match on it may vet."""

    pdq: list[bytes]
    phash: list[bytes]
    parts: list[MatchPart] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)  # where each part is ("" for most)

    def pdq_parts(self) -> list[tuple[bytes, MatchPart]]:
        return list(zip(self.pdq, self.parts, strict=True))

    def pdq_queries(self) -> list[tuple[bytes, MatchPart, str]]:
        """(PDQ, part, region) of each part."""
        regions = self.regions or [""] * len(self.pdq)
        return list(zip(self.pdq, self.parts, regions, strict=True))


def candidate_queries(image: Image.Image, min_quality: int, regions: bool = False) -> Candidates:
    """The PDQ of each candidate part of an upload, upright only (a rotated copy that is
    also cropped is left to the whole upload's dihedral variants); parts too flat for PDQ
    (below `min_quality`) are left out. They are matched against the window entries,
    which include each whole photo.

    The parts, when the upload has uniform bars: the photo inside them, for each reading
    of where they end (service.media.borders.content_boxes, found at HASH_SIDE like the
    victim's windows), cut out of the decoded pixels and then scaled to HASH_SIDE, so a
    photo pasted into bars at its own size is hashed at the scale its victim hashed it;
    and the top and bottom strips of the whole upload with its solid boxes painted over
    (a caption or logo reaching into a photo's dark margin moves where bars seem to end).
    Always: the photo inside its bars with solid boxes painted over (when it has any),
    and its top and bottom strips, with boxes painted and, when there were any, also as
    sent (a photo's own flat regions can pass for boxes: brick mortar, a shaded wall).

    The whole-photo parts (each reading of the bars, the photo inside them with its boxes
    painted over and, when there are bars and boxes, the whole upload with its boxes
    painted over, in case the "bars" are the photo's own dark margin) also get a pHash,
    computed as for a whole upload (service.media.hashes.phash_bytes) on the part scaled to
    HASH_SIDE, whatever their PDQ quality: pHash has no quality floor, so a photo too flat
    for its PDQ to be listed is still found through its listed pHash. Strips never do: a
    strip's pHash against a whole photo's is not a like-for-like comparison."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small = np.asarray(reduced(rgb))
    height, width = small.shape[:2]
    framed = [b for b in content_boxes(small) if has_bars(b, width, height)]
    scale = rgb.width / width
    cut = [np.asarray(reduced(rgb.crop(_scaled(b, scale)))) for b in framed]
    photo = cut[0] if cut else small
    boxes = solid_boxes(photo)
    painted = fill_boxes(photo, boxes) if boxes else photo
    wholes = cut + ([painted] if boxes else [])
    pdq_wholes = list(wholes)  # the upload with boxes painted, added below, gets a pHash only
    strips = _strips(painted)
    if boxes:  # the boxes may be the photo's own flat parts (brick mortar): strips as sent too
        strips += _strips(photo)
    if framed:
        moved = _moved(boxes, framed[0], photo.shape[1], photo.shape[0])
        upload_painted = fill_boxes(small, moved) if moved else small
        strips += _strips(upload_painted)
        if moved:  # the "bars" may be the photo's own dark margin: the upload, boxes painted
            wholes.append(upload_painted)
    queries, kinds = [], []
    labelled = [(w, MatchPart.INNER) for w in pdq_wholes] + [(s, MatchPart.STRIP) for s in strips]
    for part, kind in labelled:
        if part.shape[0] >= 16 and part.shape[1] >= 16:
            value, quality = _pdq(part)
            if quality >= min_quality:
                queries.append(value)
                kinds.append(kind)
    phashes = {phash_bytes(Image.fromarray(w)): None for w in wholes if min(w.shape[:2]) >= 16}
    where = [""] * len(queries)
    if regions:  # issue 18: photos inside the upload, and the upload turned back
        for found in region_queries(rgb, small, min_quality, HASH_SIDE):
            queries.append(found.value)
            kinds.append(found.part)
            where.append(found.region)
    return Candidates(queries, list(phashes), kinds, where)


def _scaled(box: Box, scale: float) -> Box:
    left, top, right, bottom = box
    return round(left * scale), round(top * scale), round(right * scale), round(bottom * scale)


def _moved(boxes: list[Box], frame: Box, width: int, height: int) -> list[Box]:
    """`boxes` found in the photo cut out of `frame` and scaled to `width` x `height`,
    in the coordinates of the scaled upload `frame` is in (found once, painted twice)."""
    left, top, right, bottom = frame
    sx, sy = (right - left) / width, (bottom - top) / height
    return [
        (
            left + math.floor(x0 * sx),
            top + math.floor(y0 * sy),
            left + math.ceil(x1 * sx),
            top + math.ceil(y1 * sy),
        )
        for x0, y0, x1, y1 in boxes
    ]
