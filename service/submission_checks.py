"""Refuse degenerate submissions before they reach the list (docs/SECURITY.md).

A hash that carries no information (all zeros, all ones, one byte repeated, or a
perceptual hash with almost every bit the same) would match flat or blank uploads
everywhere, and a low-quality PDQ hash matches unrelated images: both would turn the
victims' channel into a way to flood moderators or, once vetted, to block innocent
uploads. Each hash type says what is degenerate for it (SignalType.degenerate). Pure
functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.domain import HashValue
from service.errors import InvalidInput, RefusedSubmission
from service.signals.base import SignalType


def check_submission(hashes: Sequence[HashValue], pdq_min_quality: int) -> None:
    """Raise InvalidInput naming the first bad item (hashes[i]) and what is wrong
    (RefusedSubmission when the value is well-formed but degenerate or repeated)."""
    seen: dict[tuple[SignalType, bytes], int] = {}
    for i, h in enumerate(hashes):
        name = f"hashes[{i}] ({h.algorithm.name} {h.hex[:16]}...)"
        try:
            h.algorithm.validate(h.value)
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
    return h.algorithm.degenerate(h, pdq_min_quality)
