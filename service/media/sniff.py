"""Is this file a photo or a video? From its first bytes, as a browser would tell.

`hashguard hash` takes both in one list of files, so it must not trust file names: a
video is an ISO media file (MP4, MOV, 3GP: an `ftyp` box whose brand is not a HEIF or
AVIF photo's), a Matroska or WebM file (EBML), an AVI or an MPEG transport stream; an
animated GIF or WebP (more than one frame) is a video too, and a still one a photo.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from service.media.video import ANIMATED_FORMATS, is_animation

# The first bytes that tell: 12 for ISO media and RIFF, 189 for two MPEG-TS sync bytes.
HEAD_BYTES = 192
# ftyp brands of still images (HEIF, HEIC, AVIF): these files are photos.
PHOTO_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif"})
TS_PACKET = 188


def is_video(head: bytes) -> bool:
    """True for the first bytes of a video container (not GIF or WebP: see is_animated)."""
    if head[4:8] == b"ftyp":
        return head[8:12] not in PHOTO_BRANDS
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska, WebM
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    return len(head) > TS_PACKET and head[0] == head[TS_PACKET] == 0x47


def is_animated(path: str | Path, head: bytes) -> bool:
    """True for a GIF or WebP with more than one frame. Pillow reads only the headers
    it needs to count frames; a file it cannot read is left to the photo decoder, which
    says why."""
    if not is_animation(head):
        return False
    try:
        with Image.open(path, formats=ANIMATED_FORMATS) as image:
            return bool(getattr(image, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return False


def is_video_file(path: str | Path) -> bool:
    """Whether `hashguard hash` should hash the file at `path` as a video."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    return is_video(head) or is_animated(path, head)
