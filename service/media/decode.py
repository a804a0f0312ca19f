"""Image bytes -> upright RGB pixels, safely: the bytes come from strangers.

Anything Pillow cannot decode, and anything whose pixel count exceeds the cap
(decompression bombs), is refused with InvalidInput before the pixels are materialised;
large images are decoded at reduced scale. Nothing here keeps or logs the bytes.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from PIL import Image, ImageOps, UnidentifiedImageError

from service.errors import InvalidInput, LimitExceeded

DEFAULT_MAX_PIXELS = 64_000_000
# JPEGs decode at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, Pillow's Image.draft) while
# both sides stay at least this many pixels. PDQ and pHash look at 64x64 and 32x32
# summaries, so this moves PDQ by a few bits (at most 14 of 256 on the quality benchmark's
# 46 photos) and makes a 12-megapixel JPEG about 10x cheaper to hash
# (docs/BENCHMARKS.md, docs/QUALITY.md). 0 decodes every pixel.
DEFAULT_DRAFT_SIDE = 512
# On the check path an image with more pixels than this, once decoded, is box-reduced by
# an integer factor to about REDUCED_PIXELS before it is converted and hashed. Hashing
# costs about 30 bytes per pixel (RGB copies, PDQ's float buffers), so a 62 KB PNG that
# inflates to 64 megapixels cost 10 s and 2 GB; reduced, it costs a fraction. Ordinary
# uploads (up to 16 megapixels, and JPEGs, which draft decoding already shrank) are
# hashed pixel for pixel as before; see docs/SECURITY.md, "Hostile input".
LARGE_IMAGE_PIXELS = 16_000_000
REDUCED_PIXELS = 4_000_000
# Only formats uploads really use (JPEG covers MPO). Pillow could open more (EPS would
# run Ghostscript), and every extra decoder is attack surface for bytes from strangers.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Modes Image.reduce works on; others are converted to RGB(A) first.
REDUCIBLE_MODES = ("L", "LA", "I", "F", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")


def decode_image(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_side: int = DEFAULT_DRAFT_SIDE
) -> Image.Image:
    """Decode to an upright 8-bit RGB image (a large JPEG at reduced scale, see
    DEFAULT_DRAFT_SIDE, and anything above LARGE_IMAGE_PIXELS box-reduced; the rest pixel
    for pixel; draft_side=0 turns both reductions off).

    The picture as displayed, which is what the victim page hashes in a browser: EXIF
    orientation applied, then every mode through Pillow's convert("RGB") (CMYK and
    palette colours converted; 16-bit values above 255 saturate). python-threatexchange
    hashes the stored samples instead, so for rotated JPEGs, CMYK JPEGs and palette PNGs
    its PDQ differs from ours by 100-256 bits; for RGB and grey files, its reference
    vectors included, the two are equal (docs/QUALITY.md, "As displayed").
    """
    with decoding():
        image = open_header(data, max_pixels, draft_side)
        image.load()
        if draft_side > 0:
            image = _reduced(image)
        upright = ImageOps.exif_transpose(image) or image
        rgb = upright.convert("RGB")
    return rgb


def open_header(data: bytes, max_pixels: int, draft_side: int) -> Image.Image:
    """Read the header, refuse what is too large, choose the JPEG draft scale."""
    image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidInput("image has no pixels")
    if width * height > max_pixels:
        raise LimitExceeded(
            "image_pixels",
            f"image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
        )
    if draft_side > 0:
        image.draft(image.mode, (draft_side, draft_side))  # no-op unless JPEG
    return image


def _reduced(image: Image.Image) -> Image.Image:
    """Box-reduce an image larger than LARGE_IMAGE_PIXELS to about REDUCED_PIXELS (as
    JPEG draft decoding does for JPEGs); modes `reduce` lacks (palette) go to RGB first."""
    width, height = image.size
    if width * height <= LARGE_IMAGE_PIXELS:
        return image
    factor = math.ceil(math.sqrt(width * height / REDUCED_PIXELS))
    if image.mode not in REDUCIBLE_MODES:
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.reduce(factor)


@contextmanager
def decoding() -> Iterator[None]:
    """Turn every way Pillow's decoders fail on bytes from strangers into InvalidInput."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(f"image refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise InvalidInput(
            "bytes are not an image format the service can decode (JPEG, PNG, WebP, GIF, BMP, TIFF)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InvalidInput(f"image could not be decoded: {exc}") from None
