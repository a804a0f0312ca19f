"""What decoding and hashing one video will allocate, from the frame size its header
declares (the decoders are then held to that size: service.media.video.held_pixels).

The decoder keeps reference frames and frames waiting to be shown (H.264 up to 16, plus
the one being decoded, in YUV 4:2:0 with padded edges), and each sampled frame is
converted to RGB and hashed with its variants (mirror, inside bars: PDQ's float
buffers). Decoding uses one thread (VideoLimits.decoder_threads): frame threads would
each hold frames of their own. The figures were measured per kind of video (peak RSS
of one check in a fresh process, `python -m loadtests.video_memory`,
docs/BENCHMARKS.md) and are rounded up. The file's own bytes are reserved apart, as
they arrive (service.usecases.videos).
"""

from __future__ import annotations

from service.media.video import VideoLimits, held_pixels

# Per pixel of the held frame size: the decoder's frames and the hashing of a sample.
VIDEO_BYTES_PER_PIXEL = 40
# Codec and container state, tables and Python objects no pixel count explains.
VIDEO_FIXED_BYTES = 32 * 1024 * 1024


def video_decode_cost(width: int, height: int, limits: VideoLimits) -> int:
    """Bytes a video check holds at its peak beyond the file, for a header declaring
    `width` x `height` (0 x 0: none, so the largest frame the limits allow)."""
    return VIDEO_FIXED_BYTES + held_pixels(width, height, limits) * VIDEO_BYTES_PER_PIXEL
