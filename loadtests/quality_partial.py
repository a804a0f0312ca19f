"""Partial matching's benchmark (issue 18): off-centre crops, small rotations, collages,
phone screenshots and photos pasted on a busy background, before and after, per split.

Every upload is the bytes a re-uploader sends (loadtests/partial_transforms.py, and the
earlier tiers of loadtests/transforms.py), hashed once as the check path hashes it with
region matching on. "Before" is today's crop matching, taken from the same hashes: the
original lists the windows without issue 18's OFF_CENTRE_WINDOWS, and the upload's
rotated and panel parts are left out; "after" is the service now. False matches count
every upload, with all its queries, against every version of every other photo (PDQ,
pHash) and that photo's listed windows; the nearest such distance is printed per hash
type. The `fresh` split (photos.FRESH) was never looked at while choosing anything.

    python -m loadtests.quality_partial --split tune      # what choices were made on
    python -m loadtests.quality_partial                   # tune, holdout and fresh
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from loadtests.partial_transforms import PARTIAL, fillers
from loadtests.photos import DEFAULT_MAX_SIDE, FRESH, REGISTRY, LoadedPhoto, load_registry
from loadtests.quality_metrics import (
    UNMATCHABLE,
    Distances,
    Upload,
    distances,
    either_recall,
)
from loadtests.transforms import Transform, by_name, encode
from service.config import Settings
from service.domain import MatchPart
from service.media.crops import (
    DEFAULT_WINDOWS,
    OFF_CENTRE_WINDOWS,
    candidate_queries,
    window_hashes,
)
from service.media.decode import decode_image
from service.media.hashes import hash_decoded

TARGETS = {t.name: 0.90 for t in PARTIAL if "between" not in t.name}
# The earlier tiers that must not drop (core edits, crops, letterbox, captions).
EARLIER = (
    "jpeg q70,resize 0.5,screenshot,mirror,rotate 90,crop 5%,crop 10%,crop 20%,"
    "crop 10% top-left,letterbox 30%,frame white,caption+logo,watermark"
)
REGION_PARTS = (MatchPart.ROTATED, MatchPart.PANEL)
BEFORE_WINDOWS = tuple(w for w in DEFAULT_WINDOWS if w not in OFF_CENTRE_WINDOWS)


def _rows(values: Sequence[bytes], width: int = 32) -> np.ndarray:
    return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), width)


def hash_photo(args: tuple[int, LoadedPhoto, int, str]) -> list[tuple[Upload, Upload, int]]:
    """(before, after, region parts hashed) for the original and every edit of one photo."""
    index, photo, min_quality, earlier_names = args
    transforms: list[Transform] = by_name(earlier_names) + list(PARTIAL)
    made = [("original", encode(photo.image))] + [
        (t.name, t.apply(photo.image)) for t in transforms
    ]
    out = []
    for name, data in made:
        image = decode_image(data)
        hashed = hash_decoded(image, data)
        parts = candidate_queries(image, min_quality, regions=True)
        plain = [v for v, p in parts.pdq_parts() if p not in REGION_PARTS]
        phash_extra = _rows([v for v in parts.phash if v != hashed.phash.value], 8)
        before_windows = after_windows = None
        if name == "original":
            listed = decode_image(data, draft_side=0)
            after_windows = _rows([h.value for h in window_hashes(listed, min_quality)])
            before = window_hashes(listed, min_quality, BEFORE_WINDOWS)
            before_windows = _rows([h.value for h in before])
        common = (
            index,
            name,
            _rows(hashed.pdq_dihedral),
            int(hashed.pdq.quality or 0),
            np.frombuffer(hashed.phash.value, dtype=np.uint8),
        )
        out.append(
            (
                Upload(*common, _rows(plain), before_windows, phash_extra),
                Upload(*common, _rows(parts.pdq), after_windows, phash_extra),
                len(parts.pdq) - len(plain),
            )
        )
    return out


def report(
    split: str, before: Distances, after: Distances, names: Sequence[str], window: int
) -> None:
    settings = Settings()
    pdq, phash = settings.pdq_threshold, settings.phash_threshold
    count = len(set(after.photo.tolist()))
    print(f"\n## {split}: {count} photos\n")
    print("| edit | before | after | target |\n|---|---:|---:|---:|")
    for t in names:
        cells = [either_recall(d, t, pdq, phash, window) for d in (before, after)]
        target = f"≥ {TARGETS[t]:.2f}" if t in TARGETS else ""
        shown = [f"**{c:.0%}**" if t in TARGETS else f"{c:.0%}" for c in cells]
        print(f"| {t} | " + " | ".join(shown) + f" | {target} |")
    # The listed side: each photo's original and earlier-tier versions (victims list
    # edited copies too), never a collage or a paste, whose unrelated fillers recur
    # from photo to photo and are no photo of anyone's.
    listed = ~np.isin(after.transform, [t.name for t in PARTIAL])
    other = (after.photo[:, None] != after.photo[None, :]) & listed[None, :]
    counts, nearest = [], []
    for d in (before, after):
        hit = (d.pdq <= pdq) | (d.phash <= phash) | (np.asarray(d.window) <= window)
        counts.append(int(hit[other].sum()))
    pairs = int(other.sum())
    print(f"| false matches in {pairs:,} pairs | {counts[0]} | {counts[1]} | 0 |")
    for kind in ("pdq", "window", "phash"):
        values = [d.table(kind)[other] for d in (before, after)]
        values = [v[v < UNMATCHABLE] for v in values]
        nearest.append(f"{kind} {values[0].min()} / {values[1].min()}")
    print("\nnearest distance to a distinct photo (before / after): " + ", ".join(nearest))
    genuine = np.minimum(after.genuine("pdq"), after.genuine("window"))
    missed: dict[str, list[str]] = {}
    for row in range(len(after.photo)):
        t = str(after.transform[row])
        if t in TARGETS and genuine[row] > window and after.genuine("phash")[row] > phash:
            missed.setdefault(t, []).append(f"{row_name(after, row)} {genuine[row]}")
    for t, rows in missed.items():
        print(f"  missed {t}: {', '.join(rows)}")


_PHOTO_NAMES: list[str] = []


def row_name(d: Distances, row: int) -> str:
    return _PHOTO_NAMES[int(d.photo[row])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--split", choices=("tune", "holdout", "fresh"), action="append", help="only these splits"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--earlier", default=EARLIER, help="earlier-tier edits also made")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE)
    args = parser.parse_args(argv)
    settings = Settings()
    splits = args.split or ["tune", "holdout", "fresh"]
    photos, missing = load_registry(splits, args.max_side, registry=(*REGISTRY, *FRESH))
    for note in missing:
        print(f"warning: photo not available, skipped: {note}")
    if len(fillers()) == 12 and not os.path.isdir("/usr/share/wallpapers/Canopee"):
        print("warning: filler packages missing; collages and pastes use generated textures")
    _PHOTO_NAMES[:] = [p.name for p in photos]
    started = time.perf_counter()
    tasks = [(i, p, settings.pdq_min_quality, args.earlier) for i, p in enumerate(photos)]
    with ProcessPoolExecutor(max(1, args.jobs)) as pool:
        per_photo = list(pool.map(hash_photo, tasks))
    rows = [r for group in per_photo for r in group]
    before = distances([b for b, _, _ in rows], settings.pdq_min_quality)
    after = distances([a for _, a, _ in rows], settings.pdq_min_quality)
    originals = [(b, a) for b, a, _ in rows if a.transform == "original"]
    earlier = {"original", *(t.name for t in by_name(args.earlier))}
    listed_before = np.mean([len(b.pdq_windows) for b, _ in originals if b.pdq_windows is not None])
    listed_after = np.mean([len(a.pdq_windows) for _, a in originals if a.pdq_windows is not None])
    print(
        f"{len(photos)} photos, {len(rows):,} uploads hashed in "
        f"{time.perf_counter() - started:.0f} s; windows listed per photo: "
        f"{listed_before:.1f} before, {listed_after:.1f} after; region parts per upload: "
        f"{np.mean([n for _, _, n in rows]):.2f} (the originals and the earlier tiers: "
        f"{np.mean([n for _, a, n in rows if a.transform in earlier]):.2f}); "
        f"PDQ ≤ {settings.pdq_threshold}, windows ≤ {settings.pdq_window_threshold}, "
        f"pHash ≤ {settings.phash_threshold}"
    )
    names = ["original"] + [t.name for t in by_name(args.earlier)] + [t.name for t in PARTIAL]
    for split in splits:
        keep = sorted({i for i, p in enumerate(photos) if p.split == split})
        if len(keep) >= 2:
            report(
                split, before.subset(keep), after.subset(keep), names, settings.pdq_window_threshold
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
