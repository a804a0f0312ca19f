"""MD5 of a photo file's bytes: matches byte-identical copies only (what StopNCII lists).

Older python-threatexchange tools name it `photo_md5`; its `video_md5` is a video's
(service/signals/video_md5.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.domain import HashValue, MatchPart, Query
from service.signals.base import CheckOptions, HashOptions, IndexKind, SignalType

if TYPE_CHECKING:
    from service.signals.photo import Photo


class Md5Signal(SignalType):
    name = "md5"
    proto_name = "HASH_ALGORITHM_MD5"
    label = "MD5"
    size = 16
    index_kind = IndexKind.EXACT
    aliases = ("photo_md5", "md5_hash")

    def photo_hashes(self, photo: Photo, options: HashOptions) -> list[HashValue]:
        return [photo.hashes.md5]

    def photo_queries(self, photo: Photo, options: CheckOptions) -> list[Query]:
        return [Query(self, photo.hashes.md5.value, MatchPart.WHOLE)]


MD5 = Md5Signal()
