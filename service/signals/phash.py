"""pHash: imagehash's 64-bit DCT hash of a whole photo.

Matched exactly by default (`--phash-threshold 0`: at 10 bits distinct photos already
collide, docs/QUALITY.md), so it confirms identical pictures, including photos too flat
for their PDQ to be listed. With crop matching the parts of an upload that stand for the
whole photo (inside its bars, boxes painted over) are looked up too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.domain import HashValue, MatchPart, Query
from service.signals.base import CheckOptions, HashOptions, IndexKind, SignalType

if TYPE_CHECKING:
    from service.signals.photo import Photo


class PhashSignal(SignalType):
    name = "phash"
    proto_name = "HASH_ALGORITHM_PHASH"
    label = "pHash"
    size = 8
    index_kind = IndexKind.HAMMING
    default_threshold = 0
    threshold_setting = "phash_threshold"
    aliases = ("p_hash",)

    def photo_hashes(self, photo: Photo, options: HashOptions) -> list[HashValue]:
        return [photo.hashes.phash]

    def photo_queries(self, photo: Photo, options: CheckOptions) -> list[Query]:
        own = Query(self, photo.hashes.phash.value, MatchPart.WHOLE)
        if not options.crop_matching:
            return [own]
        parts = photo.candidates(options.min_quality, options.region_matching).phash
        return [own] + [Query(self, v, MatchPart.INNER) for v in parts if v != own.value]


PHASH = PhashSignal()
