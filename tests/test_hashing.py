"""Image bytes -> hashes: reference vectors, decoding edge cases and robustness.

The service is only useful if its PDQ hashes agree with the ones other systems publish
(ThreatExchange, StopNCII-style lists) and if mild edits of a photo stay close while
different photos stay far apart; these tests check both on real photos.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import struct
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import imagehash
import numpy as np
import pytest
import skimage.data
from PIL import Image

from service.errors import InvalidInput
from service.media.decode import decode_image
from service.media.hashes import ImageHashes, hash_file, hash_image_bytes
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.phash import PHASH
from service.signals.sha256 import SHA256
from tests.support import encode

FIXTURES = Path(__file__).parent / "fixtures" / "pdq"
PDQ_THRESHOLD = 38  # the service's default PDQ match radius (docs/QUALITY.md)
PHASH_THRESHOLD = 0  # the service's default pHash match radius (docs/QUALITY.md)
# Reference implementations resize and convert colours slightly differently; the largest
# disagreement we measured between ours and theirs on these vectors is 12 bits.
CROSS_IMPLEMENTATION_BITS = 12
PYTX_SOURCE = "TE:python-threatexchange"
ORIENTATION_TAG = 0x0112

PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "camera": skimage.data.camera,
    "hubble_deep_field": skimage.data.hubble_deep_field,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "retina": skimage.data.retina,
    "coins": skimage.data.coins,
    "moon": skimage.data.moon,
    "page": skimage.data.page,
    "clock": skimage.data.clock,
    "brick": skimage.data.brick,
    "grass": skimage.data.grass,
    "gravel": skimage.data.gravel,
}
COLOUR_PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


def distance(a: bytes, b: bytes) -> int:
    """Hamming distance, computed independently of the index code under test."""
    assert len(a) == len(b)
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@cache
def photo(name: str) -> Image.Image:
    """A natural photo as a Pillow image (cached: several tests reuse the same ones)."""
    return Image.fromarray(PHOTOS[name]())


@cache
def photo_hashes(name: str) -> ImageHashes:
    """Hashes of the lossless PNG of a photo, the 'original' the edits are compared to."""
    return hash_image_bytes(encode(photo(name)))


def load_vectors() -> list[dict[str, str]]:
    """Rows of the copied ThreatExchange vector table."""
    with open(FIXTURES / "vectors.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


VECTORS = load_vectors()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares width x height: a decompression bomb's calling card."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * min(height * (width + 1), 64))  # black rows, or their start
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# --- Reference vectors ---------------------------------------------------------------


def test_vector_table_covers_every_group() -> None:
    """Guards against a truncated copy of the table silently shrinking the vector tests."""
    groups = {row["file"].split("/")[0] for row in VECTORS}
    assert groups == {"bridge-mods", "reg-test-input", "pytx-resources"}
    assert sum(row["source"].startswith(PYTX_SOURCE) for row in VECTORS) == 4
    assert len(VECTORS) == 54


@pytest.mark.parametrize(
    "row",
    [r for r in VECTORS if r["source"].startswith(PYTX_SOURCE)],
    ids=lambda r: r["file"],
)
def test_python_threatexchange_vectors_match_exactly(row: dict[str, str]) -> None:
    """We decode like python-threatexchange (Pillow + pdqhash), so hashes must be identical."""
    hashes = hash_file(str(FIXTURES / row["file"]))
    assert hashes.pdq.algorithm is PDQ
    assert hashes.pdq.value.hex() == row["expected_pdq_hex"]
    assert hashes.pdq.value == bytes.fromhex(row["expected_pdq_hex"])
    if row["quality"]:
        assert hashes.pdq.quality == int(row["quality"])


@pytest.mark.parametrize(
    "row",
    [r for r in VECTORS if not r["source"].startswith(PYTX_SOURCE)],
    ids=lambda r: f"{r['file']}|{r['source'].split()[0]}",
)
def test_other_reference_implementations_agree_within_tolerance(row: dict[str, str]) -> None:
    """C++/Java/pure-python/WASM ports disagree by up to ~12 bits; so may we, no more."""
    hashes = hash_file(str(FIXTURES / row["file"]))
    expected = bytes.fromhex(row["expected_pdq_hex"])
    assert distance(hashes.pdq.value, expected) <= CROSS_IMPLEMENTATION_BITS


def test_canonical_hex_round_trips() -> None:
    """Lists are exchanged as hex strings; the bytes we store must print back as them."""
    row = next(r for r in VECTORS if r["file"] == "pytx-resources/rgb.jpeg")
    hashes = hash_file(str(FIXTURES / row["file"]))
    assert hashes.pdq.hex == row["expected_pdq_hex"]
    assert bytes.fromhex(hashes.pdq.hex) == hashes.pdq.value
    assert len(hashes.pdq.value) == PDQ.size == 32
    with Image.open(FIXTURES / row["file"]) as image:
        expected_phash = str(imagehash.phash(image.convert("RGB")))
    assert hashes.phash.hex == expected_phash
    assert len(hashes.phash.value) == PHASH.size == 8


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
def test_reference_dihedral_images_match_our_dihedral_variants() -> None:
    """The 8 published rotations/flips of one photo each land on the matching variant."""
    folder = FIXTURES / "reg-test-input" / "dih"
    files = sorted(folder.glob("bridge-*.jpg"))
    assert len(files) == 8
    original = hash_file(str(files[0]))
    assert original.pdq_dihedral[0] == original.pdq.value
    for expected_index, path in enumerate(files):
        value = hash_file(str(path)).pdq.value
        dists = [distance(value, variant) for variant in original.pdq_dihedral]
        assert dists.index(min(dists)) == expected_index, (path.name, dists)
        assert min(dists) <= CROSS_IMPLEMENTATION_BITS, (path.name, dists)
        others = dists[:expected_index] + dists[expected_index + 1 :]
        assert min(others) > PDQ_THRESHOLD, (path.name, dists)


# --- Structure and digests -----------------------------------------------------------


def test_result_fields_have_canonical_shapes_and_digests() -> None:
    """Every field has the size the store and wire format expect; digests cover raw bytes."""
    data = encode(photo("chelsea"), "JPEG", quality=90)
    hashes = hash_image_bytes(data)
    assert hashes.pdq.algorithm is PDQ
    assert hashes.phash.algorithm is PHASH
    assert hashes.sha256.algorithm is SHA256
    assert hashes.md5.algorithm is MD5
    assert hashes.sha256.value == hashlib.sha256(data).digest()
    assert hashes.md5.value == hashlib.md5(data).digest()
    assert len(hashes.pdq_dihedral) == 8
    assert all(len(v) == 32 for v in hashes.pdq_dihedral)
    assert len(set(hashes.pdq_dihedral)) == 8
    assert hashes.pdq_dihedral[0] == hashes.pdq.value
    assert isinstance(hashes.pdq.quality, int)
    assert 0 <= hashes.pdq.quality <= 100
    assert hashes.canonical == [hashes.pdq, hashes.phash, hashes.sha256, hashes.md5]


def test_hash_file_equals_hashing_its_bytes(tmp_path: Path) -> None:
    """The offline CLI path must produce the same hashes as the upload path."""
    data = encode(photo("rocket"), "JPEG", quality=85)
    path = tmp_path / "rocket.jpg"
    path.write_bytes(data)
    assert hash_file(str(path)) == hash_image_bytes(data)


def test_same_pixels_in_different_files_share_perceptual_but_not_digest_hashes() -> None:
    """A re-encode changes SHA-256/MD5 but not the picture, so PDQ and pHash stay equal."""
    png = hash_image_bytes(encode(photo("coffee"), "PNG"))
    bmp = hash_image_bytes(encode(photo("coffee"), "BMP"))
    assert png.pdq == bmp.pdq
    assert png.phash == bmp.phash
    assert png.sha256 != bmp.sha256
    assert png.md5 != bmp.md5


def test_flat_image_has_zero_quality() -> None:
    """A featureless image has no signal; PDQ's quality says so, unlike a real photo's."""
    flat = hash_image_bytes(encode(Image.new("RGB", (64, 64), (120, 130, 140))))
    assert flat.pdq.quality == 0
    assert photo_hashes("astronaut").pdq.quality == 100


# --- Robustness to edits, discrimination between photos ------------------------------


@pytest.mark.parametrize("name", [*COLOUR_PHOTOS, "camera"])
def test_jpeg_quality_40_stays_within_thresholds(name: str) -> None:
    """A heavily recompressed re-upload must still match the original."""
    original = photo_hashes(name)
    recompressed = hash_image_bytes(encode(photo(name), "JPEG", quality=40))
    assert distance(original.pdq.value, recompressed.pdq.value) <= PDQ_THRESHOLD
    assert distance(original.phash.value, recompressed.phash.value) <= PHASH_THRESHOLD


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
def test_distinct_photos_are_far_apart() -> None:
    """Different photos must not match each other, or innocent uploads get blocked."""
    hashes = {name: photo_hashes(name) for name in PHOTOS}
    for a, b in itertools.combinations(PHOTOS, 2):
        assert distance(hashes[a].pdq.value, hashes[b].pdq.value) > PDQ_THRESHOLD, (a, b)
        assert distance(hashes[a].phash.value, hashes[b].phash.value) > PHASH_THRESHOLD, (a, b)


# PDQ variant order: original, rot90, rot180, rot270, flip x, flip y, flip +1, flip -1.
# Pillow's ROTATE_* turn counter-clockwise; FLIP_TOP_BOTTOM mirrors about the x axis.
DIHEDRAL_INDEX = {
    Image.Transpose.ROTATE_90: 1,
    Image.Transpose.ROTATE_180: 2,
    Image.Transpose.ROTATE_270: 3,
    Image.Transpose.FLIP_TOP_BOTTOM: 4,
    Image.Transpose.FLIP_LEFT_RIGHT: 5,
    Image.Transpose.TRANSPOSE: 6,
    Image.Transpose.TRANSVERSE: 7,
}
# The dihedral variants come from the DCT of the original; re-hashing transformed pixels
# resamples differently, and we measured up to 16 bits between the two.
DIHEDRAL_BITS = 20


@pytest.mark.parametrize("name", COLOUR_PHOTOS)
@pytest.mark.parametrize("transform", list(DIHEDRAL_INDEX), ids=lambda t: t.name)
def test_mirrored_or_rotated_copy_matches_its_dihedral_variant(
    name: str, transform: Image.Transpose
) -> None:
    """Mirroring or rotating a photo must not evade the list: one variant still matches."""
    original = photo_hashes(name)
    moved = hash_image_bytes(encode(photo(name).transpose(transform))).pdq.value
    dists = [distance(moved, variant) for variant in original.pdq_dihedral]
    assert dists[DIHEDRAL_INDEX[transform]] == min(dists), dists
    assert min(dists) <= DIHEDRAL_BITS, dists
    # Without the dihedral variants the moved copy would not have matched at all.
    assert dists[0] > PDQ_THRESHOLD, dists


def large_photo() -> Image.Image:
    """A natural photo at 2048x1536 (3 megapixels), large enough for draft decoding."""
    return photo("coffee").resize((2048, 1536), Image.Resampling.BICUBIC)


def test_large_jpeg_decodes_at_reduced_scale_and_hashes_close_to_full_decode() -> None:
    """A big JPEG is decoded at 1/2 scale (both sides stay >= 512), which is what makes
    hashing it cheap; its PDQ and pHash stay within a few bits of a full decode."""
    data = encode(large_photo(), "JPEG", quality=90)
    assert decode_image(data).size == (1024, 768)
    assert decode_image(data, draft_side=0).size == (2048, 1536)
    drafted, full = hash_image_bytes(data), hash_image_bytes(data, draft_side=0)
    assert distance(drafted.pdq.value, full.pdq.value) <= 16
    assert distance(drafted.phash.value, full.phash.value) <= 4
    assert drafted.sha256 == full.sha256 and drafted.md5 == full.md5  # the file's bytes


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
def test_victims_hash_files_from_every_pixel(tmp_path: Path) -> None:
    """`hashguard hash` must give the canonical PDQ other implementations compute, so a
    victim's hash of a big JPEG ignores the check path's draft decoding."""
    data = encode(large_photo(), "JPEG", quality=90)
    path = tmp_path / "large.jpg"
    path.write_bytes(data)
    assert hash_file(str(path)) == hash_image_bytes(data, draft_side=0)
    assert hash_file(str(path)).pdq != hash_image_bytes(data).pdq


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_draft_decoding_leaves_other_formats_at_full_size(fmt: str) -> None:
    assert decode_image(encode(large_photo(), fmt)).size == (2048, 1536)


def test_small_jpeg_is_decoded_pixel_for_pixel() -> None:
    """Below twice the draft side nothing is scaled, so small uploads hash exactly as
    python-threatexchange does."""
    data = encode(photo("astronaut"), "JPEG", quality=90)
    assert hash_image_bytes(data) == hash_image_bytes(data, draft_side=0)


# --- Decoding: orientation and pixel modes --------------------------------------------


@pytest.mark.parametrize(
    ("tag", "stored_as"),
    [
        (6, Image.Transpose.ROTATE_90),  # viewer turns it 90 degrees clockwise
        (8, Image.Transpose.ROTATE_270),  # viewer turns it 90 degrees counter-clockwise
        (3, Image.Transpose.ROTATE_180),
    ],
)
@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_exif_orientation_is_applied(name: str, tag: int, stored_as: Image.Transpose) -> None:
    """Phones store pixels sideways plus an EXIF tag; we must hash what a person sees."""
    upright = photo(name)
    upright_pdq = hash_image_bytes(encode(upright, "JPEG", quality=95)).pdq.value
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = tag
    sideways = upright.transpose(stored_as)
    with_tag = encode(sideways, "JPEG", quality=95, exif=exif)
    without_tag = encode(sideways, "JPEG", quality=95)

    with Image.open(io.BytesIO(with_tag)) as stored:
        assert stored.getexif()[ORIENTATION_TAG] == tag
        assert stored.size == sideways.size
    assert decode_image(with_tag).size == upright.size
    assert distance(hash_image_bytes(with_tag).pdq.value, upright_pdq) <= 4
    # The same pixels without the tag hash as a different picture, so the tag mattered.
    assert distance(hash_image_bytes(without_tag).pdq.value, upright_pdq) > PDQ_THRESHOLD


def rgb_reference(name: str) -> bytes:
    """PDQ of the photo as plain RGB pixels, the value other modes are compared to."""
    return photo_hashes(name).pdq.value


def as_palette() -> bytes:
    return encode(photo("astronaut").convert("P", palette=Image.Palette.ADAPTIVE, colors=256))


def as_rgba() -> bytes:
    rgba = photo("astronaut").copy()
    rgba.putalpha(255)
    return encode(rgba)


def as_cmyk_jpeg() -> bytes:
    return encode(photo("astronaut").convert("CMYK"), "JPEG", quality=95)


def as_grayscale() -> bytes:
    return encode(photo("camera").convert("L"))


def as_grayscale_alpha() -> bytes:
    return encode(photo("camera").convert("LA"))


def as_16_bit() -> bytes:
    """8-bit values stored in a 16-bit PNG (mode I;16)."""
    return encode(Image.fromarray(skimage.data.camera().astype(np.uint16)))


@pytest.mark.parametrize(
    ("mode", "make", "reference", "max_bits"),
    [
        ("P", as_palette, "astronaut", 8),  # 256-colour quantisation moves a few bits
        ("RGBA", as_rgba, "astronaut", 0),
        ("CMYK", as_cmyk_jpeg, "astronaut", PDQ_THRESHOLD),  # lossy JPEG round trip
        ("L", as_grayscale, "camera", 0),
        ("LA", as_grayscale_alpha, "camera", 0),
        ("I;16", as_16_bit, "camera", 0),
    ],
)
def test_every_pixel_mode_hashes_like_its_rgb_pixels(
    mode: str, make: Callable[[], bytes], reference: str, max_bits: int
) -> None:
    """Uploads arrive in every mode; each must hash, and hash as the picture it shows."""
    data = make()
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == mode  # the file really is in the mode under test
    decoded = decode_image(data)
    assert decoded.mode == "RGB"
    hashes = hash_image_bytes(data)
    assert distance(hashes.pdq.value, rgb_reference(reference)) <= max_bits


def test_16_bit_values_saturate_like_python_threatexchange() -> None:
    """Documented choice: convert("RGB") clips 16-bit values at 255, as pytx does, so a
    wide-range 16-bit image hashes exactly as its clipped 8-bit version."""
    wide = skimage.data.camera().astype(np.uint16) * 64  # values up to 16320
    sixteen_bit = hash_image_bytes(encode(Image.fromarray(wide)))
    clipped = hash_image_bytes(encode(Image.fromarray(np.minimum(wide, 255).astype(np.uint8))))
    assert sixteen_bit.pdq == clipped.pdq
    assert sixteen_bit.phash == clipped.phash


# --- Refusals ------------------------------------------------------------------------


@cache
def whole_file(fmt: str) -> bytes:
    return encode(photo("astronaut"), fmt)


def truncated(fmt: str, fraction: float) -> bytes:
    """The first `fraction` of a file, as an interrupted upload delivers it."""
    data = whole_file(fmt)
    return data[: int(len(data) * fraction)]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"this is not an image, it is a sentence", id="text"),
        pytest.param(bytes(np.random.default_rng(7).integers(0, 256, 4096, np.uint8)), id="noise"),
        pytest.param(b"\x89PNG\r\n\x1a\n", id="png-signature-only"),
        pytest.param(b"\xff\xd8\xff\xe0", id="jpeg-marker-only"),
        pytest.param(truncated("PNG", 0.5), id="png-half"),
        pytest.param(truncated("PNG", 0.05), id="png-5pct"),
        pytest.param(truncated("JPEG", 0.5), id="jpeg-half"),
        pytest.param(truncated("JPEG", 0.9), id="jpeg-90pct"),
        pytest.param(truncated("PNG", 0.001), id="png-0.1pct"),
    ],
)
def test_non_images_and_truncated_images_are_refused(data: bytes) -> None:
    """Strangers send anything; every undecodable upload must be a clean InvalidInput."""
    with pytest.raises(InvalidInput):
        hash_image_bytes(data)


def test_untruncated_files_hash() -> None:
    """Control for the truncation cases: the whole files they were cut from do hash."""
    for fmt in ("PNG", "JPEG"):
        assert hash_image_bytes(whole_file(fmt)).pdq.quality == 100


def test_pixel_cap_is_enforced_at_the_boundary() -> None:
    """max_pixels is a hard cap: equal to it is accepted, one row more is refused."""
    at_cap = encode(photo("chelsea").resize((40, 25)))  # 1000 pixels
    over_cap = encode(photo("chelsea").resize((40, 26)))  # 1040 pixels
    assert len(hash_image_bytes(at_cap, max_pixels=1000).pdq.value) == 32
    with pytest.raises(InvalidInput, match="limit"):
        hash_image_bytes(over_cap, max_pixels=1000)
    with pytest.raises(InvalidInput):
        decode_image(over_cap, max_pixels=1000)


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (9_000, 9_000, "the limit is 64,000,000"),  # our default cap, below Pillow's
        (10_000, 10_000, "decompression bomb"),  # Pillow's warning level (~89 M pixels)
        (100_000, 100_000, "decompression bomb"),  # Pillow's hard error level
    ],
)
def test_decompression_bombs_are_refused_by_size(width: int, height: int, reason: str) -> None:
    """A few hundred bytes declaring billions of pixels are refused for their size (the
    message says so), not by running out of data half way through allocating them."""
    data = png_header_only(width, height)
    assert len(data) < 200
    with pytest.raises(InvalidInput, match=reason):
        hash_image_bytes(data)


def test_crafted_png_is_well_formed() -> None:
    """Control for the bomb cases: the same construction at a small size decodes."""
    hashes = hash_image_bytes(png_header_only(4, 4))
    assert hashes.pdq.quality == 0  # all black
    assert decode_image(png_header_only(4, 4)).size == (4, 4)


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO"])
def test_formats_outside_the_upload_allow_list_are_refused(fmt: str) -> None:
    """Pillow decodes these, but uploads never need them: fewer decoders, less surface."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format=fmt)
    with pytest.raises(InvalidInput, match="not an image format"):
        hash_image_bytes(buffer.getvalue())


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
def test_huge_uploads_are_reduced_before_hashing_and_stay_close() -> None:
    """Above 16 megapixels the check path box-reduces the decoded image (a bomb then
    costs a fraction of its full decode); the victim's path still hashes every pixel."""
    big = photo("coffee").convert("L").resize((4096, 4096), Image.Resampling.BICUBIC)
    data = encode(big, "PNG", compress_level=1)
    assert decode_image(data).size == (1366, 1366)  # 16.8 MP, reduced by 3
    assert decode_image(data, draft_side=0).size == (4096, 4096)
    reduced, full = hash_image_bytes(data), hash_image_bytes(data, draft_side=0)
    assert distance(reduced.pdq.value, full.pdq.value) <= 8
    assert distance(reduced.phash.value, full.phash.value) <= 2
