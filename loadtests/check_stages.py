"""An image check's server CPU stage by stage, crop matching off and on, in one run.

For a 1080p and a 12 MP JPEG (q90, a real photo, see loadtests/hash_cost.py) it times
what the server does for `CheckUpload(image)` (service/usecases/queries.py's
`image_queries` and the matcher), one stage at a time, the stages taking turns so a
noisy neighbour hits them alike (median of --repeats; each stage's CPU time of the
thread running it, ms, so time spent waiting for a core on a busy machine is not
counted):
  decode     header read (pixel cap) and decode_image, as the server calls them
  PDQ        pdqhash.compute of the decoded pixels (the upright hash alone)
  dihedral   pdqhash.compute_dihedral minus PDQ: the 7 other rotations/mirrors
  pHash      imagehash's pHash of the decoded image
  digests    SHA-256 and MD5 of the bytes
  parts      crop matching only: candidate_queries (bars, boxes, the photo inside its
             bars, strips: their PDQ and the whole-photo parts' pHash)
  search     the index lookups of the check: 8 PDQ queries against --photos PDQ entries,
             1 pHash query; with crop matching also the 8 PDQ queries and the parts'
             PDQ against len(DEFAULT_WINDOWS) window entries per photo and the parts'
             pHash (random hashes, the service's thresholds)
"whole" times the stages of one setting run back to back as one call, which is what the
stages should add up to. Not timed: gRPC and protobuf (the same for every image;
loadtests/concurrency_sweep measures a call's cost next to the health check) and the
policy (microseconds).
Run: python -m loadtests.check_stages [--repeats 9] [--photos 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import pdqhash
from PIL import Image

from loadtests.hash_cost import SOURCE, source_photo
from loadtests.transforms import encode
from service.config import Settings
from service.index import HammingIndex
from service.media.crops import DEFAULT_WINDOWS, Candidates, candidate_queries
from service.media.decode import DEFAULT_DRAFT_SIDE, decode_image
from service.media.decode_cost import decode_cost
from service.media.hashes import phash_bytes

SIZES = {"1080p": (1920, 1080), "12 MP": (4000, 3000)}
STAGES = ("decode", "PDQ", "dihedral", "pHash", "digests", "parts", "search")


def _medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CPU ms of each run (this thread's), taking turns."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.thread_time()
            run()
            times[name].append(time.thread_time() - started)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


class Lists:
    """The three indexes a check searches, filled with random hashes."""

    def __init__(self, photos: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.settings = Settings()
        self.pdq = self._index(rng, photos, 32)
        self.window = self._index(rng, photos * len(DEFAULT_WINDOWS), 32)
        self.phash = self._index(rng, photos, 8)

    @staticmethod
    def _index(rng: np.random.Generator, count: int, nbytes: int) -> HammingIndex:
        index = HammingIndex(nbytes * 8)
        for start in range(0, count, 1_000_000):
            rows = min(1_000_000, count - start)
            ids = np.arange(start, start + rows, dtype=np.int64)
            index.add(ids, rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8))
        index.flush()
        return index

    def search(self, dihedral: list[bytes], phash: bytes, parts: Candidates | None) -> None:
        s = self.settings
        pdq = np.frombuffer(b"".join(dihedral), dtype=np.uint8).reshape(-1, 32)
        self.pdq.search(pdq, s.pdq_threshold)
        phashes = [phash]
        if parts is not None:
            windows = b"".join([*dihedral, *parts.pdq])
            queries = np.frombuffer(windows, dtype=np.uint8).reshape(-1, 32)
            self.window.search(queries, s.pdq_window_threshold)
            phashes += [p for p in parts.phash if p != phash]
        queries = np.frombuffer(b"".join(phashes), np.uint8).reshape(-1, 8)
        self.phash.search(queries, s.phash_threshold)


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    decode_cost(data, max_pixels, DEFAULT_DRAFT_SIDE)  # the header read the server does
    return decode_image(data, max_pixels)


def _dihedral(image: Image.Image) -> list[bytes]:
    bits, _ = pdqhash.compute_dihedral(np.asarray(image))
    return [np.packbits(np.asarray(b, dtype=np.uint8)).tobytes() for b in bits]


def _digests(data: bytes) -> None:
    hashlib.sha256(data).digest()
    hashlib.md5(data, usedforsecurity=False).digest()


def _whole(lists: Lists, data: bytes, crop: bool) -> None:
    """One check's stages back to back, as the server runs them."""
    s = lists.settings
    image = _decode(data, s.max_image_pixels)
    dihedral = _dihedral(image)
    phash = phash_bytes(image)
    _digests(data)
    parts = candidate_queries(image, s.pdq_min_quality) if crop else None
    lists.search(dihedral, phash, parts)


def measure(lists: Lists, data: bytes, repeats: int) -> dict[str, float]:
    s = lists.settings
    image = _decode(data, s.max_image_pixels)
    rgb = np.asarray(image)
    dihedral, phash = _dihedral(image), phash_bytes(image)
    parts = candidate_queries(image, s.pdq_min_quality)
    runs: dict[str, Callable[[], object]] = {
        "decode": lambda: _decode(data, s.max_image_pixels),
        "PDQ": lambda: pdqhash.compute(rgb),
        "PDQ+dihedral": lambda: _dihedral(image),
        "pHash": lambda: phash_bytes(image),
        "digests": lambda: _digests(data),
        "parts": lambda: candidate_queries(image, s.pdq_min_quality),
        "search off": lambda: lists.search(dihedral, phash, None),
        "search on": lambda: lists.search(dihedral, phash, parts),
        "whole off": lambda: _whole(lists, data, False),
        "whole on": lambda: _whole(lists, data, True),
    }
    ms = _medians(runs, repeats)
    ms["dihedral"] = ms["PDQ+dihedral"] - ms["PDQ"]
    ms["parts count"] = len(parts.pdq) + len(parts.phash)
    ms["decoded"] = image.width * image.height / 1e6
    return ms


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--photos", type=int, default=100_000)
    args = parser.parse_args(argv)
    photo, origin = source_photo(SOURCE)
    started = time.perf_counter()
    lists = Lists(args.photos)
    print(
        f"source photo: {origin}; JPEG q90; median of {args.repeats}, stages taking turns; "
        f"list {args.photos:,} photos ({args.photos * len(DEFAULT_WINDOWS):,} window "
        f"entries), built in {time.perf_counter() - started:.0f} s; cores {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )
    head = f"{'upload':<7} {'decoded MP':>10} {'crop':>4} " + " ".join(f"{s:>8}" for s in STAGES)
    print(head + f" {'sum':>7} {'whole':>7} {'on/off':>7}  (CPU ms)")
    for name, size in SIZES.items():
        data = encode(photo.resize(size, Image.Resampling.LANCZOS), "JPEG", quality=90)
        ms = measure(lists, data, args.repeats)
        whole_off = ms["whole off"]
        for crop in (False, True):
            stages = {s: ms[s] for s in STAGES if s not in ("parts", "search")}
            stages["parts"] = ms["parts"] if crop else 0.0
            stages["search"] = ms["search on" if crop else "search off"]
            whole = ms["whole on" if crop else "whole off"]
            cells = " ".join(f"{stages[s]:>8.1f}" for s in STAGES)
            print(
                f"{name:<7} {ms['decoded']:>10.2f} {'on' if crop else 'off':>4} {cells} "
                f"{sum(stages.values()):>7.1f} {whole:>7.1f} {whole / whole_off:>6.2f}x"
            )
        print(f"{'':<7} candidate parts (PDQ + pHash queries): {ms['parts count']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
