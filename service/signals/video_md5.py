"""MD5 of a video file's bytes: matches byte-identical copies only (what StopNCII lists
for videos). python-threatexchange calls it `video_md5`.

Its own type, apart from `md5` (a photo file's): a video's digest is computed from a
video upload and looked up among listed videos only.
"""

from __future__ import annotations

from service.signals.base import IndexKind, SignalType


class VideoMd5Signal(SignalType):
    name = "video-md5"
    proto_name = "HASH_ALGORITHM_VIDEO_MD5"
    label = "video MD5"
    size = 16
    index_kind = IndexKind.EXACT
    threatexchange_name = "video_md5"


VIDEO_MD5 = VideoMd5Signal()
