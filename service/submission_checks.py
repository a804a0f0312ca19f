"""Refuse degenerate submissions before they reach the list (docs/SECURITY.md).

A hash that carries no information (all zeros, all ones, one byte repeated, or a
perceptual hash with almost every bit the same) would match flat or blank uploads
everywhere, and a low-quality PDQ hash matches unrelated images: both would turn the
victims' channel into a way to flood moderators or, once vetted, to block innocent
uploads. Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain import Algorithm, HashValue, validate_hash
from service.errors import InvalidInput, RefusedSubmission

# PDQ and pHash threshold at the median, so a real image's hash has about half its bits
# set; fewer than 1 in 8 of either kind means the image was (nearly) flat.
MIN_BIT_SHARE = 1 / 8


def check_submission(hashes: Sequence[HashValue], pdq_min_quality: int) -> None:
    """Raise InvalidInput naming the first bad item (hashes[i]) and what is wrong
    (RefusedSubmission when the value is well-formed but degenerate or repeated)."""
    seen: dict[tuple[Algorithm, bytes], int] = {}
    for i, h in enumerate(hashes):
        name = f"hashes[{i}] ({h.algorithm.value} {h.hex[:16]}...)"
        try:
            validate_hash(h.algorithm, h.value)
        except InvalidInput as exc:
            raise InvalidInput(f"{name}: {exc}") from None
        problem = degenerate(h, pdq_min_quality)
        if problem is not None:
            reason, why = problem
            raise RefusedSubmission(f"{name} is refused: {why}", reason)
        first = seen.setdefault((h.algorithm, h.value), i)
        if first != i:
            raise RefusedSubmission(
                f"{name} repeats hashes[{first}]: a case lists each hash once; remove the copy",
                "duplicate",
            )


def degenerate(h: HashValue, pdq_min_quality: int) -> tuple[str, str] | None:
    """(reason, explanation) when `h` carries too little information to be listed."""
    if len(set(h.value)) == 1:
        return (
            "constant",
            f"every byte is 0x{h.value[0]:02x}, which no real image or file hashes to",
        )
    is_pdq = h.algorithm in (Algorithm.PDQ, Algorithm.PDQ_WINDOW)
    if is_pdq and h.quality is not None and h.quality < pdq_min_quality:
        return "low_quality", (
            f"PDQ quality {h.quality} is below {pdq_min_quality} (a flat, tiny or mostly "
            "uniform image), so it would match unrelated images; submit a clearer photo"
        )
    if h.algorithm.is_perceptual:
        bits = len(h.value) * 8
        ones = int.from_bytes(h.value, "big").bit_count()
        if min(ones, bits - ones) < bits * MIN_BIT_SHARE:
            return "near_constant", (
                f"{ones} of its {bits} bits are set: a nearly constant hash comes from a "
                "nearly uniform image and would match many unrelated ones"
            )
    return None
