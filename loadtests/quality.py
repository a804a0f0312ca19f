"""Detection-quality benchmark: how well PDQ and pHash catch edited re-uploads of a photo
without matching other photos, at every threshold, with the service's own hashing.

For each photo (loadtests/photos.py) every transform (loadtests/transforms.py) makes the
bytes a re-uploader would send; service.media hashes them exactly as a check does.
Recall: the share of a transform's uploads within the threshold of their own photo's
listed hash. False-match rate: the share of (upload, other photo's listed hash) pairs
within the threshold, over every pair of distinct photos and all their transforms.

Run on the registered photos (tune and holdout splits reported apart):
    python -m loadtests.quality --plots docs/quality
Run on your own folder of photos:
    python -m loadtests.quality --photos ~/Pictures
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from loadtests.photos import DEFAULT_MAX_SIDE, LoadedPhoto, load_folder, load_registry
from loadtests.quality_metrics import (
    UNMATCHABLE,
    Distances,
    Upload,
    distances,
    either_false_matches,
    either_recall,
    false_match_curve,
    false_match_rate,
    fit_tail,
    recall,
    recall_curve,
    suggest_threshold,
)
from loadtests.transforms import Transform, by_name, encode
from service.config import Settings
from service.media.crops import candidate_queries, window_hashes
from service.media.decode import DEFAULT_DRAFT_SIDE, decode_image
from service.media.hashes import hash_decoded

ALGORITHMS = {"pdq": 256, "phash": 64}


def hash_uploads(
    args: tuple[int, LoadedPhoto, str, tuple[int, ...], int, bool],
) -> list[list[Upload]]:
    """The original (lossless PNG) and every transform of one photo, hashed once per JPEG
    decoder setting (draft side, 0 = full decode). Transforms travel by name: a worker
    process looks them up in the registry. With `crops`, each upload also carries the
    check path's candidate parts, and the original also the sub-window hashes its victim
    lists (from the full decode, as `hashguard hash` does; only for the original, which is
    what victims submit, and because they cost 24 PDQ hashes per version)."""
    index, photo, names, draft_sides, min_quality, crops = args
    transforms = by_name(names)
    made = [("original", encode(photo.image))]
    made += [(t.name, t.apply(photo.image)) for t in transforms]
    per_decoder = []
    for side in draft_sides:
        uploads = []
        for name, data in made:
            image = decode_image(data, draft_side=side)
            hashed = hash_decoded(image, data)
            extra = windows = phash_extra = None
            if crops:
                parts = candidate_queries(image, min_quality)
                extra = _rows(parts.pdq)
                phash_extra = _rows([v for v in parts.phash if v != hashed.phash.value], 8)
                if name == "original":
                    listed = decode_image(data, draft_side=0) if side else image
                    windows = _rows([h.value for h in window_hashes(listed, min_quality)])
            uploads.append(
                Upload(
                    index,
                    name,
                    _rows(hashed.pdq_dihedral),
                    int(hashed.pdq.quality or 0),
                    np.frombuffer(hashed.phash.value, dtype=np.uint8),
                    extra,
                    windows,
                    phash_extra,
                )
            )
        per_decoder.append(uploads)
    return per_decoder


def _rows(values: Sequence[bytes], width: int = 32) -> np.ndarray:
    """Hashes as a (n, width) uint8 array (PDQ: 32 bytes, pHash: 8)."""
    return np.frombuffer(b"".join(values), dtype=np.uint8).reshape(len(values), width)


def measure(
    photos: Sequence[LoadedPhoto],
    transforms: list[Transform],
    min_quality: int,
    jobs: int,
    draft_sides: tuple[int, ...] = (DEFAULT_DRAFT_SIDE,),
    crops: bool = False,
) -> list[Distances]:
    """Distances for each decoder setting, from the same transformed bytes."""
    per_decoder = hash_all(photos, transforms, min_quality, jobs, draft_sides, crops)
    return [distances(uploads, min_quality) for uploads in per_decoder]


def hash_all(
    photos: Sequence[LoadedPhoto],
    transforms: list[Transform],
    min_quality: int,
    jobs: int,
    draft_sides: tuple[int, ...] = (DEFAULT_DRAFT_SIDE,),
    crops: bool = False,
) -> list[list[Upload]]:
    """Every photo's uploads, hashed once per decoder setting, in `jobs` processes."""
    names = ",".join(t.name for t in transforms)
    tasks = [(i, p, names, draft_sides, min_quality, crops) for i, p in enumerate(photos)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            per_photo = list(pool.map(hash_uploads, tasks))
    else:
        per_photo = [hash_uploads(t) for t in tasks]
    return [[u for group in per_photo for u in group[k]] for k in range(len(draft_sides))]


def print_decoder_comparison(
    variants: dict[int, Distances], transforms: list[Transform], chosen: tuple[int, int]
) -> None:
    """Recall per transform and false matches for each JPEG decoder setting, side by side."""
    sides = list(variants)
    label = {s: ("full" if s == 0 else f"draft {s}") for s in sides}
    base = variants[sides[0]]
    head = [f"PDQ ≤{chosen[0]}, {label[s]}" for s in sides]
    head += [f"either, {label[s]}" for s in sides]
    head += [f"PDQ bits moved, {label[s]} vs {label[sides[0]]} (max)" for s in sides[1:]]
    print("| transform | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    for t in transforms:
        cells = [f"{recall(variants[s], 'pdq', t.name, chosen[0]):.0%}" for s in sides]
        cells += [f"{either_recall(variants[s], t.name, *chosen):.0%}" for s in sides]
        rows = base.transform == t.name
        for s in sides[1:]:
            moved = np.abs(variants[s].genuine("pdq")[rows] - base.genuine("pdq")[rows])
            cells.append(str(int(moved[moved < UNMATCHABLE // 2].max(initial=0))))
        print(f"| {t.name} | " + " | ".join(cells) + " |")
    for s in sides:
        rate, hits = either_false_matches(variants[s], *chosen)
        nearest = int(variants[s].impostor("pdq").min())
        print(
            f"{label[s]}: {hits} false matches by either rule ({rate:.1e}); "
            f"nearest distinct PDQ pair {nearest}"
        )


def _pair(text: str) -> tuple[int, int]:
    """'31/10' -> (31, 10): a PDQ and a pHash threshold."""
    pdq, _, phash = text.partition("/")
    return int(pdq), int(phash)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def print_recall_table(
    d: Distances,
    transforms: list[Transform],
    pdq: list[int],
    phash: list[int],
    chosen: tuple[int, int],
    others: Sequence[tuple[int, int]] = (),
) -> None:
    pairs = [chosen, *others]
    head = [f"PDQ ≤{t}" for t in pdq] + [f"pHash ≤{t}" for t in phash]
    head += [f"either ({a}/{b})" for a, b in pairs]
    print("| transform | " + " | ".join(head) + " |")
    print("|---|" + "---:|" * len(head))
    rows = [("original", "")] + [(t.name, t.family) for t in transforms]
    totals = np.zeros(len(head))
    for name, _family in rows:
        cells = [recall(d, "pdq", name, t) for t in pdq]
        cells += [recall(d, "phash", name, t) for t in phash]
        cells += [either_recall(d, name, *pair) for pair in pairs]
        if name != "original":
            totals += cells
        print(f"| {name} | " + " | ".join(f"{c:.0%}" for c in cells) + " |")
    mean = totals / max(len(transforms), 1)
    print("| **mean of transforms** | " + " | ".join(f"**{c:.0%}**" for c in mean) + " |")


def print_false_match_table(
    d: Distances,
    pdq: list[int],
    phash: list[int],
    chosen: tuple[int, int],
    list_size: int,
    others: Sequence[tuple[int, int]] = (),
) -> None:
    pairs = len(d.impostor("pdq"))
    print(f"pairs of (upload, a version of another photo as the listed hash): {pairs:,}\n")
    print(
        f"| algorithm | threshold | false matches | rate per pair | modelled rate | "
        f"modelled false matches per upload, {list_size:,}-entry list |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for algorithm, thresholds in (("pdq", pdq), ("phash", phash)):
        fit = fit_tail(d.impostor(algorithm))
        for t in thresholds:
            rate, hits = false_match_rate(d, algorithm, t)
            model = f"{fit.rate(t):.0e} | {fit.rate(t) * list_size:.0e}" if fit else "- | -"
            print(f"| {algorithm} | {t} | {hits} | {rate:.1e} | {model} |")
    for pair in (chosen, *others):
        rate, hits = either_false_matches(d, *pair)
        print(f"| either | {pair[0]} / {pair[1]} | {hits} | {rate:.1e} | | |")
    print()
    for algorithm in ALGORITHMS:
        impostor = d.impostor(algorithm)
        impostor = impostor[impostor < UNMATCHABLE]
        fit = fit_tail(impostor)
        model = (
            f"log10(rate) = {fit.intercept:.2f} + {fit.slope:.3f} x threshold "
            f"(fitted from {fit.lowest_measured} up)"
            if fit
            else "too few pairs to model"
        )
        print(
            f"{algorithm}: nearest distinct pair {impostor.min()}, 0.01st percentile "
            f"{np.percentile(impostor, 0.01):.0f}, median {np.median(impostor):.0f}; "
            f"tail model {model}"
        )


def print_failures(
    d: Distances, names: Sequence[str], chosen: tuple[int, int], limit: int = 12
) -> None:
    """The edited uploads the chosen thresholds miss, closest first: what to improve."""
    genuine_pdq, genuine_phash = d.genuine("pdq"), d.genuine("phash")
    missed = (genuine_pdq > chosen[0]) & (genuine_phash > chosen[1])
    order = np.argsort(genuine_pdq[missed], kind="stable")
    rows = np.flatnonzero(missed)[order]
    print(f"missed by either rule: {missed.sum()} of {len(d.photo)} uploads")
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(d.transform[row])] = counts.get(str(d.transform[row]), 0) + 1
    print("  by transform: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for row in rows[:limit]:
        pdq = int(genuine_pdq[row])
        print(
            f"  {names[d.photo[row]]:<24} {d.transform[row]:<16} "
            f"PDQ {'low quality' if pdq >= UNMATCHABLE else pdq}, pHash {genuine_phash[row]}"
        )


def plot(
    results: dict[str, Distances],
    transforms: list[Transform],
    chosen: tuple[int, int],
    out: Path,
    budget: float,
) -> list[Path]:
    """Trade-off curves, distance histograms and per-transform recall, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    names = [t.name for t in transforms]
    limit = {"pdq": 128, "phash": 40}
    chosen_of = {"pdq": chosen[0], "phash": chosen[1]}

    splits = {k: v for k, v in results.items() if k != "all"} or results
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, (algorithm, bits) in zip(axes, ALGORITHMS.items(), strict=True):
        xs = np.arange(limit[algorithm] + 1)
        rates = ax.twinx()
        for split, d in splits.items():
            style = "-" if split == "tune" else "--"
            curve = recall_curve(d, algorithm, names, bits).mean(axis=0)[xs]
            ax.plot(xs, curve, style, color="tab:blue", label=f"mean recall, {split}")
            fmr = false_match_curve(d, algorithm, bits)[xs]
            shown = np.where(fmr > 0, fmr, np.nan)
            rates.plot(xs, shown, style, color="tab:red", label=f"false-match rate, {split}")
        fit = fit_tail(splits.get("tune", next(iter(splits.values()))).impostor(algorithm))
        if fit is not None:
            model = [fit.rate(int(x)) for x in xs]
            rates.plot(xs, model, ":", color="tab:red", label="tail model (tune)")
        rates.axhline(budget, color="grey", lw=0.8, ls="-.")
        rates.text(xs[1], budget * 2, "budget per pair", fontsize=8, color="grey")
        rates.set_yscale("log")
        rates.set_ylim(1e-16, 1)
        rates.set_ylabel("false-match rate per pair (log)", color="tab:red")
        ax.axvline(chosen_of[algorithm], color="black", lw=0.8)
        ax.text(chosen_of[algorithm] + 0.5, 0.03, f"default {chosen_of[algorithm]}", fontsize=9)
        ax.set_title(f"{algorithm.upper()} ({bits} bits), {len(names)} edits")
        ax.set_xlabel("threshold (Hamming distance)")
        ax.set_ylabel("mean recall", color="tab:blue")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        lines = ax.get_legend_handles_labels()
        more = rates.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="center right")
    fig.tight_layout()
    written.append(out / "tradeoff.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, algorithm in zip(axes, ALGORITHMS, strict=True):
        d = results.get("all") or next(iter(results.values()))
        genuine = d.genuine(algorithm)[d.transform != "original"]
        impostor = d.impostor(algorithm)
        bins = np.arange(0, ALGORITHMS[algorithm] + 2) - 0.5
        ax.hist(
            genuine[genuine < UNMATCHABLE],
            bins=bins,
            color="tab:blue",
            alpha=0.7,
            density=True,
            label="same photo, edited",
        )
        ax.hist(
            impostor[impostor < UNMATCHABLE],
            bins=bins,
            color="tab:red",
            alpha=0.6,
            density=True,
            label="different photos",
        )
        ax.axvline(chosen_of[algorithm], color="black", lw=0.8)
        ax.set_title(f"{algorithm.upper()} distance distributions")
        ax.set_xlabel("Hamming distance")
        ax.set_ylabel("share of pairs")
        ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / "distances.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    d = results.get("all") or next(iter(results.values()))
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.5))
    y = np.arange(len(names))
    bars = {
        f"PDQ ≤{chosen[0]}": [recall(d, "pdq", n, chosen[0]) for n in names],
        f"pHash ≤{chosen[1]}": [recall(d, "phash", n, chosen[1]) for n in names],
        "either (the service)": [either_recall(d, n, *chosen) for n in names],
    }
    for i, (label, values) in enumerate(bars.items()):
        ax.barh(y + (i - 1) * 0.27, values, height=0.27, label=label)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("recall (share of edited uploads matched to their photo)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Recall per edit, all {len(set(d.photo.tolist()))} photos", pad=28)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    written.append(out / "recall_by_transform.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--photos", type=Path, help="a folder of your own photos instead of the registry"
    )
    parser.add_argument(
        "--max-side", type=int, default=DEFAULT_MAX_SIDE, help="scale photos down to this long side"
    )
    parser.add_argument("--transforms", help="comma-separated transform names (default: all)")
    parser.add_argument("--pdq-thresholds", default="31,40,50,63,70")
    parser.add_argument("--phash-thresholds", default="6,8,10,12,14")
    parser.add_argument(
        "--pdq", type=int, default=Settings().pdq_threshold, help="threshold shown as the default"
    )
    parser.add_argument(
        "--phash",
        type=int,
        default=Settings().phash_threshold,
        help="threshold shown as the default",
    )
    parser.add_argument(
        "--also", default="53/0,31/10", help="other PDQ/pHash pairs to compare, e.g. 31/10,63/0"
    )
    parser.add_argument("--min-quality", type=int, default=Settings().pdq_min_quality)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--list-size", type=int, default=10_000_000, help="list size the budget is for"
    )
    parser.add_argument(
        "--budget", type=float, default=1e-6, help="modelled false matches per upload allowed"
    )
    parser.add_argument(
        "--draft-side",
        type=int,
        default=DEFAULT_DRAFT_SIDE,
        help="JPEG draft decode side, as the service uses (0 = full decode)",
    )
    parser.add_argument(
        "--compare-draft", default="", help="also hash with these draft sides, e.g. 0"
    )
    parser.add_argument("--plots", type=Path, help="write PNG plots into this folder")
    args = parser.parse_args(argv)
    transforms = by_name(args.transforms)
    started = time.perf_counter()
    if args.photos:
        photos = load_folder(args.photos, args.max_side)
        if len(photos) < 2:
            print(
                f"error: need at least 2 images in {args.photos}, found {len(photos)}",
                file=sys.stderr,
            )
            return 1
        missing: list[str] = []
    else:
        photos, missing = load_registry(max_side=args.max_side)
    for note in missing:
        print(f"warning: photo not available, skipped: {note}", file=sys.stderr)
    sides = (args.draft_side, *[x for x in _ints(args.compare_draft) if x != args.draft_side])
    measured = measure(photos, transforms, args.min_quality, args.jobs, sides)
    d = measured[0]
    splits = {"tune": [], "holdout": []}  # type: dict[str, list[int]]
    for i, p in enumerate(photos):
        splits[p.split].append(i)
    results = {s: d.subset(ix) for s, ix in splits.items() if len(ix) >= 2}
    results["all"] = d
    chosen = (args.pdq, args.phash)
    others = [_pair(x) for x in args.also.split(",") if x.strip()]
    pdq_t, phash_t = _ints(args.pdq_thresholds), _ints(args.phash_thresholds)
    names = [p.name for p in photos]
    print(
        f"{len(photos)} photos ({', '.join(f'{s} {len(ix)}' for s, ix in splits.items())}), "
        f"{len(transforms)} transforms, {len(d.photo):,} uploads hashed in "
        f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} cores; "
        f"PDQ matched with 8 dihedral variants, quality ≥ {args.min_quality}"
    )
    for split, sub in results.items():
        if split == "all" and len(results) > 1:
            continue
        print(f"\n## {split}: recall per transform\n")
        print_recall_table(sub, transforms, pdq_t, phash_t, chosen, others)
        print(f"\n## {split}: false matches\n")
        print_false_match_table(sub, pdq_t, phash_t, chosen, args.list_size, others)
    if len(measured) > 1:
        print("\n## JPEG decoding: the same uploads hashed with each decoder setting\n")
        print_decoder_comparison(dict(zip(sides, measured, strict=True)), transforms, chosen)
    print()
    print_failures(d, names, chosen)
    basis = results.get("tune", d)
    print(
        f"\nsuggested from the tune split: the largest threshold with no false match among its "
        f"{len(basis.impostor('pdq')):,} distinct pairs and at most {args.budget:g} modelled "
        f"false matches per upload against {args.list_size:,} entries:"
    )
    for algorithm, bits in ALGORITHMS.items():
        threshold = suggest_threshold(basis, algorithm, bits, args.list_size, args.budget)
        none = "none (not even 0 meets the budget, or too few pairs to model)"
        print(f"  {algorithm}: {none if threshold is None else threshold}")
    if args.plots:
        per_pair = args.budget / args.list_size
        for path in plot(results, transforms, chosen, args.plots, per_pair):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
