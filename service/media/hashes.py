"""Decoded pixels -> a photo's hashes (PDQ with quality and its 8 dihedral variants,
pHash, SHA-256, MD5). Decoding itself is service.media.decode."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import imagehash
import numpy as np
import pdqhash
from PIL import Image

from service.domain import HashValue
from service.errors import InvalidInput
from service.media.decode import DEFAULT_DRAFT_SIDE, DEFAULT_MAX_PIXELS, decode_image
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.phash import PHASH
from service.signals.sha256 import SHA256


@dataclass(frozen=True, slots=True)
class ImageHashes:
    """Everything computed from one image.

    `pdq_dihedral` holds the PDQ of the 8 rotations and flips (the original first), so a
    mirrored or rotated re-upload is matched against the list unchanged.
    """

    pdq: HashValue
    pdq_dihedral: tuple[bytes, ...]
    phash: HashValue
    sha256: HashValue
    md5: HashValue

    @property
    def canonical(self) -> list[HashValue]:
        """The hashes a victim submits or an operator is shown."""
        return [self.pdq, self.phash, self.sha256, self.md5]


def pack_bits(bits: np.ndarray) -> bytes:
    """PDQ bit vector -> canonical bytes (bit 0 is the most significant bit of byte 0)."""
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()


def hash_image_bytes(
    data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, draft_side: int = DEFAULT_DRAFT_SIDE
) -> ImageHashes:
    """Decode `data` safely and compute every hash. Raises InvalidInput for non-images.
    `draft_side`: see DEFAULT_DRAFT_SIDE."""
    if not data:
        raise InvalidInput("image is empty")
    return hash_decoded(decode_image(data, max_pixels, draft_side), data)


def hash_decoded(image: Image.Image, data: bytes) -> ImageHashes:
    """Every hash of an image already decoded (by decode_image) from `data`."""
    rgb = np.asarray(image)
    dihedral, quality = pdqhash.compute_dihedral(rgb)
    variants = tuple(pack_bits(bits) for bits in dihedral)
    return ImageHashes(
        pdq=HashValue(PDQ, variants[0], int(quality)),
        pdq_dihedral=variants,
        phash=HashValue(PHASH, phash_bytes(image)),
        sha256=HashValue(SHA256, hashlib.sha256(data).digest()),
        md5=HashValue(MD5, hashlib.md5(data, usedforsecurity=False).digest()),
    )


def phash_bytes(image: Image.Image) -> bytes:
    """imagehash's 64-bit pHash as 8 bytes, in the order of its hex string."""
    return bytes.fromhex(str(imagehash.phash(image)))


def hash_file(path: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageHashes:
    """Hash an image file on disk (the victim's offline `hashguard hash`).

    Every pixel is decoded (no draft): a submitted hash is then the canonical PDQ that
    other PDQ implementations (StopNCII, ThreatExchange) compute for the same file, so
    exported lists interoperate; speed matters on the check path, not here.
    """
    with open(path, "rb") as handle:
        return hash_image_bytes(handle.read(), max_pixels, draft_side=0)
