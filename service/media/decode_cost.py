"""What decoding and hashing an upload will really allocate, read from its header alone.

The decode budget (service.access.limits) reserves this many bytes before a decode starts,
so it must count what the decoders allocate, not only the pixels that come out:

- A progressive or multi-scan JPEG keeps every DCT coefficient of the whole image (2 bytes
  per coefficient, 64 per 8x8 block of every component) whatever scale it is decoded at:
  an 8000x8000 4:4:4 file costs 384 MB (CMYK: 512 MB) to produce a 1000x1000 draft.
- libwebp composes a WebP on canvases of its own (4 bytes a pixel each) before Pillow
  copies the frame out, and it allocates them when the file is opened, so a WebP's size
  is read from its RIFF header here, before Pillow sees it.
- TIFF reads a strip or tile into a buffer before unpacking it; BMP's RLE decoder builds
  the whole raw image in Python first.
- Every other decoder writes into Pillow's image: 1 byte a pixel for L/P/1, 2 for 16-bit
  grey, 4 for the rest.

After decoding, the check path reduces what is larger than LARGE_IMAGE_PIXELS and hashes
the result, which costs about HASH_BYTES_PER_PIXEL of what is hashed. The figures were
measured per format (peak RSS of one decode in a fresh process,
`python -m loadtests.decode_memory`, docs/BENCHMARKS.md) and are rounded up.
"""

from __future__ import annotations

import math
import struct

from PIL import Image

from service.errors import InvalidInput, LimitExceeded
from service.media.decode import (
    LARGE_IMAGE_PIXELS,
    REDUCED_PIXELS,
    REDUCIBLE_MODES,
    decoding,
    open_header,
)

# Beyond the decoded image: RGB copies, PDQ's float buffers and dihedral variants, the
# crop candidates (measured 27-31 bytes a pixel on 16 M-pixel images of every format).
HASH_BYTES_PER_PIXEL = 34
# Allocations no pixel count explains (decoder state, tables, Python objects).
FIXED_BYTES = 4 * 1024 * 1024
# Decoder working memory per declared pixel, beyond Pillow's image.
_DECODER_EXTRA = {"WEBP": 16, "BMP": 3, "PNG": 1, "GIF": 1, "TIFF": 0, "JPEG": 0}


def decode_cost(data: bytes, max_pixels: int, draft_side: int) -> int:
    """Bytes decoding and hashing `data` on the check path will hold at its peak (an
    upper bound). Refuses what is not an image or exceeds `max_pixels`, like decoding."""
    with decoding():
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            width, height = _webp_size(data)
            _check_pixels(width, height, max_pixels)
            mode = "RGBA" if _webp_alpha(data) else "RGB"
            return FIXED_BYTES + _decoded_cost(width, height, mode, "WEBP", draft_side)
        image = open_header(data, max_pixels, draft_side)
        if image.format == "JPEG":
            return FIXED_BYTES + _jpeg_cost(image, data, draft_side)
        cost = _decoded_cost(image.width, image.height, image.mode, image.format, draft_side)
        if image.format == "TIFF":
            cost += _tiff_buffer(image)
        return FIXED_BYTES + cost


def _decoded_cost(width: int, height: int, mode: str, fmt: str | None, draft_side: int) -> int:
    """Pillow's image in `mode`, the decoder's own memory, and hashing what comes out
    (reduced first when large, as decode_image does)."""
    pixels = width * height
    cost = pixels * (_bytes_per_pixel(mode) + _DECODER_EXTRA.get(fmt or "", 4))
    hashed = pixels
    if draft_side > 0 and pixels > LARGE_IMAGE_PIXELS:
        if mode not in REDUCIBLE_MODES:
            cost += pixels * 4  # converted to RGB(A) before reducing
            mode = "RGBA"
        if mode in ("LA", "RGBA"):
            cost += pixels * 4  # reduce works on a premultiplied-alpha copy
        factor = math.ceil(math.sqrt(pixels / REDUCED_PIXELS))
        hashed = math.ceil(width / factor) * math.ceil(height / factor)
    return cost + hashed * (4 + HASH_BYTES_PER_PIXEL)


def _bytes_per_pixel(mode: str) -> int:
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _jpeg_cost(image: Image.Image, data: bytes, draft_side: int) -> int:
    """The drafted image and its hashing, plus the whole image's coefficients when the
    file is progressive or has several scans (libjpeg buffers them all then)."""
    full_width, full_height = _jpeg_full_size(image)
    cost = _decoded_cost(image.width, image.height, image.mode, "JPEG", draft_side)
    if image.info.get("progressive") or _jpeg_scans(data) > 1:
        layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
        h_max = max(h for _, h, _, _ in layers) or 1
        v_max = max(v for _, _, v, _ in layers) or 1
        mcu_cols = math.ceil(full_width / (8 * h_max))
        mcu_rows = math.ceil(full_height / (8 * v_max))
        blocks = sum(mcu_cols * h * mcu_rows * v for _, h, v, _ in layers)
        cost += blocks * 64 * 2
    return cost


def _jpeg_full_size(image: Image.Image) -> tuple[int, int]:
    """The size before draft scaling (Pillow keeps the scale in `decoderconfig`)."""
    config = getattr(image, "decoderconfig", ()) or (1,)
    scale = max(1, int(config[0]))
    return image.width * scale, image.height * scale


def _jpeg_scans(data: bytes) -> int:
    """How many SOS segments the file has, walking its markers; the entropy-coded data
    after each SOS is skipped to the next marker (0xFF inside it is always followed by
    0x00, a restart marker or more 0xFF fill)."""
    scans, at, end = 0, 2, len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            return scans  # not a marker where one must be: the decoder will refuse it
        marker = data[at + 1]
        if marker == 0xFF:
            at += 1
            continue
        if marker == 0xD9:  # EOI
            break
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
        if marker != 0xDA:
            continue
        scans += 1
        while True:
            at = data.find(b"\xff", at)
            if at < 0 or at + 1 >= end:
                return scans
            following = data[at + 1]
            if following == 0xFF:
                at += 1
            elif following == 0x00 or 0xD0 <= following <= 0xD7:
                at += 2
            else:
                break
    return scans


def _tiff_buffer(image: Image.Image) -> int:
    """libtiff's strip or tile buffer (at least 4 bytes a pixel: YCbCr and JPEG-in-TIFF
    go through its RGBA reader)."""
    tags = getattr(image, "tag_v2", {})
    samples = int(tags.get(277, 1) or 1)
    bits = tags.get(258, (8,))
    depth = max(bits) if isinstance(bits, tuple) and bits else int(bits or 8)
    per_pixel = max(4, math.ceil(samples * depth / 8))
    width, height = image.size
    if 322 in tags and 323 in tags:  # tiled: a row of tiles
        tile_width, tile_height = int(tags[322]), int(tags[323])
        return math.ceil(width / max(1, tile_width)) * tile_width * tile_height * per_pixel
    rows = min(height, int(tags.get(278, height) or height))
    return width * rows * per_pixel


def _webp_size(data: bytes) -> tuple[int, int]:
    """The canvas size from a WebP's first chunk (VP8X, VP8 or VP8L), as libwebp reads it."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise InvalidInput("image could not be decoded: not a WebP file the service can read")


def _webp_alpha(data: bytes) -> bool:
    """Whether Pillow will decode the WebP as RGBA (VP8X's alpha flag, or lossless's)."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        return len(data) > 20 and bool(data[20] & 0x10)
    if chunk == b"VP8L":
        return len(data) > 24 and bool(data[24] & 0x10)
    return False


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidInput("image has no pixels")
    if width * height > max_pixels:
        raise LimitExceeded(
            "image_pixels",
            f"image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
        )
