"""SHA-256 of a photo file's bytes: matches byte-identical copies only.

python-threatexchange's `video_sha256` is a video's (service/signals/video_sha256.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.domain import HashValue, MatchPart, Query
from service.signals.base import CheckOptions, HashOptions, IndexKind, SignalType

if TYPE_CHECKING:
    from service.signals.photo import Photo


class Sha256Signal(SignalType):
    name = "sha256"
    proto_name = "HASH_ALGORITHM_SHA256"
    label = "SHA-256"
    size = 32
    index_kind = IndexKind.EXACT
    aliases = ("sha-256", "sha256_hash")

    def photo_hashes(self, photo: Photo, options: HashOptions) -> list[HashValue]:
        return [photo.hashes.sha256]

    def photo_queries(self, photo: Photo, options: CheckOptions) -> list[Query]:
        return [Query(self, photo.hashes.sha256.value, MatchPart.WHOLE)]


SHA256 = Sha256Signal()
