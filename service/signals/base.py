"""What a hash type is: everything the service needs to know about one, in one object.

Each module of this package defines one subclass of SignalType and its one instance;
service/signals/registry.py lists the instances. Code outside this package never asks
"is this PDQ?": it asks the type (its size, threshold, index kind, quality rule, what a
match on it may decide, how it is computed from a photo). Pure: no I/O, no grpc, no
store (docs/ARCHITECTURE.md, "Hash types").
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.domain import HashValue, Query
from service.errors import InvalidInput

if TYPE_CHECKING:
    from service.signals.photo import Photo

# PDQ and pHash threshold at the median, so a real image's hash has about half its bits
# set; fewer than 1 in 8 of either kind means the image was (nearly) flat.
MIN_BIT_SHARE = 1 / 8


class IndexKind(enum.StrEnum):
    """How the list finds entries of a type (service/index)."""

    EXACT = "exact"  # equal values only (cryptographic digests): ExactIndex
    HAMMING = "hamming"  # within a Hamming radius (perceptual hashes): HammingIndex
    # a video: its frames' PDQ in one Hamming index, matched by service/video_match.py's
    # rule (service/video_list.py: VideoList)
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What the check path's settings say to the types' query methods."""

    crop_matching: bool
    min_quality: int
    # issue 18: also the photos inside an upload and the upload turned back by a small
    # angle (service.media.regions), as partial parts
    region_matching: bool = False


@dataclass(frozen=True, slots=True)
class HashOptions:
    """What a victim's hashing asks for (`hashguard hash`; the check path's computed
    hashes use windows=False)."""

    min_quality: int
    windows: bool = True


class SignalType:
    """One hash type. Subclasses set the class attributes and override the methods that
    differ; the defaults fit a fixed-length hash written as hex.

    Names: `name` is ours (list files, the store, metric labels, `hashguard` commands);
    `proto_name` its value of the public enum hashguard.v1.HashAlgorithm; `aliases` other
    spellings read from list files; `threatexchange_name` the name Meta's
    python-threatexchange gives the same type (read, and written by `hashguard export
    --format threatexchange`); `threatexchange_fallbacks` its names read as this type only
    while no registered type claims them (service/signals/registry.py).
    """

    name: str
    proto_name: str
    label: str  # how messages name it ("PDQ")
    size: int  # bytes of a canonical value; of one record for a variable-length type
    # A value is one or more `size`-byte records (a video's frames), up to `max_records`;
    # the store, snapshots, list files and the matcher carry any such length.
    variable_length: bool = False
    max_records: int = 1
    index_kind: IndexKind
    default_threshold: int = 0  # largest Hamming distance that matches (0 for EXACT)
    threshold_setting: str | None = None  # the Settings field overriding it, if any
    aliases: tuple[str, ...] = ()
    threatexchange_name: str | None = None
    threatexchange_fallbacks: tuple[str, ...] = ()
    uses_quality: bool = False  # carries PDQ's 0-100 quality; below the minimum: no match
    can_block: bool = True  # False: a match on a vetted entry only asks for REVIEW
    one_per_photo: bool = True  # False: many per photo (the CLI does not name each)

    def __repr__(self) -> str:
        return f"<signal {self.name}>"

    # -- values ------------------------------------------------------------------------

    def validate(self, value: bytes) -> bytes:
        """Refuse values of the wrong length, with a message that says what was expected."""
        if self.variable_length:
            records, rest = divmod(len(value), self.size)
            if rest or not 1 <= records <= self.max_records:
                raise InvalidInput(
                    f"{self.name} value must be 1 to {self.max_records:,} records of "
                    f"{self.size} bytes, got {len(value):,} bytes"
                )
            return bytes(value)
        if len(value) != self.size:
            raise InvalidInput(
                f"{self.name} hash must be {self.size} bytes "
                f"({self.size * 2} hex digits), got {len(value)} bytes"
            )
        return bytes(value)

    def parse(self, text: str) -> bytes:
        """A value from its text form (hex, either case, surrounding blanks ignored)."""
        try:
            value = bytes.fromhex(text.strip())
        except ValueError:
            raise InvalidInput(f"{self.name} hash {text.strip()[:80]!r} is not hex") from None
        return self.validate(value)

    def format(self, value: bytes) -> str:
        """The canonical text form: lower-case hex."""
        return value.hex()

    def take_text(self, text: str) -> tuple[str, str]:
        """(the value's text, what follows) at the start of `text`: a list-file line
        after its type. A hex value is one word; a type whose text form holds blanks
        (python-threatexchange's vpdq JSON) says where it ends."""
        parts = text.split(maxsplit=1)
        return (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")

    def query_key(self, value: bytes) -> bytes:
        """What a hit keeps of the upload's query that matched, to know the same upload
        again (Match.query_value): the value itself, or for a variable-length one (a
        video's frames, up to megabytes) its SHA-256, so the store's indexes stay small."""
        return hashlib.sha256(value).digest() if self.variable_length else value

    def distance(self, a: bytes, b: bytes) -> int:
        """Bits that differ (EXACT and HAMMING types). An EXACT type's threshold is 0,
        so it matches equal values."""
        return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()

    def degenerate(self, h: HashValue, min_quality: int) -> tuple[str, str] | None:
        """(reason, explanation) when `h` carries too little information to be listed:
        every byte the same; a quality below the minimum (types that carry one); a
        perceptual hash with almost every bit the same (docs/SECURITY.md)."""
        if len(set(h.value)) == 1:
            return (
                "constant",
                f"every byte is 0x{h.value[0]:02x}, which no real image or file hashes to",
            )
        if self.uses_quality and h.quality is not None and h.quality < min_quality:
            return "low_quality", (
                f"{self.label} quality {h.quality} is below {min_quality} (a flat, tiny or "
                "mostly uniform image), so it would match unrelated images; submit a clearer "
                "photo"
            )
        if self.index_kind is IndexKind.HAMMING:
            bits = len(h.value) * 8
            ones = int.from_bytes(h.value, "big").bit_count()
            if min(ones, bits - ones) < bits * MIN_BIT_SHARE:
                return "near_constant", (
                    f"{ones} of its {bits} bits are set: a nearly constant hash comes from a "
                    "nearly uniform image and would match many unrelated ones"
                )
        return None

    def low_quality_note(self, quality: int | None, min_quality: int) -> str | None:
        """Why a query of this type is not matched, when its quality is too low."""
        if not self.uses_quality or quality is None or quality >= min_quality:
            return None
        return (
            f"{self.label} quality {quality} is below {min_quality}; "
            f"{self.label} was not matched for this upload"
        )

    def check_query(self, h: HashValue) -> None:
        """Refuse a precomputed hash this type does not take as a check's query."""
        self.validate(h.value)

    # -- media -------------------------------------------------------------------------

    def photo_hashes(self, photo: Photo, options: HashOptions) -> list[HashValue]:
        """What a victim lists for `photo` (and an operator is shown as computed)."""
        return []

    def photo_queries(self, photo: Photo, options: CheckOptions) -> list[Query]:
        """What the check path looks up for an uploaded photo, each with the part of the
        upload it stands for (service.domain.MatchPart: what a match on it may vet)."""
        return []

    def derived_queries(self, queries: list[Query], options: CheckOptions) -> list[Query]:
        """Queries of this type made from a check's other queries (none by default)."""
        return []
