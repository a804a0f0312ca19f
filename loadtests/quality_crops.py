"""Crop matching's benchmark (issue 7): recall on crops, frames and captions before and
after service/media/crops.py, on the tune and holdout photos apart, and its false matches.

Every upload is hashed as the check path hashes it; "before" matches its whole-picture
PDQ and pHash against each listed version's PDQ and pHash (the service with
crop_matching=0); "after" adds the listed original's sub-window hashes to the list and
looks them up with the upload's dihedral PDQ hashes and its candidate parts (photo inside
a frame, solid box painted over, top and bottom strips) (crop_matching=1), with the
sub-window threshold, and looks up the pHash of the whole-photo parts (photo inside a
frame, boxes painted over) among the listed pHashes at the pHash threshold. The column
"after, PDQ parts only" leaves those pHash lookups out (crop matching before they were
added). False matches count every upload, with all its queries, against every version of
every other photo (its whole-picture PDQ and pHash) and that photo's sub-window hashes.

    python -m loadtests.quality_crops                 # both splits, the report
    python -m loadtests.quality_crops --split tune    # tuning: never looks at holdout
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Sequence

import numpy as np

from loadtests.photos import DEFAULT_MAX_SIDE, load_registry
from loadtests.quality import hash_all
from loadtests.quality_metrics import (
    UNMATCHABLE,
    Distances,
    distances,
    either_false_matches,
    either_recall,
)
from loadtests.transforms import by_name
from service.config import Settings
from service.media.crops import DEFAULT_WINDOWS

# The targets, on photos the tuning never saw.
TARGETS = {
    "crop 5%": 0.95,
    "crop 10%": 0.95,
    "crop 20%": 0.80,
    "letterbox 30%": 0.99,
    "caption+logo": 0.90,
}


def report(
    name: str,
    before: Distances,
    pdq_parts: Distances,
    after: Distances,
    transforms: Sequence[str],
    pdq: int,
    phash: int,
    windows: Sequence[int],
    chosen: int,
    photo_names: Sequence[str],
    unlistable: set[int],
) -> None:
    print(f"\n## {name}: {len(set(before.photo.tolist()))} photos\n")
    head = ["before", f"after, PDQ parts only, windows ≤{chosen}"]
    head += [*[f"after, windows ≤{w}" for w in windows], "target"]
    print("| transform | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    means = np.zeros(len(head) - 1)
    for t in transforms:
        cells = [either_recall(before, t, pdq, phash)]
        cells += [either_recall(pdq_parts, t, pdq, phash, chosen)]
        cells += [either_recall(after, t, pdq, phash, w) for w in windows]
        means += cells
        target = f"≥ {TARGETS[t]:.2f}" if t in TARGETS else ""
        shown = [f"**{c:.0%}**" if t in TARGETS else f"{c:.0%}" for c in cells]
        print(f"| {t} | " + " | ".join(shown) + f" | {target} |")
    means /= len(transforms)
    print("| mean of transforms | " + " | ".join(f"{m:.0%}" for m in means) + " | |")
    pairs = len(before.impostor("pdq"))
    counts = [either_false_matches(before, pdq, phash)[1]]
    counts += [either_false_matches(pdq_parts, pdq, phash, chosen)[1]]
    counts += [either_false_matches(after, pdq, phash, w)[1] for w in windows]
    print(f"| false matches in {pairs:,} pairs | " + " | ".join(map(str, counts)) + " | 0 |")
    if unlistable:
        kept = [i for i in sorted(set(after.photo.tolist())) if i not in unlistable]
        shown = ", ".join(photo_names[i] for i in sorted(unlistable))
        cells = [
            f"{t} {either_recall(after.subset(kept), t, pdq, phash, chosen):.0%}" for t in TARGETS
        ]
        print(
            f"\ntargets without {shown} (own PDQ quality below the submission minimum: "
            f"the service refuses that PDQ, so nobody can list it), windows ≤{chosen}, "
            f"{len(kept)} photos: " + "; ".join(cells)
        )
    win = after.impostor("window")
    win = win[win < UNMATCHABLE]
    full = after.impostor("pdq")
    whole_ph, parts_ph = before.impostor("phash"), after.impostor("phash")
    print(
        f"\nnearest distinct pair: PDQ {full[full < UNMATCHABLE].min()}, sub-window "
        f"{win.min()} (0.01st percentile {np.percentile(win, 0.01):.0f}); pHash "
        f"{whole_ph.min()} whole upload only, {parts_ph.min()} with the part queries "
        f"(0.01st percentile {np.percentile(parts_ph, 0.01):.0f}; threshold {phash}, "
        f"margin {parts_ph.min() - phash - 1} bits); "
        f"genuine uploads missed at windows ≤{chosen} (nearest PDQ/window, pHash):"
    )
    genuine = np.minimum(after.genuine("pdq"), after.genuine("window"))
    genuine_ph = after.genuine("phash")
    missed = ~(
        (after.genuine("pdq") <= pdq) | (after.genuine("phash") <= phash) | (genuine <= chosen)
    )
    counts_by: dict[str, list[tuple[int, str]]] = {}
    for row in np.flatnonzero(missed):
        seen = (int(genuine[row]), photo_names[after.photo[row]], int(genuine_ph[row]))
        counts_by.setdefault(str(after.transform[row]), []).append(seen)
    for t, found in sorted(counts_by.items()):
        shown = ", ".join(f"{name} {dist}/{ph}" for dist, name, ph in sorted(found)[:6])
        print(f"  {t}: {len(found)} ({shown})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("tune", "holdout"), help="only this split")
    parser.add_argument("--transforms", help="comma-separated transform names (default: all)")
    parser.add_argument("--windows", default="31,38,45", help="sub-window thresholds shown")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE)
    args = parser.parse_args(argv)
    settings = Settings()
    transforms = by_name(args.transforms)
    photos, missing = load_registry(max_side=args.max_side)
    for note in missing:
        print(f"warning: photo not available, skipped: {note}")
    if args.split:
        photos = [p for p in photos if p.split == args.split]
    started = time.perf_counter()
    uploads = hash_all(photos, transforms, settings.pdq_min_quality, args.jobs, crops=True)[0]
    plain = [
        dataclasses.replace(u, pdq_extra=None, pdq_windows=None, phash_extra=None) for u in uploads
    ]
    pdq_only = [dataclasses.replace(u, phash_extra=None) for u in uploads]
    after = distances(uploads, settings.pdq_min_quality)
    pdq_parts = distances(pdq_only, settings.pdq_min_quality)
    before = distances(plain, settings.pdq_min_quality)
    per_photo = np.mean([len(u.pdq_windows) for u in uploads if u.pdq_windows is not None])
    extra = np.mean([len(u.pdq_extra) for u in uploads if u.pdq_extra is not None])
    extra_ph = np.mean([len(u.phash_extra) for u in uploads if u.phash_extra is not None])
    print(
        f"{len(photos)} photos, {len(transforms)} transforms, {len(uploads):,} uploads hashed "
        f"in {time.perf_counter() - started:.0f} s; {len(DEFAULT_WINDOWS)} sub-windows "
        f"configured, {per_photo:.1f} listed per photo on average (flat ones skipped); "
        f"{extra:.1f} candidate parts (PDQ) and {extra_ph:.2f} whole-photo parts' pHash "
        f"per upload on average; "
        f"PDQ ≤ {settings.pdq_threshold}, pHash ≤ {settings.phash_threshold}"
    )
    windows = [int(x) for x in args.windows.split(",")]
    chosen = settings.pdq_window_threshold
    names = ["original"] + [t.name for t in transforms]
    for split in ("tune", "holdout"):
        ix = sorted({i for i, p in enumerate(photos) if p.split == split})
        rows = [j for j, u in enumerate(uploads) if photos[u.photo].split == split]
        if len(ix) < 2:
            continue
        keep = sorted({uploads[j].photo for j in rows})
        report(
            split,
            before.subset(keep),
            pdq_parts.subset(keep),
            after.subset(keep),
            names,
            settings.pdq_threshold,
            settings.phash_threshold,
            windows,
            chosen,
            [p.name for p in photos],
            {
                u.photo
                for u in uploads
                if u.transform == "original" and u.pdq_quality < settings.pdq_min_quality
            }
            & set(keep),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
