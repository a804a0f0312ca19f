"""What region matching (issue 18: service/media/regions.py, deskew.py, panels.py) adds to
an image check, per stage, against today's crop matching, in one run; and the list.

Part "hash": for a plain 1080p JPEG upload and for a rotated one, a 2x2 collage and a phone
screenshot holding the photo, the check path's image work with crop matching off, with
today's crop matching (candidate parts without regions) and now (with regions), the
settings taking turns, median of --repeats; then the stages region matching adds, timed
apart: reading the rotation from the corners, finding panels, hashing the parts found.
Part "index": the window lookups of one check against --photos photos listed with the
windows before issue 18 and now (random hashes), with today's queries and with the
region parts added.

    python -m loadtests.region_cost [--repeats 9] [--photos 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from loadtests.hash_cost import SOURCE, source_photo
from loadtests.partial_transforms import BLACK, collage, phone_screenshot, rotate
from loadtests.transforms import encode
from service.config import Settings
from service.index import HammingIndex
from service.media.crops import (
    DEFAULT_WINDOWS,
    HASH_SIDE,
    OFF_CENTRE_WINDOWS,
    candidate_queries,
    reduced,
)
from service.media.decode import decode_image
from service.media.deskew import rotation_angle
from service.media.hashes import hash_decoded
from service.media.panels import panel_boxes
from service.media.regions import region_queries

MIN_QUALITY = Settings().pdq_min_quality


def _ms(runs: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each run, taking turns so a noisy neighbour hits them all alike."""
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for slot, run in zip(times, runs, strict=True):
            started = time.perf_counter()
            run()
            slot.append(time.perf_counter() - started)
    return [statistics.median(slot) * 1e3 for slot in times]


def _check(data: bytes, crops: bool, regions: bool) -> int:
    image = decode_image(data)
    hash_decoded(image, data)
    if not crops:
        return 0
    return len(candidate_queries(image, MIN_QUALITY, regions=regions).pdq)


def hash_part(repeats: int) -> dict[str, int]:
    photo, source = source_photo(SOURCE)
    plain = photo.resize((1920, 1080))
    small_photo = photo.resize((960, 720))
    uploads = {
        "plain 1080p": encode(plain, "JPEG", quality=90),
        "rotated 5°, 1080p": encode(rotate(5, BLACK, plain), "JPEG", quality=90),
        "2x2 collage, 1080 px": encode(collage(2, 1, 12, small_photo), "JPEG", quality=85),
        "phone screenshot": encode(phone_screenshot(small_photo), "JPEG", quality=85),
    }
    print(f"source photo: {source}; median of {repeats}, settings taking turns\n")
    print(
        "| upload | crop matching off ms | today (crop matching) ms | now (+ regions) ms "
        "| now / today | rotation read ms | panels found ms | region parts hashed ms "
        "| region parts |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    parts = {}
    for name, data in uploads.items():
        off, today, now = _ms(
            [
                lambda d=data: _check(d, False, False),
                lambda d=data: _check(d, True, False),
                lambda d=data: _check(d, True, True),
            ],
            repeats,
        )
        image = decode_image(data)
        small = np.asarray(reduced(image))
        angle_ms, panels_ms, regions_ms = _ms(
            [
                lambda s=small: rotation_angle(s),
                lambda s=small: panel_boxes(s),
                lambda i=image, s=small: region_queries(i, s, MIN_QUALITY, HASH_SIDE),
            ],
            repeats,
        )
        found = len(region_queries(image, small, MIN_QUALITY, HASH_SIDE))
        parts[name] = found
        hashed = max(0.0, regions_ms - angle_ms - panels_ms)
        print(
            f"| {name} | {off:.1f} | {today:.1f} | {now:.1f} | {now / today:.2f}x "
            f"| {angle_ms:.1f} | {panels_ms:.1f} | {hashed:.1f} | {found} |"
        )
    return parts


def index_part(photos: int, repeats: int, extra: int) -> None:
    """Window lookups of one check: today's queries (8 dihedral + 3 parts) against the
    windows listed before issue 18, and with `extra` region parts against today's list."""
    rng = np.random.default_rng(18)
    threshold = Settings().pdq_window_threshold
    before = len(DEFAULT_WINDOWS) - len(OFF_CENTRE_WINDOWS)
    indexes = {}
    for name, per_photo in (("before", before), ("now", len(DEFAULT_WINDOWS))):
        count = photos * per_photo
        index = HammingIndex(256)
        index.add(np.arange(count, dtype=np.int64), rng.integers(0, 256, (count, 32), np.uint8))
        index.flush()
        indexes[name] = index
    today = rng.integers(0, 256, (11, 32), np.uint8)
    more = rng.integers(0, 256, (11 + extra, 32), np.uint8)
    timed = _ms(
        [
            lambda: indexes["before"].search(today, threshold),
            lambda: indexes["now"].search(today, threshold),
            lambda: indexes["now"].search(more, threshold),
        ],
        repeats,
    )
    print(
        f"\nwindow index, {photos:,} photos: {before} windows per photo before "
        f"({photos * before:,} entries, {indexes['before'].nbytes() / 2**20:.0f} MiB), "
        f"{len(DEFAULT_WINDOWS)} now ({photos * len(DEFAULT_WINDOWS):,} entries, "
        f"{indexes['now'].nbytes() / 2**20:.0f} MiB); one check's window lookups at "
        f"{threshold}: 11 queries against the list before {timed[0]:.2f} ms, against the "
        f"list now {timed[1]:.2f} ms, with {extra} region parts more {timed[2]:.2f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--photos", type=int, default=20_000)
    parser.add_argument("--part", choices=("hash", "index"))
    args = parser.parse_args(argv)
    Image.init()
    parts = hash_part(args.repeats) if args.part != "index" else {"collage": 4}
    if args.part != "hash":
        index_part(args.photos, args.repeats, max(parts.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
