"""Exact Hamming radius search, side by side: our multi-index (its compiled search and
its numpy search), our numpy scan, and faiss.

For each hash width (PDQ 256 bits at r=31, pHash 64 bits at r=8), list size and data
set, every method indexes the same hashes and answers the same queries in one process:
build time, memory, single-query latency p50/p99, batch throughput on 1 and 2 threads,
and recall against the brute-force scan (exact means 1.000 and no extra results).

Data sets:
- uniform: every bit a fair coin;
- skewed:  bit i set with its own probability, drawn between 0.2 and 0.8;
- photos:  bits drawn with the per-bit frequencies of PDQ hashes of real photos
           (scikit-image) and their edits, those real hashes planted in the list, and
           the edited photos among the queries.
Half the queries are stored hashes with 0..r bits flipped (a re-upload), half fresh
draws from the same distribution (an unrelated upload).

faiss-cpu is a benchmark-only extra: pip install -e '.[bench]'.
Run: python loadtests/bench_index.py [--sizes 100000,1000000,10000000]
The two kernels of our index alone, with their ratios (docs/BENCHMARKS.md):
  python loadtests/bench_index.py --methods ours,ours-numpy --sizes 1000000,10000000
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.index import HammingIndex
from service.index.hamming import warm_up_kernels
from service.index.mih import Kernel
from service.index.words import hashes_to_words, scan

RADIUS = {256: 31, 64: 8}
ALGORITHM = {256: "pdq", 64: "phash"}
Results = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Row:
    algorithm: str
    dataset: str
    entries: int
    method: str
    build_s: float
    mib: float
    p50_ms: float
    p99_ms: float
    cpu_p50_ms: float  # the query's thread CPU time: what a busy machine inflates least
    qps_1: float
    qps_2: float
    qps_cpu: float  # the 1-thread batch's queries per second of its thread's CPU time
    recall: float
    exact: bool


class Method:
    """One way to answer radius queries: build once, then search batches."""

    name = ""

    def build(self, ids: np.ndarray, hashes: np.ndarray, bits: int) -> None:
        raise NotImplementedError

    def search(self, queries: np.ndarray, radius: int) -> Results:
        raise NotImplementedError

    def nbytes(self) -> int:
        """Memory the method holds: its arrays' bytes, or for faiss (C++ memory numpy
        cannot see) the growth of the process's resident set during the build."""
        raise NotImplementedError

    def set_threads(self, threads: int) -> None:
        self.threads = threads

    threads = 1


class Ours(Method):
    def __init__(self, chunk_offset: int = 0, kernel: Kernel = "compiled") -> None:
        self.chunk_offset = chunk_offset
        self.kernel: Kernel = kernel
        self.name = f"multi-index {kernel}"
        if chunk_offset:
            self.name = f"ours, chunks log2(n){chunk_offset:+d}"

    def build(self, ids: np.ndarray, hashes: np.ndarray, bits: int) -> None:
        self.index = HammingIndex(bits, chunk_offset=self.chunk_offset, kernel=self.kernel)
        self.index.add(ids, hashes)

    def search(self, queries: np.ndarray, radius: int) -> Results:
        return _split(self.threads, queries, lambda q: self.index.search(q, radius))

    def nbytes(self) -> int:
        return self.index.nbytes()


class NumpyScan(Method):
    name = "numpy scan"

    def build(self, ids: np.ndarray, hashes: np.ndarray, bits: int) -> None:
        self.ids = ids
        self.words = hashes_to_words(hashes, bits)
        self.alive = np.ones(len(ids), dtype=bool)

    def search(self, queries: np.ndarray, radius: int) -> Results:
        qwords = hashes_to_words(queries, self.words.shape[1] * 64)
        return _split(self.threads, qwords, lambda q: [self._one(w, radius) for w in q])

    def _one(self, qword: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        rows, distances = scan(self.words, self.alive, qword, radius)
        return self.ids[rows], distances

    def nbytes(self) -> int:
        return self.ids.nbytes + self.words.nbytes


class FaissBinary(Method):
    """faiss's binary indexes; range_search keeps distances strictly below its radius."""

    def __init__(self, multihash: bool) -> None:
        self.multihash = multihash
        self.name = "faiss MultiHash" if multihash else "faiss BinaryFlat"

    def build(self, ids: np.ndarray, hashes: np.ndarray, bits: int) -> None:
        import faiss

        if self.multihash:  # 16-bit tables, enough flips per table to be exact
            nhash = bits // 16
            index = faiss.IndexBinaryMultiHash(bits, nhash, 16)
            index.nflip = RADIUS[bits] // nhash
        else:
            index = faiss.IndexBinaryFlat(bits)
        before = _rss()
        index.add(np.ascontiguousarray(hashes))
        self.index, self.ids, self.resident = index, ids, _rss() - before

    def search(self, queries: np.ndarray, radius: int) -> Results:
        import faiss

        faiss.omp_set_num_threads(self.threads)
        lims, distances, labels = self.index.range_search(np.ascontiguousarray(queries), radius + 1)
        return [
            (self.ids[labels[lims[q] : lims[q + 1]]], distances[lims[q] : lims[q + 1]])
            for q in range(len(queries))
        ]

    def nbytes(self) -> int:
        return self.resident + self.ids.nbytes


def _split(threads: int, queries: np.ndarray, search: Callable[[np.ndarray], Results]) -> Results:
    """Answer a batch on `threads` Python threads (numpy releases the GIL in its loops)."""
    if threads == 1 or len(queries) < 2:
        return search(queries)
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(search, np.array_split(queries, threads))
    return [result for part in parts for result in part]


def _rss() -> int:
    """Resident bytes now, after handing freed heap pages back to the system (otherwise
    an index built into memory another method freed would look free of charge)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- data ---------------------------------------------------------------------------


def photo_hashes() -> np.ndarray:
    """PDQ of scikit-image photos and edits of them (JPEG, resize, blur, all 8 dihedral)."""
    import skimage.data
    from PIL import Image, ImageFilter

    from service.media.hashes import hash_image_bytes

    names = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page")
    names += ("text", "clock", "brick", "grass", "gravel", "hubble_deep_field", "retina")
    edits: Sequence[Callable[[Image.Image], Image.Image]] = (
        lambda im: im,
        lambda im: im.resize((im.width // 2, im.height // 2)),
        lambda im: im.filter(ImageFilter.GaussianBlur(1.5)),
    )
    found = []
    for name in names:
        photo = Image.fromarray(getattr(skimage.data, name)())
        for edit in edits:
            for quality in (90, 50):
                buffer = io.BytesIO()
                edit(photo).convert("RGB").save(buffer, "JPEG", quality=quality)
                hashes = hash_image_bytes(buffer.getvalue())
                found.extend(bytes(h) for h in hashes.pdq_dihedral)
    return np.frombuffer(b"".join(found), dtype=np.uint8).reshape(-1, 32)


def bits_with_probability(rng: np.random.Generator, n: int, p: np.ndarray) -> np.ndarray:
    """n hashes whose bit i is set with probability p[i], packed (n, len(p) // 8)."""
    out = np.empty((n, len(p) // 8), dtype=np.uint8)
    for start in range(0, n, 1 << 18):
        stop = min(n, start + (1 << 18))
        out[start:stop] = np.packbits(rng.random((stop - start, len(p))) < p, axis=1)
    return out


def make_dataset(
    name: str, n: int, bits: int, n_queries: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, queries) in canonical byte order."""
    rng = np.random.default_rng(seed)
    radius = RADIUS[bits]
    planted = np.empty((0, bits // 8), dtype=np.uint8)
    if name == "uniform":
        p = np.full(bits, 0.5)
    elif name == "skewed":
        p = rng.uniform(0.2, 0.8, bits)
    elif name == "photos":
        real = photo_hashes() if bits == 256 else None
        if real is None:
            raise SystemExit("the photos data set is PDQ (256 bits) only")
        p = np.clip(np.unpackbits(real, axis=1).mean(axis=0), 0.05, 0.95)
        planted = real[rng.permutation(len(real))]
    else:
        raise SystemExit(f"unknown data set {name}")
    hashes = bits_with_probability(rng, n, p)
    hashes[: len(planted)] = planted[:n]
    near = hashes[rng.integers(0, n, n_queries // 2)].copy()
    bitwise = np.unpackbits(near, axis=1)
    for row in bitwise:
        row[rng.choice(bits, int(rng.integers(0, radius + 1)), replace=False)] ^= 1
    near = np.packbits(bitwise, axis=1)
    fresh = bits_with_probability(rng, n_queries - len(near), p)
    if len(planted):  # real edited photos stand in for some of the re-uploads
        near[: len(planted) // 2] = planted[len(planted) // 2 :][: len(near)]
    return hashes, rng.permutation(np.concatenate([near, fresh]))


# --- measuring ----------------------------------------------------------------------


def recall(found: Results, truth: Results) -> tuple[float, bool]:
    """Share of true (query, id) pairs found, and whether found == truth exactly."""
    hits = wanted = 0
    exact = True
    for (ids, dist), (true_ids, true_dist) in zip(found, truth, strict=True):
        got = dict(zip(ids.tolist(), np.asarray(dist).tolist(), strict=True))
        want = dict(zip(true_ids.tolist(), true_dist.tolist(), strict=True))
        hits += sum(1 for i, d in want.items() if got.get(i) == d)
        wanted += len(want)
        exact &= got == want
    return (hits / wanted if wanted else 1.0), exact


def measure(
    method: Method, hashes: np.ndarray, queries: np.ndarray, batch: np.ndarray, bits: int
) -> tuple[float, float, list[float], list[float], float, float, float, Results]:
    radius = RADIUS[bits]
    gc.collect()
    start = time.perf_counter()
    method.build(np.arange(len(hashes), dtype=np.int64), hashes, bits)
    build = time.perf_counter() - start
    method.set_threads(1)
    singles, latencies, cpu = [], [], []
    for query in queries:
        start, start_cpu = time.perf_counter(), time.thread_time()
        singles.extend(method.search(query[None, :], radius))
        latencies.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    throughput, per_cpu_second = [], 0.0
    for threads in (1, 2):
        method.set_threads(threads)
        start, start_cpu = time.perf_counter(), time.thread_time()
        method.search(batch, radius)
        throughput.append(len(batch) / (time.perf_counter() - start))
        if threads == 1:
            per_cpu_second = len(batch) / max(time.thread_time() - start_cpu, 1e-9)
    mib = method.nbytes() / 2**20
    qps_1, qps_2 = throughput
    return build, mib, latencies, cpu, qps_1, qps_2, per_cpu_second, singles


def memory_bandwidth() -> float:
    """Bytes per second that two threads can stream (np.sum over 1 GiB)."""
    data = np.ones(1 << 27, dtype=np.uint64)
    halves = np.array_split(data, 2)
    best = 0.0
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            start = time.perf_counter()
            list(pool.map(np.sum, halves))
            best = max(best, data.nbytes / (time.perf_counter() - start))
    return best


METHODS: dict[str, Callable[[], Method]] = {
    "ours": Ours,
    "ours-numpy": lambda: Ours(kernel="numpy"),
    "numpy": NumpyScan,
    "faiss-flat": lambda: FaissBinary(multihash=False),
    "faiss-multihash": lambda: FaissBinary(multihash=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--bits", default="256,64")
    parser.add_argument("--datasets", default="uniform,skewed,photos")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--queries", type=int, default=200, help="single queries timed")
    parser.add_argument("--batch", type=int, default=1000, help="queries per batch")
    parser.add_argument(
        "--scan-batch",
        type=int,
        default=200,
        help="queries per batch for the slow methods (numpy, faiss) from 1 M entries: "
        "their time per query does not depend on the batch, and 1,000 would take minutes",
    )
    parser.add_argument(
        "--pdq-radius", type=int, default=31, help="PDQ radius (the service's default is 38)"
    )
    parser.add_argument(
        "--chunk-offsets",
        default="",
        help="also run our index with chunks of log2(n) + these bits, e.g. -2,-1,1",
    )
    args = parser.parse_args()
    RADIUS[256] = args.pdq_radius

    ready = warm_up_kernels()  # numba compiles (or loads its cache) once, not in a build
    print(f"compiled search ready in {ready:.2f} s (numba: compile, or load its cache)")
    bandwidth = memory_bandwidth()
    print(
        f"memory bandwidth: {bandwidth / 1e9:.1f} GB/s (2 threads, np.sum over 1 GiB); "
        f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}; PDQ r={RADIUS[256]}, "
        f"pHash r={RADIUS[64]}\n"
    )
    header = (
        f"{'algo':>5} {'data':>8} {'entries':>11} {'method':>22} {'build s':>8} {'MiB':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'cpu p50':>8} {'q/s 1t':>8} {'q/s 2t':>8} {'q/cpu-s':>8} "
        f"{'recall':>7} {'exact':>5} {'p50 vs':>7} {'cpu vs':>7}"
    )
    print(header + "\n" + "-" * len(header), flush=True)
    for bits in (int(b) for b in args.bits.split(",")):
        for dataset in args.datasets.split(","):
            if dataset == "photos" and bits != 256:
                continue
            for n in (int(s) for s in args.sizes.split(",")):
                run_one(args, bits, dataset, n, bandwidth)


def run_one(args: argparse.Namespace, bits: int, dataset: str, n: int, bandwidth: float) -> None:
    hashes, queries = make_dataset(dataset, n, bits, args.queries + args.batch, seed=n + bits)
    singles, batch = queries[: args.queries], queries[args.queries :]
    truth: Results | None = None
    rows: list[Row] = []
    keys = ["numpy", *(m for m in args.methods.split(",") if m != "numpy")]
    keys += [f"ours{offset}" for offset in args.chunk_offsets.split(",") if offset]
    for key in keys:
        offset = key.startswith("ours") and key not in METHODS
        method = Ours(int(key[4:])) if offset else METHODS[key]()
        slow = key in ("numpy", "faiss-flat", "faiss-multihash") and n >= 1_000_000
        method_batch = batch[: args.scan_batch] if slow else batch
        build, mib, latencies, cpu, qps1, qps2, qps_cpu, found = measure(
            method, hashes, singles, method_batch, bits
        )
        if truth is None:
            truth = found  # the scan is the reference every other method must equal
        share, exact = recall(found, truth)
        lat = np.array(latencies) * 1e3
        row = Row(ALGORITHM[bits], dataset, n, method.name, build, mib,
                  float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                  float(np.percentile(cpu, 50)) * 1e3, qps1, qps2, qps_cpu, share,
                  exact)  # fmt: skip
        rows.append(row)
        del method
        gc.collect()
    flat = next((r for r in rows if r.method == "faiss BinaryFlat"), rows[0])
    for r in rows:
        print(
            f"{r.algorithm:>5} {r.dataset:>8} {r.entries:>11,} {r.method:>22} {r.build_s:>8.2f} "
            f"{r.mib:>7.0f} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f} {r.cpu_p50_ms:>8.3f} "
            f"{r.qps_1:>8.0f} {r.qps_2:>8.0f} {r.qps_cpu:>8.0f} {r.recall:>7.3f} "
            f"{'yes' if r.exact else 'NO':>5} "
            f"{flat.p50_ms / r.p50_ms:>6.1f}x {flat.cpu_p50_ms / r.cpu_p50_ms:>6.1f}x"
        )
    by_name = {r.method: r for r in rows}
    fast, slow = by_name.get("multi-index compiled"), by_name.get("multi-index numpy")
    if fast and slow:  # how much faster the compiled search is, from this run alone
        ratios = (slow.p50_ms / fast.p50_ms, slow.p99_ms / fast.p99_ms)
        ratios += (slow.cpu_p50_ms / fast.cpu_p50_ms, fast.qps_1 / slow.qps_1)
        ratios += (fast.qps_2 / slow.qps_2, fast.qps_cpu / slow.qps_cpu)
        print(
            f"{'':>5} {'':>8} {'':>11} {'compiled speed-up':>22} {'':>8} {'':>7} "
            + " ".join(f"{ratio:>7.1f}x" for ratio in ratios)
        )
    floor_ms = hashes.nbytes / bandwidth * 1e3
    print(f"{'':>5} {'':>8} {'':>11} {'floor: stream once':>22} {'':>8} "
          f"{hashes.nbytes / 2**20:>7.0f} {floor_ms:>8.3f}")  # fmt: skip
    print(flush=True)


if __name__ == "__main__":
    main()
