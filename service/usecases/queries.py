"""What an upload is looked up by: each hash type's hashes and queries of the image
(decoded within the decode budget; service/signals says what each type computes, with
crop matching's parts), or the hashes the caller computed, each checked; a hash below
its type's quality floor is left out with a note."""

from __future__ import annotations

from collections.abc import Sequence

from service import metrics
from service.config import Settings
from service.domain import HashValue, MatchPart, Principal, Query
from service.errors import InvalidInput, LimitExceeded
from service.media.decode import DEFAULT_DRAFT_SIDE, decode_image
from service.media.decode_cost import decode_cost
from service.runtime import Runtime
from service.signals.base import CheckOptions, HashOptions
from service.signals.photo import Photo
from service.signals.registry import SIGNALS
from service.signals.video_md5 import VIDEO_MD5
from service.signals.video_sha256 import VIDEO_SHA256
from service.signals.vpdq import VPDQ
from service.signals.vpdq_frames import QueryFrames, pack_query

MAX_HASHES_PER_CHECK = 64


def image_queries(
    runtime: Runtime, principal: Principal, image: bytes, notes: list[str]
) -> tuple[list[Query], list[HashValue]]:
    """(the queries, the hashes shown to the operator). Decoding waits for its share of
    the decode budget; a refusal by a limit is counted against the caller."""
    settings, limits = runtime.settings, runtime.limits
    limit = settings.max_message_bytes
    if len(image) > limit:
        raise limits.refused(
            principal,
            LimitExceeded("image_bytes", f"image is {len(image):,} bytes; the limit is {limit:,}"),
        )
    shown = HashOptions(settings.pdq_min_quality, windows=False)
    options = _check_options(settings)
    try:
        cost = decode_cost(image, settings.max_image_pixels, DEFAULT_DRAFT_SIDE)
        with limits.decoding(principal, cost):
            photo = Photo(decode_image(image, settings.max_image_pixels), image)
            # Each type's hashes (shown to the operator) and lookups; a type whose
            # hash is below its quality floor is not looked up.
            computed = [h for s in SIGNALS for h in s.photo_hashes(photo, shown)]
            unusable = {h.algorithm for h in computed if not _usable(settings, h, notes)}
            queries = [
                q for s in SIGNALS if s not in unusable for q in s.photo_queries(photo, options)
            ]
            del photo  # its pixels go before the budget is handed back
    except LimitExceeded as exc:
        raise limits.refused(principal, exc) from None
    return _with_derived(settings, queries), computed


def video_queries(
    md5: bytes, sha256: bytes, frames: QueryFrames
) -> tuple[list[Query], list[HashValue]]:
    """(the queries, the hashes shown to the operator) of a video the caller hashed: its
    file's digests (exact copies) and its sampled frames with their variants (vPDQ)."""
    computed = [HashValue(VIDEO_MD5, VIDEO_MD5.validate(md5)),
                HashValue(VIDEO_SHA256, VIDEO_SHA256.validate(sha256))]  # fmt: skip
    queries = [Query(h.algorithm, h.value, MatchPart.WHOLE) for h in computed]
    if len(frames.queries):
        queries.append(Query(VPDQ, pack_query(frames), MatchPart.WHOLE))
    return queries, computed


def supplied_queries(
    settings: Settings, hashes: Sequence[HashValue], notes: list[str]
) -> list[Query]:
    if len(hashes) > MAX_HASHES_PER_CHECK:
        raise InvalidInput(f"at most {MAX_HASHES_PER_CHECK} hashes per check")
    queries = []
    for h in hashes:
        h.algorithm.check_query(h)
        if _usable(settings, h, notes):
            queries.append(Query(h.algorithm, h.value, MatchPart.WHOLE))
    return _with_derived(settings, queries)


def _check_options(settings: Settings) -> CheckOptions:
    """What the hash types' query methods read from the settings (service/signals)."""
    return CheckOptions(
        bool(settings.crop_matching),
        settings.pdq_min_quality,
        bool(settings.crop_matching and settings.region_matching),
    )


def _with_derived(settings: Settings, queries: list[Query]) -> list[Query]:
    """Queries some types make from the others (with crop matching on, every PDQ query
    is also looked up among the pdq-window entries)."""
    options = _check_options(settings)
    return queries + [d for s in SIGNALS for d in s.derived_queries(queries, options)]


def _usable(settings: Settings, h: HashValue, notes: list[str]) -> bool:
    """Low-quality PDQ (flat or tiny images) matches unrelated images too easily."""
    note = h.algorithm.low_quality_note(h.quality, settings.pdq_min_quality)
    if note is None:
        return True
    metrics.LOW_QUALITY_PDQ.inc()
    notes.append(note)
    return False
