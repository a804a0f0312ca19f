"""One decoded photo, and what several hash types compute from it, computed once.

The types' `photo_hashes` and `photo_queries` read from here: the PDQ with its 8
dihedral variants, pHash and the digests (service.media.hashes), and the candidate parts of
an upload (service.media.crops) that both the pdq-window and the pHash lookups use. A new
type that needs something else computes it from `image` (upright 8-bit RGB pixels) or
`data` (the file's bytes) itself.
"""

from __future__ import annotations

from functools import cached_property

from PIL import Image

from service.domain import HashValue
from service.media.crops import Candidates, candidate_queries, window_hashes
from service.media.hashes import ImageHashes, hash_decoded


class Photo:
    """A photo decoded by service.media.decode.decode_image from `data`."""

    def __init__(self, image: Image.Image, data: bytes) -> None:
        self.image = image
        self.data = data
        self._candidates: dict[tuple[int, bool], Candidates] = {}

    @cached_property
    def hashes(self) -> ImageHashes:
        return hash_decoded(self.image, self.data)

    def candidates(self, min_quality: int, regions: bool = False) -> Candidates:
        """The upload's candidate parts (crop matching), their PDQ above `min_quality`;
        with `regions` also its panels and the upload turned back (region matching)."""
        key = (min_quality, regions)
        if key not in self._candidates:
            self._candidates[key] = candidate_queries(self.image, min_quality, regions)
        return self._candidates[key]

    def windows(self, min_quality: int) -> list[HashValue]:
        """The PDQ of the photo's sub-windows (crop matching, victim side)."""
        return window_hashes(self.image, min_quality)
