"""PDQ: Meta's 256-bit perceptual hash of a whole photo, with a 0-100 quality.

Matched by Hamming distance (docs/QUALITY.md chose 38); a quality under the minimum
(50) means a flat or tiny image whose bits are noise, so such a hash is neither listed
nor matched. A check looks up the upload's 8 rotations and flips, so a mirrored or
rotated re-upload still matches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.domain import HashValue, MatchPart, Query
from service.signals.base import CheckOptions, HashOptions, IndexKind, SignalType

if TYPE_CHECKING:
    from service.signals.photo import Photo


class PdqSignal(SignalType):
    name = "pdq"
    proto_name = "HASH_ALGORITHM_PDQ"
    label = "PDQ"
    size = 32
    index_kind = IndexKind.HAMMING
    default_threshold = 38
    threshold_setting = "pdq_threshold"
    aliases = ("pdq_hash", "photo_pdq")
    threatexchange_name = "pdq"
    uses_quality = True

    def photo_hashes(self, photo: Photo, options: HashOptions) -> list[HashValue]:
        return [photo.hashes.pdq]

    def photo_queries(self, photo: Photo, options: CheckOptions) -> list[Query]:
        return [
            Query(self, value, MatchPart.WHOLE if n == 0 else MatchPart.DIHEDRAL)
            for n, value in enumerate(photo.hashes.pdq_dihedral)  # the upright one first
        ]


PDQ = PdqSignal()
