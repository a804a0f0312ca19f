"""What crop matching (service/media/crops.py, setting crop_matching) adds to a check and to the
list, measured side by side in one run.

Part "hash": the check path's work on one upload with crop_matching=0 (decode, PDQ with
its 8 dihedral variants, pHash, digests) and =1 (the same plus the candidate parts:
border and box search, the parts' PDQ and the whole-photo parts' pHash), for a plain
photo and a letterboxed one with a
logo box, at 0.3, 2 and 12 megapixels as JPEG; and the victim's side, `hashguard hash`
with and without sub-window hashes. Median of --repeats, the two settings taking turns.
Part "index": the index lookups of one check against a list of --photos photos (random
PDQ hashes: one PDQ entry per photo, and with crop matching also len(DEFAULT_WINDOWS)
window entries per photo; one pHash entry per photo), with each setting's queries.
With --before REF the hash part also times crop matching as it was at git commit REF
(its borders.py, overlays.py and crops.py, from service/media/ or, before issue 14's
layout, service/; loaded from `git show` into a temporary package) taking turns with the
working tree's, so a change to crop matching is measured against its predecessor in one run.
Run: python -m loadtests.crop_cost [--repeats 7] [--photos 100000] [--part hash|index]
     [--before REF]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from loadtests.hash_cost import SIZES, SOURCE, source_photo
from loadtests.transforms import bars, caption_and_logo, encode
from service.config import Settings
from service.index import HammingIndex
from service.media.crops import DEFAULT_WINDOWS, candidate_queries, window_hashes
from service.media.decode import decode_image
from service.media.hashes import hash_decoded

MIN_QUALITY = Settings().pdq_min_quality
TYPICAL_PARTS, MOST_PARTS = 4, 9  # candidate parts of one upload (service.media.crops)
MOST_PHASH = 3  # whole-photo parts with a pHash: two readings of the bars, boxes painted


def _ms(runs: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each run, taking turns so a noisy neighbour hits them all alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for slot, run in zip(times, runs, strict=True):
            started = time.perf_counter()
            run()
            slot.append(time.perf_counter() - started)
    return [statistics.median(slot) * 1e3 for slot in times]


def check_off(data: bytes) -> object:
    return hash_decoded(decode_image(data), data)


def check_on(data: bytes) -> object:
    image = decode_image(data)
    return hash_decoded(image, data), candidate_queries(image, MIN_QUALITY)


def check_with(crops: ModuleType, data: bytes) -> object:
    image = decode_image(data)
    return hash_decoded(image, data), crops.candidate_queries(image, MIN_QUALITY)


def crops_at(ref: str) -> ModuleType:
    """service.media.crops as it was at git commit `ref`, with its own borders and overlays."""
    folder = Path(tempfile.mkdtemp(prefix="crop_cost_"))
    package = folder / "crops_before"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("borders", "overlays", "crops"):
        text = _file_at(ref, f"service/media/{name}.py") or _file_at(ref, f"service/{name}.py")
        for other in ("borders", "overlays"):  # in service/media/ since the layout of issue 14
            for module in (f"service.media.{other}", f"service.{other}"):
                text = text.replace(f"from {module} ", f"from crops_before.{other} ")
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(folder))
    return importlib.import_module("crops_before.crops")


def _file_at(ref: str, path: str) -> str:
    """The file at git commit `ref`, or "" if it had no such file."""
    shown = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True)
    return shown.stdout if shown.returncode == 0 else ""


def victim(data: bytes, windows: bool) -> object:
    image = decode_image(data, draft_side=0)
    hashed = hash_decoded(image, data)
    return (hashed, window_hashes(image, MIN_QUALITY)) if windows else hashed


def hash_part(repeats: int, before: ModuleType | None = None) -> None:
    photo, origin = source_photo(SOURCE)
    print(f"source photo: {origin}; JPEG q90; median of {repeats}, settings taking turns\n")
    head = (
        f"{'size':<7} {'upload':<26} {'check, off ms':>13} {'on ms':>7} {'added':>7} {'parts':>5}"
    )
    if before is not None:
        head += f" {'before: on ms':>13} {'added':>7} {'parts':>5}"
    print(head + f" {'hash (victim), no windows ms':>28} {'with windows ms':>15}")
    print("(parts: candidate PDQ queries + whole-photo pHash queries)")
    for size_name, size in SIZES.items():
        image = photo.resize(size, Image.Resampling.LANCZOS)
        uploads = {
            "plain": image,
            "letterbox + caption/logo": bars(0.3, False, (0, 0, 0), caption_and_logo(image)),
        }
        for name, upload in uploads.items():
            data = encode(upload, "JPEG", quality=90)
            runs = [partial(check_off, data), partial(check_on, data)]
            if before is not None:
                runs.append(partial(check_with, before, data))
            runs += [partial(victim, data, False), partial(victim, data, True)]
            timed = _ms(runs, repeats)
            off, on, bare, windows = timed[0], timed[1], timed[-2], timed[-1]
            image_now = decode_image(data)
            now = candidate_queries(image_now, MIN_QUALITY)
            line = (
                f"{size_name:<7} {name:<26} {off:>13.1f} {on:>7.1f} {on - off:>+7.1f} "
                f"{f'{len(now.pdq)}+{len(now.phash)}':>5}"
            )
            if before is not None:
                parts = _count(before.candidate_queries(image_now, MIN_QUALITY))
                line += f" {timed[2]:>13.1f} {timed[2] - off:>+7.1f} {parts:>5}"
            print(line + f" {bare:>28.1f} {windows:>15.1f}")


def _count(parts: object) -> str:
    """'PDQ+pHash' parts of either version of candidate_queries (a list: PDQ only)."""
    if isinstance(parts, list):
        return f"{len(parts)}+0"
    return f"{len(parts.pdq)}+{len(parts.phash)}"  # type: ignore[attr-defined]


def index_part(photos: int, repeats: int) -> None:
    """The index lookups of one check: 8 PDQ queries against `photos` PDQ entries, and
    with crop matching those 8 and the candidate parts against len(DEFAULT_WINDOWS)
    window entries per photo: TYPICAL_PARTS (3.2 per upload on the quality benchmark,
    rounded up) and MOST_PARTS (a framed upload read two ways, with a box painted over).
    Random hashes, indexes merged (flushed) before timing."""
    settings = Settings()
    rng = np.random.default_rng(7)
    factor = len(DEFAULT_WINDOWS)
    started = time.perf_counter()
    indexes = {}
    for name, count, nbytes in (
        ("pdq", photos, 32),
        ("window", photos * factor, 32),
        ("phash", photos, 8),
    ):
        index = HammingIndex(nbytes * 8)
        for start in range(0, count, 1_000_000):
            rows = min(1_000_000, count - start)
            ids = np.arange(start, start + rows, dtype=np.int64)
            index.add(ids, rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8))
        index.flush()
        indexes[name] = index
    print(
        f"\nlist: {photos:,} photos = {photos:,} PDQ entries and {photos * factor:,} window "
        f"entries ({factor} per photo), built in {time.perf_counter() - started:.0f} s; "
        f"index memory {indexes['pdq'].nbytes() / 2**20:.0f} MiB and "
        f"{indexes['window'].nbytes() / 2**20:.0f} MiB"
    )
    typical, most = 8 + TYPICAL_PARTS, 8 + MOST_PARTS
    upload = rng.integers(0, 256, size=(most, 32), dtype=np.uint8)
    phashes = rng.integers(0, 256, size=(1 + MOST_PHASH, 8), dtype=np.uint8)
    pdq_r, window_r = settings.pdq_threshold, settings.pdq_window_threshold
    phash_r = settings.phash_threshold
    off, on_windows, on_most, at_31, ph_off, ph_on = _ms(
        [
            partial(indexes["pdq"].search, upload[:8], pdq_r),
            partial(indexes["window"].search, upload[:typical], window_r),
            partial(indexes["window"].search, upload, window_r),
            partial(indexes["window"].search, upload[:typical], 31),
            partial(indexes["phash"].search, phashes[:1], phash_r),
            partial(indexes["phash"].search, phashes, phash_r),
        ],
        repeats,
    )
    print(
        f"one check's lookups: off: 8 PDQ at {pdq_r} {off:.2f} ms; on adds {typical} window "
        f"queries at {window_r}: {on_windows:.2f} ms (at 31: {at_31:.2f} ms; "
        f"{most} queries, the most an upload makes: {on_most:.2f} ms)"
    )
    print(
        f"pHash lookups at {phash_r}: the upload's own 1 query {ph_off:.3f} ms; with the "
        f"whole-photo parts' pHash ({1 + MOST_PHASH} queries, the most an upload makes) "
        f"{ph_on:.3f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--part", choices=("hash", "index"), help="only this part")
    parser.add_argument("--before", metavar="REF", help="also time crop matching at this commit")
    args = parser.parse_args(argv)
    if args.part in (None, "hash"):
        hash_part(args.repeats, crops_at(args.before) if args.before else None)
    if args.part in (None, "index"):
        index_part(args.photos, args.repeats * 10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
