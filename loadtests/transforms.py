"""The edits a re-uploader makes, as a registry of named transforms: image -> file bytes.

Each transform returns the bytes a re-uploader would send, so re-encoding is part of it.
Pixel edits (crop, brightness, watermark, ...) are saved as lossless PNG so their row
measures that edit alone; the JPEG rows measure recompression alone, and `screenshot`
combines a rescale with a JPEG re-encode. Every transform is deterministic (seeded), so
two runs hash the same bytes. Add one by appending a `Transform` to `TRANSFORMS`; the
`family` groups rows in the report (issue 7 adds harder crops, captions and borders).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps


@dataclass(frozen=True, slots=True)
class Transform:
    name: str
    family: str
    apply: Callable[[Image.Image], bytes]


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _lossless(edit: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image], bytes]:
    return lambda image: encode(edit(image))


def jpeg(quality: int) -> Callable[[Image.Image], bytes]:
    return lambda image: encode(image, "JPEG", quality=quality)


def scale(factor: float, image: Image.Image) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def centre_crop(fraction: float, image: Image.Image) -> Image.Image:
    """Remove `fraction` of the width and of the height, half from each side."""
    dx, dy = round(image.width * fraction / 2), round(image.height * fraction / 2)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def gamma(value: float, image: Image.Image) -> Image.Image:
    table = [round(255 * (i / 255) ** value) for i in range(256)]
    return image.point(table * len(image.getbands()))


def noise(sigma: float, image: Image.Image) -> Image.Image:
    """Gaussian noise of `sigma` grey levels, the same pattern for every run."""
    pixels = np.asarray(image, dtype=np.float32)
    rng = np.random.default_rng(6)
    noisy = pixels + rng.normal(0.0, sigma, pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))


def watermark(image: Image.Image) -> Image.Image:
    """A semi-transparent text line and a round logo, as sharing sites stamp them."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(8, base.height // 12)
    font = ImageFont.load_default(size=size)
    text = "@reupload_site"
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = size // 2
    x = base.width - (right - left) - margin
    y = base.height - (bottom - top) - margin
    draw.text((x, y - top), text, font=font, fill=(255, 255, 255, 170))
    r = size
    draw.ellipse((margin, margin, margin + 2 * r, margin + 2 * r), fill=(255, 40, 40, 150))
    return Image.alpha_composite(base, layer).convert("RGB")


def letterbox(image: Image.Image) -> Image.Image:
    """Black bars that pad the photo to a square, as square-feed sites show it."""
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


def off_centre_crop(
    left: float, top: float, right: float, bottom: float, image: Image.Image
) -> Image.Image:
    """Remove the given fractions of the width (left, right) and height (top, bottom)."""
    w, h = image.size
    return image.crop(
        (round(w * left), round(h * top), w - round(w * right), h - round(h * bottom))
    )


def bars(
    added: float, vertical: bool, colour: tuple[int, int, int], image: Image.Image
) -> Image.Image:
    """Bars adding `added` of the height (letterbox) or of the width (pillarbox, `vertical`),
    half on each side, in a solid colour."""
    w, h = image.size
    size = (w + round(w * added), h) if vertical else (w, h + round(h * added))
    canvas = Image.new("RGB", size, colour)
    canvas.paste(image, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def frame(width: float, colour: tuple[int, int, int], image: Image.Image) -> Image.Image:
    """A solid frame `width` of the short side wide on all four sides."""
    pad = max(1, round(min(image.size) * width))
    return ImageOps.expand(image, border=pad, fill=colour)


def caption_and_logo(image: Image.Image) -> Image.Image:
    """A meme-style caption (two lines of large white text with a black outline) over the
    bottom of the photo, and a solid logo box covering 3 % of the area in a top corner."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    size = max(10, h // 11)
    font = ImageFont.load_default(size=size)
    for line, text in enumerate(("WHEN YOU SEE IT", "share before it's deleted")):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=size // 12)
        x = (w - (right - left)) // 2
        y = h - (2 - line) * (bottom - top + size // 4) - size // 3
        draw.text(
            (x, y - top),
            text,
            font=font,
            fill=(255, 255, 255),
            stroke_width=size // 12,
            stroke_fill=(0, 0, 0),
        )
    side = round((0.03 * w * h) ** 0.5)
    margin = max(2, side // 6)
    draw.rectangle((w - margin - side, margin, w - margin, margin + side), fill=(230, 40, 90))
    return out


def screenshot(image: Image.Image) -> bytes:
    """Shown at 60 % on a screen, captured, re-uploaded as a JPEG."""
    return encode(scale(0.6, image).filter(ImageFilter.SMOOTH), "JPEG", quality=80)


def brightness(factor: float, image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(factor)


def contrast(factor: float, image: Image.Image) -> Image.Image:
    return ImageEnhance.Contrast(image).enhance(factor)


TRANSFORMS: tuple[Transform, ...] = (
    Transform("jpeg q90", "recompress", jpeg(90)),
    Transform("jpeg q70", "recompress", jpeg(70)),
    Transform("jpeg q50", "recompress", jpeg(50)),
    Transform("jpeg q30", "recompress", jpeg(30)),
    Transform("webp q75", "recompress", lambda im: encode(im, "WEBP", quality=75)),
    Transform("resize 0.5", "resize", _lossless(lambda im: scale(0.5, im))),
    Transform("resize 0.25", "resize", _lossless(lambda im: scale(0.25, im))),
    Transform("screenshot", "resize", screenshot),
    Transform("crop 5%", "crop", _lossless(lambda im: centre_crop(0.05, im))),
    Transform("crop 10%", "crop", _lossless(lambda im: centre_crop(0.10, im))),
    Transform("crop 20%", "crop", _lossless(lambda im: centre_crop(0.20, im))),
    Transform("crop 15%", "crop", _lossless(lambda im: centre_crop(0.15, im))),
    Transform(
        "crop 10% top-left", "crop", _lossless(lambda im: off_centre_crop(0.1, 0.1, 0, 0, im))
    ),
    Transform("crop 20% right", "crop", _lossless(lambda im: off_centre_crop(0, 0, 0.2, 0, im))),
    Transform(
        "crop 15% bottom-left",
        "crop",
        _lossless(lambda im: off_centre_crop(0.1, 0.05, 0.05, 0.1, im)),
    ),
    Transform(
        "rotate 90", "geometry", _lossless(lambda im: im.transpose(Image.Transpose.ROTATE_90))
    ),
    Transform(
        "rotate 180", "geometry", _lossless(lambda im: im.transpose(Image.Transpose.ROTATE_180))
    ),
    Transform("mirror", "geometry", _lossless(ImageOps.mirror)),
    Transform("brightness +30%", "colour", _lossless(lambda im: brightness(1.3, im))),
    Transform("brightness -30%", "colour", _lossless(lambda im: brightness(0.7, im))),
    Transform("contrast +30%", "colour", _lossless(lambda im: contrast(1.3, im))),
    Transform("contrast -30%", "colour", _lossless(lambda im: contrast(0.7, im))),
    Transform("gamma 0.7", "colour", _lossless(lambda im: gamma(0.7, im))),
    Transform("gamma 1.5", "colour", _lossless(lambda im: gamma(1.5, im))),
    Transform("grayscale", "colour", _lossless(lambda im: im.convert("L"))),
    Transform("blur r2", "filter", _lossless(lambda im: im.filter(ImageFilter.GaussianBlur(2)))),
    Transform("noise s10", "filter", _lossless(lambda im: noise(10, im))),
    Transform("watermark", "overlay", _lossless(watermark)),
    Transform("letterbox", "overlay", _lossless(letterbox)),
    Transform("letterbox 30%", "border", _lossless(lambda im: bars(0.3, False, (0, 0, 0), im))),
    Transform(
        "letterbox 30% jpeg",
        "border",
        lambda im: encode(bars(0.3, False, (0, 0, 0), im), "JPEG", quality=75),
    ),
    Transform("pillarbox 30%", "border", _lossless(lambda im: bars(0.3, True, (0, 0, 0), im))),
    Transform("frame white", "border", _lossless(lambda im: frame(0.08, (255, 255, 255), im))),
    Transform(
        "frame blue jpeg",
        "border",
        lambda im: encode(frame(0.05, (20, 60, 160), im), "JPEG", quality=80),
    ),
    Transform("caption+logo", "overlay", _lossless(caption_and_logo)),
)


def by_name(names: str | None) -> list[Transform]:
    """Transforms named in a comma-separated list (all of them for None)."""
    if not names:
        return list(TRANSFORMS)
    known = {t.name: t for t in TRANSFORMS}
    wanted = [n.strip() for n in names.split(",")]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown transforms {unknown}; known: {sorted(known)}")
    return [known[n] for n in wanted]
