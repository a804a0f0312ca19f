"""The edits that keep only part of the upload for the photo (issue 18): off-centre crops,
small rotations, collages, phone screenshots and a photo pasted on a busy background.

Like loadtests/transforms.py each one maps the photo to the bytes a re-uploader sends.
Collages and pastes need other pictures around the photo: they come from `FILLERS`,
rendered wallpapers from Debian packages that are never listed (so a match on them
could only be a false one), chosen per photo by its name, the same in every run.
When their packages are missing, generated textures stand in (the script says so).

    apt-get install plasma-workspace-wallpapers ukui-wallpapers
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from loadtests.transforms import Transform, encode, off_centre_crop

# Rendered (not photographed) wallpapers: busy, colourful, never listed anywhere.
_FILLER_GLOBS = (
    "/usr/share/wallpapers/{Canopee,Cascade,Cluster,Elarun,Honeywave,IceCold,Kokkini,Opal,"
    "PastelHills,Patak,Altai,Flow,FlyingKonqui,Kay,MilkyWay,SafeLanding,Shell}",
    "/usr/share/backgrounds/{calla,city,desert,goldfish,rhythm,string,fluent-color,"
    "focal-ubuntukylin,rollpaper,the-mouse,firstgeneration}.*",
)
FILLER_SIDE = 1280


def _expand(pattern: str) -> list[str]:
    head, _, rest = pattern.partition("{")
    names, _, tail = rest.partition("}")
    return [head + n + tail for n in names.split(",")]


@functools.cache
def fillers() -> tuple[Image.Image, ...]:
    """The unrelated pictures collages and pastes are made of (RGB, long side 1280)."""
    found: list[Image.Image] = []
    for pattern in _FILLER_GLOBS:
        for path in _expand(pattern):
            files = sorted(glob.glob(path) + glob.glob(f"{path}/contents/images/*.*"))
            files = [f for f in files if os.path.isfile(f) and not f.endswith(".svg")]
            if not files:
                continue
            smallest = min(files, key=os.path.getsize)
            with Image.open(smallest) as image:
                rgb = image.convert("RGB")
            rgb.thumbnail((FILLER_SIDE, FILLER_SIDE), Image.Resampling.LANCZOS)
            found.append(rgb)
    if len(found) >= 8:
        return tuple(found)
    return tuple(_generated(seed) for seed in range(12))


def _generated(seed: int) -> Image.Image:
    """A smooth random colour field with stripes: stands in when no filler is installed."""
    rng = np.random.default_rng(100 + seed)
    small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    field = Image.fromarray(small).resize((1280, 960), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(field)
    for _ in range(12):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, 1280, 4))
        draw.line((x0, y0 * 0.75, x1, y1 * 0.75), fill=tuple(rng.integers(0, 256, 3)), width=9)
    return field


def _filler(image: Image.Image, k: int) -> Image.Image:
    """The k-th filler for this photo (chosen by a digest of its pixels, the same each run)."""
    digest = hashlib.sha256(image.resize((16, 16)).tobytes()).digest()
    pool = fillers()
    return pool[(digest[0] + 7 * k) % len(pool)]


def rotate(degrees: float, fill: tuple[int, int, int], image: Image.Image) -> Image.Image:
    """Turned by `degrees` (counter-clockwise), the canvas grown to hold it, corners filled."""
    return image.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=fill)


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def collage(
    n: int, position: int, gutter: int, image: Image.Image, fit: bool = True
) -> Image.Image:
    """An n x n grid of square cells on a 1080 px canvas with the photo in cell `position`
    and unrelated pictures in the others. `fit`: each picture scaled into its cell
    (aspect kept, centred on the gutter colour); else stretched to fill it (tiles touch
    when `gutter` is 0: hard edges only)."""
    side = 1080
    cell = (side - gutter * (n + 1)) // n
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    for k in range(n * n):
        picture = image if k == position else _filler(image, k)
        tile = _fit(picture, cell, cell) if fit else picture.resize((cell, cell))
        x = gutter + (k % n) * (cell + gutter) + (cell - tile.width) // 2
        y = gutter + (k // n) * (cell + gutter) + (cell - tile.height) // 2
        canvas.paste(tile, (x, y))
    return canvas


def phone_screenshot(image: Image.Image) -> Image.Image:
    """A 1080 x 2340 phone screenshot of a social post: a dark status bar with the time and
    a battery, a header (round avatar, user name), the photo between white margins, a
    like bar and three caption lines below it."""
    width, height, margin = 1080, 2340, 40
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=38)
    draw.rectangle((0, 0, width, 90), fill=(18, 18, 18))
    draw.text((40, 22), "9:41", font=font, fill=(255, 255, 255))
    draw.rectangle((940, 30, 1020, 62), outline=(255, 255, 255), width=4)
    draw.rectangle((946, 36, 1000, 56), fill=(255, 255, 255))
    draw.ellipse((margin, 130, margin + 100, 230), fill=(200, 120, 60))
    draw.text((170, 158), "someone_posting", font=font, fill=(20, 20, 20))
    photo = _fit(image, width - 2 * margin, 1500)
    top = 270
    canvas.paste(photo, ((width - photo.width) // 2, top))
    y = top + photo.height + 30
    for x in (margin, margin + 90, margin + 180):
        draw.ellipse((x, y, x + 60, y + 60), outline=(20, 20, 20), width=5)
    lines = ("412 likes", "someone_posting look who I found here", "View all 38 comments")
    for k, text in enumerate(lines):
        draw.text((margin, y + 90 + 56 * k), text, font=font, fill=(20, 20, 20))
    return canvas


def pasted(scale_of_width: float, image: Image.Image) -> Image.Image:
    """The photo scaled to `scale_of_width` of an unrelated busy picture's width and pasted
    on it, off centre (30 % from the left and 70 % from the top of the room left)."""
    background = _filler(image, 1).copy()
    photo = _fit(image, round(background.width * scale_of_width), background.height)
    x = round((background.width - photo.width) * 0.3)
    y = round((background.height - photo.height) * 0.7)
    background.paste(photo, (x, y))
    return background


def _png(edit: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image], bytes]:
    return lambda image: encode(edit(image))


def _jpeg(edit: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image], bytes]:
    return lambda image: encode(edit(image), "JPEG", quality=85)


def _keep(fraction: float, x: float, y: float) -> Callable[[Image.Image], Image.Image]:
    """Keep `fraction` of each side, placed at (x, y) in the room left (0 = left/top)."""
    cut = 1 - fraction
    return lambda im: off_centre_crop(cut * x, cut * y, cut * (1 - x), cut * (1 - y), im)


BLACK, WHITE = (0, 0, 0), (255, 255, 255)
PARTIAL: tuple[Transform, ...] = (
    Transform("keep 85% corner", "off-centre", _png(_keep(0.85, 1.0, 1.0))),
    Transform("keep 85% side", "off-centre", _png(_keep(0.85, 0.0, 0.5))),
    Transform("keep 85% between", "off-centre", _png(_keep(0.85, 0.25, 0.75))),
    Transform("keep 70% corner", "off-centre", _png(_keep(0.70, 0.0, 0.0))),
    Transform("keep 70% side", "off-centre", _png(_keep(0.70, 0.5, 1.0))),
    Transform("keep 70% between", "off-centre", _png(_keep(0.70, 0.75, 0.25))),
    Transform("rotate 3°", "rotation", _png(lambda im: rotate(3, BLACK, im))),
    Transform("rotate -5°", "rotation", _png(lambda im: rotate(-5, BLACK, im))),
    Transform("rotate 10°", "rotation", _png(lambda im: rotate(10, BLACK, im))),
    Transform("rotate 5° white jpeg", "rotation", _jpeg(lambda im: rotate(5, WHITE, im))),
    Transform("collage 2x2", "panel", _jpeg(lambda im: collage(2, 1, 12, im))),
    Transform("collage 3x3", "panel", _jpeg(lambda im: collage(3, 5, 0, im, fit=False))),
    Transform("phone screenshot", "panel", _jpeg(phone_screenshot)),
    Transform("pasted half size", "panel", _jpeg(lambda im: pasted(0.5, im))),
)
