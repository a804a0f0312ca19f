"""SHA-256 of a video file's bytes: matches byte-identical copies only.
python-threatexchange calls it `video_sha256`.

Its own type, apart from `sha256` (a photo file's): a video's digest is computed from a
video upload and looked up among listed videos only.
"""

from __future__ import annotations

from service.signals.base import IndexKind, SignalType


class VideoSha256Signal(SignalType):
    name = "video-sha256"
    proto_name = "HASH_ALGORITHM_VIDEO_SHA256"
    label = "video SHA-256"
    size = 32
    index_kind = IndexKind.EXACT
    threatexchange_name = "video_sha256"


VIDEO_SHA256 = VideoSha256Signal()
