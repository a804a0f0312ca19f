"""pdq-window: the PDQ of a sub-window of a victim's photo, for crop matching.

`hashguard hash` lists about 24 per photo (service.media.crops.window_hashes); with
`--crop-matching 1` a check looks them up with the upload's PDQ hashes and the PDQ of
its candidate parts (photo inside bars, boxes painted over, strips), at its own
threshold (`--pdq-window-threshold`). They are list entries only: a check sends PDQ.
Off (`--crop-matching 0`), window entries match nothing (docs/QUALITY.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.domain import HashValue, Query
from service.errors import InvalidInput
from service.signals.base import CheckOptions, HashOptions, IndexKind, SignalType
from service.signals.pdq import PDQ

if TYPE_CHECKING:
    from service.signals.photo import Photo


class PdqWindowSignal(SignalType):
    name = "pdq-window"
    proto_name = "HASH_ALGORITHM_PDQ_WINDOW"
    label = "PDQ"
    size = 32
    index_kind = IndexKind.HAMMING
    default_threshold = 38
    threshold_setting = "pdq_window_threshold"
    uses_quality = True
    one_per_photo = False

    def check_query(self, h: HashValue) -> None:
        super().check_query(h)
        raise InvalidInput("check with pdq hashes; pdq-window hashes are list entries")

    def photo_hashes(self, photo: Photo, options: HashOptions) -> list[HashValue]:
        return photo.windows(options.min_quality) if options.windows else []

    def photo_queries(self, photo: Photo, options: CheckOptions) -> list[Query]:
        """The upload's candidate parts (inside bars, boxes painted: INNER; strips: STRIP;
        with region matching, panels: PANEL, the upload turned back: ROTATED, each with
        where in the upload it is)."""
        if not options.crop_matching:
            return []
        parts = photo.candidates(options.min_quality, options.region_matching).pdq_queries()
        return [Query(self, value, part, region) for value, part, region in parts]

    def derived_queries(self, queries: list[Query], options: CheckOptions) -> list[Query]:
        """Every PDQ query is also looked up among the windows (crop matching on)."""
        if not options.crop_matching:
            return []
        return [Query(self, q.value, q.part) for q in queries if q.algorithm is PDQ]


PDQ_WINDOW = PdqWindowSignal()
