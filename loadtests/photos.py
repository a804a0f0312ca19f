"""Where the detection-quality benchmark's photos come from: a registry of named sources.

Every photo is a distinct natural photo shipped inside an installable package, never
crops of one larger photo. Each has a fixed split: `tune` photos are the ones thresholds
are chosen on, `holdout` photos are only ever measured, so a later change can be checked
on photos nobody tuned on. Add a source by appending `Photo` rows to `REGISTRY`.

Sources and how to install them:
- scikit-image (`skimage.data`, in the `test` extra) and PyWavelets (`pywt.data`, a
  dependency of imagehash): always present.
- matplotlib's sample data (`grace_hopper.jpg`, in the `bench` extra).
- Debian wallpaper packages, read from /usr/share/backgrounds:
  `apt-get install mate-backgrounds lomiri-wallpapers-16.04`. Only their photographs
  are listed (not the drawn or rendered wallpapers).

`--photos DIR` replaces the registry with every image in a folder the user brings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

Split = Literal["tune", "holdout", "fresh"]
# Large wallpapers are scaled so their long side is at most this, like a typical upload
# (about 1-2 megapixels); hashing 12-megapixel originals would only make the run slower.
DEFAULT_MAX_SIDE = 1280
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


@dataclass(frozen=True, slots=True)
class Photo:
    """One registered photo: a stable name, where it comes from, and its split."""

    name: str
    source: str  # the package that ships it
    split: Split
    load: Callable[[], Image.Image]


@dataclass(frozen=True, slots=True)
class LoadedPhoto:
    name: str
    source: str
    split: Split
    image: Image.Image  # RGB, long side at most max_side


def _skimage(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        import skimage.data

        return _to_image(getattr(skimage.data, name)())

    return load


def _pywt(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        import pywt.data  # type: ignore[import-untyped]

        return _to_image(getattr(pywt.data, name)())

    return load


def _matplotlib(filename: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        import matplotlib.cbook

        path = matplotlib.cbook.get_sample_data(filename, asfileobj=False)
        with Image.open(str(path)) as image:
            return image.convert("RGB")

    return load


def _file(path: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(path) as image:
            return ImageOps.exif_transpose(image).convert("RGB")

    return load


def _to_image(pixels: np.ndarray) -> Image.Image:
    if pixels.dtype == bool:
        pixels = pixels.astype(np.uint8) * 255
    if pixels.dtype != np.uint8:
        low, high = float(pixels.min()), float(pixels.max())
        pixels = ((pixels - low) / max(high - low, 1e-9) * 255).round().astype(np.uint8)
    return Image.fromarray(pixels).convert("RGB")


def _alternate(source: str, photos: Iterable[tuple[str, Callable[[], Image.Image]]]) -> list[Photo]:
    """Every other photo of a source is held out, so both splits mix every source."""
    return [
        Photo(name, source, "tune" if i % 2 == 0 else "holdout", load)
        for i, (name, load) in enumerate(photos)
    ]


def _stereo_left() -> Image.Image:
    """One view of skimage's stereo pair (the other view is the same scene)."""
    import skimage.data

    left, _right, _disparity = skimage.data.stereo_motorcycle()
    return _to_image(left)


_SKIMAGE = (
    "astronaut",
    "brick",
    "camera",
    "cell",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)
_BACKGROUNDS = "/usr/share/backgrounds"
_MATE = (
    "Aqua",
    "Blinds",
    "Dune",
    "FreshFlower",
    "Garden",
    "GreenMeadow",
    "LadyBird",
    "RainDrops",
    "Storm",
    "TwoWings",
    "Wood",
    "YellowFlower",
)
_LOMIRI = (
    "Bridge_by_Sander_Klootwijk",
    "Dragonfly_by_Bolly",
    "Picture_0B_by_freespace",
    "Picture_1A_by_freespace",
    "Wine_by_Jakkub_Mede",
    "aitzgorri_by_Aitzol_Berasategi",
    "free_by_Peter_Nerlich",
    "friends_by_Aitzol_Berasategi",
    "life_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi",
    "seeding_by_Clements_Engelhardt",
    "sunset_by_Aitzol_Berasategi",
)
REGISTRY: tuple[Photo, ...] = (
    *_alternate(
        "scikit-image",
        [(n, _skimage(n)) for n in _SKIMAGE] + [("motorcycle_left", _stereo_left)],
    ),
    *_alternate("PyWavelets", [(n, _pywt(n)) for n in ("aero", "ascent")]),
    Photo("grace_hopper", "matplotlib", "tune", _matplotlib("grace_hopper.jpg")),
    *_alternate(
        "Debian mate-backgrounds",
        [(f"mate_{n}", _file(f"{_BACKGROUNDS}/mate/nature/{n}.jpg")) for n in _MATE],
    ),
    *_alternate(
        "Debian lomiri-wallpapers-16.04",
        [(f"lomiri_{n.split('_by_')[0]}", _file(f"{_BACKGROUNDS}/{n}.jpg")) for n in _LOMIRI],
    ),
)


# Issue 18's split nobody tuned on: photographs from two more Debian wallpaper packages
# (`apt-get install plasma-workspace-wallpapers lomiri-wallpapers-20.04`). Never loaded
# unless asked for (load_registry's `splits`), so the earlier benchmarks are unchanged.
_PLASMA = (
    "BytheWater",
    "ColdRipple",
    "ColorfulCups",
    "DarkestHour",
    "EveningGlow",
    "FallenLeaf",
    "Grey",
    "Kite",
    "OneStandsOut",
    "Path",
    "Volna",
    "summer_1am",
)


def _plasma(name: str) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        folder = Path("/usr/share/wallpapers") / name / "contents" / "images"
        files = [p for p in folder.glob("*.*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise OSError(f"no image in {folder}")
        return _file(str(min(files, key=lambda p: p.stat().st_size)))()

    return load


FRESH: tuple[Photo, ...] = (
    *(
        Photo(f"plasma_{n}", "Debian plasma-workspace-wallpapers", "fresh", _plasma(n))
        for n in _PLASMA
    ),
    *(
        Photo(
            f"lomiri20_{n.split('_by_')[0]}",
            "Debian lomiri-wallpapers-20.04",
            "fresh",
            _file(f"{_BACKGROUNDS}/{n}.jpg"),
        )
        for n in ("Kleiber_by_Lukas_Baubkus", "Infinite-Sea_by_Aury88")
    ),
)


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """Scale down (never up) so the long side is at most max_side."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def load_registry(
    splits: Iterable[Split] = ("tune", "holdout"),
    max_side: int = DEFAULT_MAX_SIDE,
    registry: Iterable[Photo] = REGISTRY,
) -> tuple[list[LoadedPhoto], list[str]]:
    """The registered photos of the chosen splits, and a note for each one missing."""
    wanted = set(splits)
    loaded, missing = [], []
    for photo in registry:
        if photo.split not in wanted:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = photo.load()
        except (OSError, ImportError) as exc:
            missing.append(f"{photo.name} ({photo.source}): {exc}")
            continue
        loaded.append(LoadedPhoto(photo.name, photo.source, photo.split, fit(image, max_side)))
    return loaded, missing


def load_folder(folder: Path, max_side: int = DEFAULT_MAX_SIDE) -> list[LoadedPhoto]:
    """Every image file in a user's folder (recursively), as one `holdout` set."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    photos = []
    for path in files:
        try:
            image = _file(str(path))()
        except OSError:
            continue  # not an image after all; the caller reports the count it got
        name = str(path.relative_to(folder))
        photos.append(LoadedPhoto(name, str(folder), "holdout", fit(image, max_side)))
    return photos
