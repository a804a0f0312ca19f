"""What hashing one upload costs (decode, PDQ with its 8 dihedral variants, pHash, SHA-256
and MD5) for typical sizes and formats, and what JPEG draft decoding (Pillow's
Image.draft: libjpeg's DCT scaling to 1/2, 1/4 or 1/8) saves and moves.

"Full" is draft_side=0; the service's default is service.media.decode.DEFAULT_DRAFT_SIDE.
Part 1 times service.media on one photo at 0.3, 2 and 12 megapixels as JPEG, PNG and
WebP, full decode and draft decode side by side (median of --repeats, one core).
Part 2 hashes every registered photo (loadtests/photos.py) at its native size as a JPEG,
full decode and draft decode, and reports how far draft moves PDQ and pHash, and how far
edited JPEG re-uploads land from their listed photo (listed = full decode of the original,
as a victim's own `hashguard hash` or another tool computes it) with each decoder.
Run: python -m loadtests.hash_cost [--repeats 7] [--draft-sides 512,1024] [--part cost]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from loadtests.photos import load_registry
from loadtests.transforms import encode, scale
from service.config import Settings
from service.media.decode import decode_image
from service.media.hashes import hash_image_bytes

SIZES = {"0.3 MP": (640, 480), "2 MP": (1728, 1152), "12 MP": (4000, 3000)}
FORMATS = {
    "JPEG": {"quality": 90},
    "PNG": {},
    "WEBP": {"quality": 80},
}
SOURCE = Path("/usr/share/backgrounds/Dragonfly_by_Bolly.jpg")  # 4224x3168, a real photo


def source_photo(path: Path) -> tuple[Image.Image, str]:
    """A 4:3 photo with real detail; a scaled-up skimage photo if the wallpaper is absent."""
    if path.exists():
        with Image.open(path) as image:
            return image.convert("RGB"), str(path)
    import skimage.data

    astronaut = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    return Image.fromarray(astronaut), "skimage astronaut (scaled up)"


def _interleaved_ms(runs: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each run, taking turns so a noisy neighbour hits them all alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for slot, run in zip(times, runs, strict=True):
            started = time.perf_counter()
            run()
            slot.append(time.perf_counter() - started)
    return [statistics.median(slot) * 1e3 for slot in times]


def cost_table(repeats: int, draft_sides: Sequence[int], source: Path) -> None:
    photo, origin = source_photo(source)
    print(f"source photo: {origin}; median of {repeats}, full and draft decodes taking turns\n")
    drafts = "".join(f" {f'draft {s} ms':>13} {'moved':>5}" for s in draft_sides)
    print(
        f"{'size':<7} {'format':<5} {'KiB':>6} {'decode':>7} {'PDQ x8':>7} {'pHash':>6} "
        f"{'digests':>7} {'total ms':>8}{drafts}"
    )
    for size_name, size in SIZES.items():
        image = photo.resize(size, Image.Resampling.LANCZOS) if photo.size != size else photo
        for fmt, options in FORMATS.items():
            data = encode(image, fmt, **options)
            decoded = decode_image(data, draft_side=0)
            rgb = np.asarray(decoded)
            parts = _interleaved_ms(
                [
                    partial(decode_image, data, draft_side=0),
                    partial(pdqhash.compute_dihedral, rgb),
                    partial(imagehash.phash, decoded),
                    partial(_digests, data),
                ],
                repeats,
            )
            totals = _interleaved_ms(
                [partial(hash_image_bytes, data, draft_side=0)]
                + [partial(hash_image_bytes, data, draft_side=s) for s in draft_sides],
                repeats,
            )
            full = hash_image_bytes(data, draft_side=0).pdq.value
            cells = "".join(
                f" {t:>8.1f} {totals[0] / t:>3.1f}x "
                f"{_bits(full, hash_image_bytes(data, draft_side=s).pdq.value):>5}"
                for s, t in zip(draft_sides, totals[1:], strict=True)
            )
            print(
                f"{size_name:<7} {fmt:<5} {len(data) / 1024:>6.0f} "
                + " ".join(f"{ms:>{w}.1f}" for ms, w in zip(parts, (7, 7, 6, 7), strict=True))
                + f" {totals[0]:>8.1f}{cells}"
            )


def _digests(data: bytes) -> tuple[bytes, bytes]:
    return hashlib.sha256(data).digest(), hashlib.md5(data, usedforsecurity=False).digest()


def _bits(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def _min_dihedral(upload: bytes, draft_side: int, listed: bytes) -> int:
    variants = hash_image_bytes(upload, draft_side=draft_side).pdq_dihedral
    return min(_bits(v, listed) for v in variants)


def draft_effect(draft_sides: Sequence[int], pdq_threshold: int) -> None:
    """Draft vs full decode over every registered photo at its native size."""
    photos, missing = load_registry(max_side=100_000)
    edits: dict[str, Callable[[Image.Image], bytes]] = {
        "jpeg q90": lambda im: encode(im, "JPEG", quality=90),
        "jpeg q50": lambda im: encode(im, "JPEG", quality=50),
        "resize 0.5 + jpeg q80": lambda im: encode(scale(0.5, im), "JPEG", quality=80),
    }
    sizes = sorted(p.image.width * p.image.height / 1e6 for p in photos)
    print(
        f"\n{len(photos)} registered photos at native size "
        f"({sizes[0]:.2f}-{sizes[-1]:.1f} MP, median {statistics.median(sizes):.2f} MP)"
        + (f"; {len(missing)} missing" if missing else "")
    )
    print(
        f"PDQ distance of each JPEG re-upload (8 dihedral variants) to the photo's listed hash "
        f"(full decode of a lossless copy); 'over' counts uploads beyond {pdq_threshold}\n"
    )
    print(
        f"{'edit':<22} {'decoder':<12} {'median':>6} {'p95':>5} {'max':>5} {'over':>5} "
        f"{'draft vs full: median':>22} {'max':>4} {'pHash max':>9}"
    )
    listed = {p.name: hash_image_bytes(encode(p.image), draft_side=0).pdq.value for p in photos}
    for edit_name, edit in edits.items():
        uploads = {p.name: edit(p.image) for p in photos}
        for side in (0, *draft_sides):
            to_list = [_min_dihedral(uploads[n], side, listed[n]) for n in uploads]
            moved, phash_moved = [], []
            if side:
                for data in uploads.values():
                    full = hash_image_bytes(data, draft_side=0)
                    draft = hash_image_bytes(data, draft_side=side)
                    moved.append(_bits(full.pdq.value, draft.pdq.value))
                    phash_moved.append(_bits(full.phash.value, draft.phash.value))
            label = f"draft {side}" if side else "full"
            moved_cells = (
                f"{statistics.median(moved):>22.0f} {max(moved):>4} {max(phash_moved):>9}"
                if side
                else f"{'-':>22} {'-':>4} {'-':>9}"
            )
            print(
                f"{edit_name:<22} {label:<12} {statistics.median(to_list):>6.0f} "
                f"{np.percentile(to_list, 95):>5.0f} {max(to_list):>5} "
                f"{sum(d > pdq_threshold for d in to_list):>5} {moved_cells}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--draft-sides", default="512,1024", help="draft targets to compare")
    parser.add_argument("--source", type=Path, default=SOURCE, help="photo for the cost table")
    parser.add_argument("--pdq-threshold", type=int, default=Settings().pdq_threshold)
    parser.add_argument("--part", choices=("cost", "effect", "both"), default="both")
    args = parser.parse_args(argv)
    sides = [int(s) for s in args.draft_sides.split(",")]
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    if args.part in ("cost", "both"):
        cost_table(args.repeats, sides, args.source)
    if args.part in ("effect", "both"):
        draft_effect(sides, args.pdq_threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
