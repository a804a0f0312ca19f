"""Measure pHash (and PDQ) distances on natural photos to justify the default thresholds.

For each photo from scikit-image, apply the edits a re-uploader makes and record the
distance to the original; for every pair of distinct photos record their distance.
A good threshold sits above most edit distances and below the smallest distinct-pair
distance. Prints a table. Run: python loadtests/phash_threshold.py
"""

from __future__ import annotations

import io
import itertools
import warnings
from collections.abc import Callable

import numpy as np
import skimage.data
from PIL import Image, ImageFilter

from service.hashing import hash_image_bytes

PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "cell",
    "microaneurysms",
)


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def edit(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue()))

    return edit


def _resize(f: float) -> Callable[[Image.Image], Image.Image]:
    return lambda im: im.resize((max(1, int(im.width * f)), max(1, int(im.height * f))))


def _crop(f: float) -> Callable[[Image.Image], Image.Image]:
    def edit(im: Image.Image) -> Image.Image:
        dx, dy = int(im.width * f / 2), int(im.height * f / 2)
        return im.crop((dx, dy, im.width - dx, im.height - dy))

    return edit


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg q70": _jpeg(70),
    "jpeg q40": _jpeg(40),
    "resize 0.5": _resize(0.5),
    "resize 0.25": _resize(0.25),
    "blur r1": lambda im: im.filter(ImageFilter.GaussianBlur(1)),
    "crop 4%": _crop(0.04),
    "crop 10%": _crop(0.10),
}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def _distance(a: bytes, b: bytes) -> int:
    return int(
        np.unpackbits(
            np.frombuffer(bytes(x ^ y for x, y in zip(a, b, strict=True)), dtype=np.uint8)
        ).sum()
    )


def main() -> None:
    warnings.filterwarnings("ignore")
    originals = {}
    for name in PHOTOS:
        pixels = getattr(skimage.data, name)()
        if pixels.dtype == bool:
            pixels = pixels.astype(np.uint8) * 255
        originals[name] = Image.fromarray(pixels).convert("RGB")
    hashes = {name: hash_image_bytes(_png(im)) for name, im in originals.items()}

    print(f"{len(originals)} photos from skimage.data\n")
    print(f"{'edit':<14} {'pHash median':>12} {'pHash max':>9} {'PDQ median':>10} {'PDQ max':>7}")
    for edit_name, edit in EDITS.items():
        ph, pdq = [], []
        for name, image in originals.items():
            edited = hash_image_bytes(_png(edit(image)))
            ph.append(_distance(edited.phash.value, hashes[name].phash.value))
            pdq.append(_distance(edited.pdq.value, hashes[name].pdq.value))
        print(
            f"{edit_name:<14} {np.median(ph):>12.1f} {max(ph):>9} "
            f"{np.median(pdq):>10.1f} {max(pdq):>7}"
        )

    pairs = list(itertools.combinations(hashes, 2))
    ph_pairs = sorted(_distance(hashes[a].phash.value, hashes[b].phash.value) for a, b in pairs)
    pdq_pairs = sorted(_distance(hashes[a].pdq.value, hashes[b].pdq.value) for a, b in pairs)
    print(f"\ndistinct pairs: {len(pairs)}")
    print(
        f"pHash distance: min {ph_pairs[0]}, 1st percentile {np.percentile(ph_pairs, 1):.0f}, "
        f"median {np.median(ph_pairs):.0f}"
    )
    print(
        f"PDQ distance:   min {pdq_pairs[0]}, 1st percentile {np.percentile(pdq_pairs, 1):.0f}, "
        f"median {np.median(pdq_pairs):.0f}"
    )


if __name__ == "__main__":
    main()
