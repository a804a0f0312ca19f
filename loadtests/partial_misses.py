"""Why a panel edit misses (issue 18): for each photo and edit, the nearest distance of the
upload's parts to the photo's listed windows per stage (the whole upload's parts, strips,
the rotated part, panels), and for collages, screenshots and pastes the distance of the
photo's exact region cut out of the upload (what a perfect panel finder would give) and how
far the nearest panel found is from it. A miss whose exact region is also far (over the
window threshold) is lost to the scaling and JPEG, not to finding the panel.

    python -m loadtests.partial_misses --split tune                      # all panel edits
    python -m loadtests.partial_misses --split tune --edit "collage 2x2" --misses
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
from PIL import Image

from loadtests.partial_transforms import PARTIAL, _filler, _fit
from loadtests.photos import FRESH, REGISTRY, load_registry
from loadtests.transforms import encode
from service.config import Settings
from service.media.borders import Box
from service.media.crops import candidate_queries, reduced, window_hashes
from service.media.decode import decode_image
from service.media.panels import panel_boxes
from service.media.regions import PANEL_SIDE, _pdq

PANEL_EDITS = ("collage 2x2", "collage 3x3", "phone screenshot", "pasted half size")


def exact_region(edit: str, photo: Image.Image) -> tuple[Box, tuple[int, int]] | None:
    """Where loadtests.partial_transforms put the photo, and the canvas size."""
    if edit == "collage 2x2":  # collage(2, 1, 12): cell 1, white gutters of 12
        cell = (1080 - 36) // 2
        tile = _fit(photo, cell, cell)
        x, y = 12 + cell + 12 + (cell - tile.width) // 2, 12 + (cell - tile.height) // 2
        return (x, y, x + tile.width, y + tile.height), (1080, 1080)
    if edit == "collage 3x3":  # collage(3, 5, 0, fit=False): middle right, stretched
        cell = 1080 // 3
        return (2 * cell, cell, 3 * cell, 2 * cell), (1080, 1080)
    if edit == "phone screenshot":
        shown = _fit(photo, 1000, 1500)
        x = (1080 - shown.width) // 2
        return (x, 270, x + shown.width, 270 + shown.height), (1080, 2340)
    if edit == "pasted half size":
        background = _filler(photo, 1)
        shown = _fit(photo, round(background.width * 0.5), background.height)
        x = round((background.width - shown.width) * 0.3)
        y = round((background.height - shown.height) * 0.7)
        return (x, y, x + shown.width, y + shown.height), background.size
    return None


def _nearest(query: bytes, listed: np.ndarray) -> int:
    row = np.frombuffer(query, dtype=np.uint8)
    return int(np.unpackbits(row[None, :] ^ listed, axis=1).sum(axis=1).min())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("tune", "holdout", "fresh"), default="tune")
    parser.add_argument("--edit", action="append", help="only these edits (default: panels)")
    parser.add_argument("--misses", action="store_true", help="print only the misses")
    args = parser.parse_args(argv)
    settings = Settings()
    quality, threshold = settings.pdq_min_quality, settings.pdq_window_threshold
    edits = {t.name: t for t in PARTIAL if t.name in (args.edit or PANEL_EDITS)}
    photos, _ = load_registry([args.split], registry=(*REGISTRY, *FRESH))
    caught = dict.fromkeys(edits, 0)
    print("| photo | edit | nearest part | per stage | exact region | nearest panel off |")
    print("|---|---|---:|---|---:|---:|")
    for photo in photos:
        listed_hashes = window_hashes(decode_image(encode(photo.image), draft_side=0), quality)
        listed = np.array([np.frombuffer(h.value, dtype=np.uint8) for h in listed_hashes])
        for name, edit in edits.items():
            image = decode_image(edit.apply(photo.image)).convert("RGB")
            best: dict[str, int] = {}
            for value, part, _ in candidate_queries(image, quality, regions=True).pdq_queries():
                best[part.name] = min(best.get(part.name, 999), _nearest(value, listed))
            nearest = min(best.values(), default=999)
            caught[name] += nearest <= threshold
            exact, off = "", ""
            placed = exact_region(name, photo.image)
            if placed is not None:
                box, size = placed
                scale = image.width / size[0]
                left, top, right, bottom = (round(v * scale) for v in box)
                full = (left, top, right, bottom)
                value, region_quality = _pdq(image.crop(full), PANEL_SIDE)
                exact = f"{_nearest(value, listed)} (q{region_quality})"
                small = np.asarray(reduced(image))
                shrink = small.shape[1] / image.width
                want = [v * shrink for v in full]
                found = panel_boxes(small)
                gaps = [max(abs(a - b) for a, b in zip(f, want, strict=True)) for f in found]
                off = str(round(min(gaps))) if gaps else "none"
            if args.misses and nearest <= threshold:
                continue
            stages = ", ".join(f"{k} {v}" for k, v in sorted(best.items(), key=lambda kv: kv[1]))
            print(f"| {photo.name} | {name} | {nearest} | {stages} | {exact} | {off} |", flush=True)
    print("\n" + ", ".join(f"{n}: {c}/{len(photos)}" for n, c in caught.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
