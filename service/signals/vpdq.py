"""vPDQ: a video's frame hashes (PDQ, quality and time of one frame a second), Meta's
video hash, python-threatexchange's `vpdq`.

A value has a variable length: one 37-byte record per frame (service/signals/
vpdq_frames.py). Its text forms are python-threatexchange's JSON list (written, and
read with any spacing) and the vpdq CLI's "frame,quality,hex,seconds" lines (read);
hex of the records is read too. Listed videos live in a VideoList (their frames in the
PDQ Hamming index, service/video_list.py), and a check's query is the upload's
frames (a supplied vPDQ, or the service's own 4-a-second sampling with each frame's
variants). A match on the video as a whole is a whole part; a clip or a compilation's
seconds of it is a SEGMENT (partial: docs/SECURITY.md).
"""

from __future__ import annotations

import numpy as np

from service.domain import HashValue
from service.errors import InvalidInput
from service.signals.base import MIN_BIT_SHARE, IndexKind, SignalType
from service.signals.vpdq_frames import (
    MAX_FRAMES,
    PDQ_BYTES,
    QUALITY_THRESHOLD,
    RECORD_BYTES,
    from_threatexchange,
    from_vpdq_file,
    pack,
    require_increasing,
    to_threatexchange,
    unpack,
    unpack_query,
)

# The largest query a check takes: 30 minutes sampled 4 times a second, 4 variants each
# (what the service itself makes of an upload at its default limits).
MAX_QUERY_RECORDS = 30 * 60 * 4 * 4
# Meta's VPDQ_DISTANCE_THRESHOLD: frames within this PDQ distance match
# (service.video_match.VideoRule.frame_distance, which is the setting used).
FRAME_DISTANCE = 31


class VpdqSignal(SignalType):
    name = "vpdq"
    proto_name = "HASH_ALGORITHM_VPDQ"
    label = "vPDQ"
    size = RECORD_BYTES
    variable_length = True
    max_records = MAX_FRAMES
    index_kind = IndexKind.VIDEO
    default_threshold = FRAME_DISTANCE
    aliases = ("video_vpdq", "vpdq_hash")
    threatexchange_name = "vpdq"

    def validate(self, value: bytes) -> bytes:
        """A listed vPDQ: whole records, frames in strictly increasing time."""
        super().validate(value)
        require_increasing(unpack(value))
        return bytes(value)

    def parse(self, text: str) -> bytes:
        """python-threatexchange's JSON list, the vpdq CLI's lines, or hex of the records."""
        text = text.strip()
        if text.startswith("["):
            return self.validate(pack(from_threatexchange(text)))
        if "," in text:
            return self.validate(pack(from_vpdq_file(text)))
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise InvalidInput(
                f"vpdq value {text[:80]!r} is not hex, nor python-threatexchange's JSON "
                'list ("hex,quality,seconds" per frame), nor the vpdq tool\'s lines'
            ) from None
        return self.validate(value)

    def format(self, value: bytes) -> str:
        return to_threatexchange(unpack(value))

    def take_text(self, text: str) -> tuple[str, str]:
        """A JSON list runs to its closing bracket (python-threatexchange writes it with
        blanks after the commas); other forms are one word."""
        text = text.lstrip()
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise InvalidInput("vpdq JSON list has no closing ']'")
            return text[: end + 1], text[end + 1 :].lstrip()
        return super().take_text(text)

    def degenerate(self, h: HashValue, min_quality: int) -> tuple[str, str] | None:
        """No frame PDQ can match on (every one below the quality floor, or nearly
        constant): such a video would match flat or unrelated ones."""
        problem = super().degenerate(h, min_quality)
        if problem is not None:
            return problem
        frames = unpack(h.value)
        floor = max(min_quality, QUALITY_THRESHOLD)
        usable = [f for f in frames if f.quality >= floor]
        if not usable:
            best = max(f.quality for f in frames)
            return "low_quality", (
                f"every one of its {len(frames):,} frames has PDQ quality below {floor} "
                f"(the best is {best}): a flat, dark or blurred video would match unrelated "
                "ones; submit a clearer copy"
            )
        bits = np.unpackbits(np.frombuffer(b"".join(f.pdq for f in usable), np.uint8))
        ones = bits.reshape(len(usable), PDQ_BYTES * 8).sum(axis=1)
        if np.all(np.minimum(ones, PDQ_BYTES * 8 - ones) < PDQ_BYTES * 8 * MIN_BIT_SHARE):
            return "near_constant", (
                "every frame's PDQ has almost all its bits the same: a nearly uniform "
                "video would match many unrelated ones"
            )
        return None

    def check_query(self, h: HashValue) -> None:
        """A check's vPDQ: whole records in time order (a time repeated: variants of one
        frame), at most MAX_QUERY_RECORDS."""
        if len(h.value) > MAX_QUERY_RECORDS * RECORD_BYTES:
            raise InvalidInput(
                f"a vpdq query holds at most {MAX_QUERY_RECORDS:,} records "
                f"({MAX_QUERY_RECORDS * RECORD_BYTES:,} bytes), got {len(h.value):,} bytes"
            )
        unpack_query(h.value)


VPDQ = VpdqSignal()
