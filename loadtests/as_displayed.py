"""What "the picture as displayed" is, checked against a browser (issue 16, item 4).

For files whose stored pixels differ from what a viewer shows (a JPEG with an EXIF
orientation, a CMYK JPEG, a palette PNG), compare the PDQ of:

- `hashguard hash` (service.media.hashes, every pixel decoded),
- the check path (service.media.hashes with its default JPEG draft decoding),
- the victim page in Debian's Chromium (the browser's decoder, static/fingerprints.js),
- python-threatexchange's way (`numpy.asarray(Image.open(f))`: the stored samples,
  unrotated, CMYK's first three channels taken as RGB, a palette's indices as grey).

    python -m loadtests.as_displayed
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pdqhash
import skimage.data
from PIL import Image

from service.media.hashes import hash_image_bytes, pack_bits

PHOTO = Image.fromarray(skimage.data.astronaut())


def exif_rotated(orientation: int) -> bytes:
    """The photo stored so that applying EXIF `orientation` shows it upright."""
    undo = {
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_90],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_270],
    }[orientation]
    stored = PHOTO.resize((512, 384))
    for step in undo:
        stored = stored.transpose(step)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    PHOTO.convert("CMYK").save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def palette_png() -> bytes:
    buffer = io.BytesIO()
    PHOTO.convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(buffer, format="PNG")
    return buffer.getvalue()


def upright_reference() -> bytes:
    buffer = io.BytesIO()
    PHOTO.resize((512, 384)).save(buffer, format="PNG")
    return buffer.getvalue()


FILES: dict[str, Callable[[], bytes]] = {
    **{f"exif-orientation-{o}.jpg": partial(exif_rotated, o) for o in range(2, 9)},
    "cmyk.jpg": cmyk_jpeg,
    "palette.png": palette_png,
}


def threatexchange_pdq(data: bytes) -> str:
    """python-threatexchange's pdq_from_bytes: the stored array, 2-D arrays made 3-D."""
    array = np.asarray(Image.open(io.BytesIO(data)))
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    bits, _quality = pdqhash.compute(np.ascontiguousarray(array[..., :3]))
    return pack_bits(bits).hex()


def bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def measure(chromium: str = "/usr/bin/chromium", browser: Any = None) -> list[dict[str, Any]]:
    from loadtests.web_hash_browser import in_chromium

    files = {name: make() for name, make in FILES.items()}
    pages = in_chromium(files, chromium, browser)
    rows = []
    for name, data in files.items():
        cli = hash_image_bytes(data, draft_side=0).pdq.value.hex()
        check = hash_image_bytes(data).pdq.value.hex()
        page = next(h["hex"] for h in pages[name]["hashes"] if h["algorithm"] == "pdq")
        rows.append(
            {
                "file": name,
                "cli-page": bits(cli, page),
                "cli-check": bits(cli, check),
                "cli-threatexchange": bits(cli, threatexchange_pdq(data)),
            }
        )
    return rows


def main() -> None:
    rows = measure()
    print(f"{'file':26} {'CLI~page':>9} {'CLI~check':>10} {'CLI~threatexchange':>19}")
    for r in rows:
        print(f"{r['file']:26} {r['cli-page']:9} {r['cli-check']:10} {r['cli-threatexchange']:19}")


if __name__ == "__main__":
    main()
