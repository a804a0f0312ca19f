"""Recall and false-match rate from hashes, with the service's own matching rules.

Pure numpy, no images: the benchmark (quality.py) feeds it hashes, the tests feed it
hand-made ones. The rules mirror service/usecases/ and service/matcher.py:
- PDQ: the upload's 8 dihedral variants are each compared with the listed PDQ and the
  closest counts; an upload whose PDQ quality is below the minimum is not matched by PDQ.
- pHash: the upload's pHash against the listed one, plain.
- The service matches when either algorithm is within its threshold.
- With crop matching (service/media/crops.py), a listed version also lists its sub-window
  hashes (`pdq_windows`), and an upload's dihedral PDQ hashes and its candidate parts
  (`pdq_extra`: the photo inside its frame, its strips) are looked up among them;
  `window` distances are those, with their own threshold. The parts that stand for the
  whole photo (inside its bars, boxes painted over) also carry a pHash (`phash_extra`),
  looked up with the upload's own pHash among the listed pHashes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNMATCHABLE = 10_000  # distance given to a PDQ the service would not match (low quality)


@dataclass(frozen=True, slots=True)
class Upload:
    """One image a re-uploader could send: which photo it shows and which edit it is."""

    photo: int  # index of the listed original it shows
    transform: str  # "original" for the untouched file
    pdq_dihedral: np.ndarray  # (8, 32) uint8, original orientation first
    pdq_quality: int
    phash: np.ndarray  # (8,) uint8
    pdq_extra: np.ndarray | None = None  # (k, 32) more PDQ queries (quality already checked)
    pdq_windows: np.ndarray | None = None  # (m, 32) sub-window hashes a victim lists
    phash_extra: np.ndarray | None = None  # (j, 8) pHash of the whole-photo candidate parts

    def queries(self, min_quality: int, extra: bool = False) -> np.ndarray:
        """The PDQ hashes the check path looks up for this upload: its dihedral variants
        (unless too flat), and with `extra` its candidate parts (window entries only)."""
        parts = [self.pdq_dihedral] if self.pdq_quality >= min_quality else []
        if extra and self.pdq_extra is not None:
            parts.append(self.pdq_extra)
        return np.concatenate(parts) if parts else np.zeros((0, 32), dtype=np.uint8)

    def phash_queries(self) -> np.ndarray:
        """The pHash hashes the check path looks up: the upload's own and, with crop
        matching, its whole-photo parts' (pHash has no quality floor)."""
        if self.phash_extra is None:
            return self.phash[None]
        return np.concatenate([self.phash[None], self.phash_extra])


@dataclass(frozen=True, slots=True)
class Distances:
    """Distances from every upload to every upload taken as a listed hash.

    The listed side is each version's PDQ as computed (variant 0) and its pHash: a list
    holds originals, but victims also submit edited copies, so every version counts.
    """

    photo: np.ndarray  # (n,) which photo each upload shows
    transform: np.ndarray  # (n,) transform names ("original" for the untouched file)
    pdq: np.ndarray  # (n, n) min over dihedral variants; UNMATCHABLE rows for low quality
    phash: np.ndarray  # (n, n)
    window: np.ndarray | None = None  # (n, n) to the listed version's sub-window hashes

    def table(self, algorithm: str) -> np.ndarray:
        if algorithm == "pdq":
            return self.pdq
        if algorithm == "phash":
            return self.phash
        if algorithm == "window" and self.window is not None:
            return self.window
        raise ValueError(f"unknown algorithm {algorithm!r}")

    def originals(self) -> np.ndarray:
        """(n,) the column of each upload's own untouched original."""
        first = {}
        for i, (photo, name) in enumerate(zip(self.photo, self.transform, strict=True)):
            if name == "original":
                first[int(photo)] = i
        return np.array([first[int(p)] for p in self.photo], dtype=np.int64)

    def genuine(self, algorithm: str) -> np.ndarray:
        """(n,) distance of each upload to its own photo's listed original."""
        return np.asarray(self.table(algorithm)[np.arange(len(self.photo)), self.originals()])

    def impostor(self, algorithm: str) -> np.ndarray:
        """Distances of every upload to every version of every other photo, flattened."""
        other = self.photo[:, None] != self.photo[None, :]
        return np.asarray(self.table(algorithm)[other])

    def subset(self, photos: Sequence[int]) -> Distances:
        """Only the uploads of the given photos."""
        rows = np.isin(self.photo, np.asarray(photos))
        return Distances(
            self.photo[rows],
            self.transform[rows],
            self.pdq[np.ix_(rows, rows)],
            self.phash[np.ix_(rows, rows)],
            None if self.window is None else self.window[np.ix_(rows, rows)],
        )


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances between every row of a (n, bytes) and every row of b (m, bytes)."""
    if a.shape[1] % 8 == 0:  # compare 64 bits at a time
        a = np.ascontiguousarray(a).view(np.uint64)
        b = np.ascontiguousarray(b).view(np.uint64)
    out = np.empty((len(a), len(b)), dtype=np.int64)
    block = max(1, 4_000_000 // max(b.size, 1))
    for start in range(0, len(a), block):
        x = np.bitwise_xor(a[start : start + block, None, :], b[None, :, :])
        out[start : start + block] = np.bitwise_count(x).sum(axis=2, dtype=np.int64)
    return out


def _nearest(queries: Sequence[np.ndarray], listed: Sequence[np.ndarray]) -> np.ndarray:
    """(n, m): for each upload's query set and each listed set, the smallest distance
    between any query and any listed hash (UNMATCHABLE where either set is empty)."""
    owners = np.repeat(np.arange(len(listed)), [len(x) for x in listed])
    flat = np.concatenate(listed) if len(owners) else np.zeros((0, 32), np.uint8)
    out = np.full((len(queries), len(listed)), UNMATCHABLE, dtype=np.int64)
    if not len(owners):
        return out
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    for i, q in enumerate(queries):
        if len(q):
            nearest = hamming(q, flat).min(axis=0)
            out[i, owners[starts]] = np.minimum.reduceat(nearest, starts)
    return out


def distances(uploads: Sequence[Upload], min_quality: int) -> Distances:
    """All upload x listed distances under the service's rules."""
    pdq = _nearest([u.queries(min_quality) for u in uploads], [u.pdq_dihedral[:1] for u in uploads])
    windows = [u.pdq_windows for u in uploads]
    window = None
    if any(w is not None for w in windows):
        empty = np.zeros((0, 32), dtype=np.uint8)
        queries = [u.queries(min_quality, extra=True) for u in uploads]
        window = _nearest(queries, [empty if w is None else w for w in windows])
    phashes = np.stack([u.phash for u in uploads])
    if any(u.phash_extra is not None for u in uploads):
        phash = _nearest([u.phash_queries() for u in uploads], list(phashes[:, None]))
    else:
        phash = hamming(phashes, phashes)
    return Distances(
        np.array([u.photo for u in uploads], dtype=np.int64),
        np.array([u.transform for u in uploads]),
        pdq,
        phash,
        window,
    )


def recall(d: Distances, algorithm: str, transform: str, threshold: int) -> float:
    """Share of the transform's uploads matched to their own photo."""
    rows = d.transform == transform
    if not rows.any():
        raise ValueError(f"no uploads for transform {transform!r}")
    return float((d.genuine(algorithm)[rows] <= threshold).mean())


def false_match_rate(d: Distances, algorithm: str, threshold: int) -> tuple[float, int]:
    """Share (and count) of (upload, other photo's original) pairs within the threshold."""
    impostor = d.impostor(algorithm)
    hits = int((impostor <= threshold).sum())
    return hits / max(len(impostor), 1), hits


def _either(d: Distances, pick: str, pdq: int, phash: int, window: int | None) -> np.ndarray:
    values = d.genuine if pick == "genuine" else d.impostor
    hit = (values("pdq") <= pdq) | (values("phash") <= phash)
    if window is not None and d.window is not None:
        hit |= values("window") <= window
    return np.asarray(hit)


def either_recall(
    d: Distances, transform: str, pdq: int, phash: int, window: int | None = None
) -> float:
    """Recall of the service's rule: a PDQ match or a pHash match (or a sub-window match
    within `window`, with crop matching)."""
    rows = d.transform == transform
    return float(_either(d, "genuine", pdq, phash, window)[rows].mean())


def either_false_matches(
    d: Distances, pdq: int, phash: int, window: int | None = None
) -> tuple[float, int]:
    """False-match rate of the service's rule over all distinct-photo pairs."""
    hit = _either(d, "impostor", pdq, phash, window)
    return float(hit.mean()) if hit.size else 0.0, int(hit.sum())


def recall_curve(d: Distances, algorithm: str, transforms: Sequence[str], bits: int) -> np.ndarray:
    """(len(transforms), bits + 1): recall of each transform at every threshold 0..bits."""
    curve = np.zeros((len(transforms), bits + 1))
    genuine = d.genuine(algorithm)
    for i, name in enumerate(transforms):
        dist = genuine[d.transform == name]
        curve[i] = (dist[None, :] <= np.arange(bits + 1)[:, None]).mean(axis=1)
    return curve


def false_match_curve(d: Distances, algorithm: str, bits: int) -> np.ndarray:
    """(bits + 1,): false-match rate at every threshold 0..bits."""
    impostor = np.sort(d.impostor(algorithm))
    counts = np.searchsorted(impostor, np.arange(bits + 1), side="right")
    return counts / max(len(impostor), 1)


@dataclass(frozen=True, slots=True)
class TailFit:
    """log10(false-match rate) as a straight line in the threshold, fitted on the
    measured low tail of the distinct-pair distances, to estimate rates far below what
    a few thousand photos can show. A model, not a measurement: reported as such."""

    slope: float  # decades per bit
    intercept: float
    lowest_measured: int  # distance of the smallest quantile the fit used

    def rate(self, threshold: int) -> float:
        return float(10 ** min(0.0, self.intercept + self.slope * threshold))


def fit_tail(
    impostor: np.ndarray, quantiles: Sequence[float] = (1e-5, 1e-4, 1e-3, 1e-2)
) -> TailFit | None:
    """Fit through the empirical CDF at the low quantiles the sample can resolve (at least
    5 pairs below each); None when fewer than two distinct points are left."""
    values = np.sort(impostor[impostor < UNMATCHABLE])
    usable = [q for q in quantiles if q * len(values) >= 5]
    if len(usable) < 2:
        return None
    xs = np.unique([values[int(q * len(values))] for q in usable]).astype(float)
    if len(xs) < 2:
        return None
    ys = np.log10([np.searchsorted(values, x, side="right") / len(values) for x in xs])
    slope, intercept = np.polyfit(xs, ys, 1)
    return TailFit(float(slope), float(intercept), int(xs[0]))


def suggest_threshold(
    d: Distances, algorithm: str, bits: int, list_size: int, budget: float
) -> int | None:
    """Largest threshold with no measured false match and at most `budget` modelled false
    matches per upload against a list of `list_size` entries; None if even 0 exceeds it
    (or the pairs are too few to model)."""
    impostor = d.impostor(algorithm)
    fit = fit_tail(impostor)
    if fit is None:
        return None
    nearest = int(impostor.min())
    passing = [t for t in range(min(nearest, bits + 1)) if fit.rate(t) * list_size <= budget]
    return max(passing) if passing else None
