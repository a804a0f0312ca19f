"""The detection-quality benchmark's own parts, so it cannot silently rot: the transforms
make real images of the expected shape, the metrics follow the service's matching rules
on hand-made hashes, the photo registry and folder loader find real photos, and the whole
benchmark runs end to end on a small folder. The full benchmark runs outside the suite."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from loadtests import quality
from loadtests.photos import REGISTRY, LoadedPhoto, Photo, _file, fit, load_folder, load_registry
from loadtests.quality_metrics import (
    UNMATCHABLE,
    Distances,
    Upload,
    distances,
    either_false_matches,
    either_recall,
    false_match_curve,
    false_match_rate,
    fit_tail,
    recall,
    recall_curve,
    suggest_threshold,
)
from loadtests.transforms import TRANSFORMS, Transform, by_name, encode
from service.media.crops import candidate_queries, window_hashes
from service.media.decode import decode_image
from service.media.hashes import hash_image_bytes

PHOTO = Image.fromarray(skimage.data.chelsea()).resize((240, 160))


@pytest.mark.parametrize("t", TRANSFORMS, ids=lambda t: t.name)
def test_every_transform_makes_an_image_the_service_decodes(t: Transform) -> None:
    """Each transform's bytes decode with the service's own decoder, differ from the
    original's pixels, and have the geometry the transform's name promises."""
    data = t.apply(PHOTO)
    decoded = decode_image(data)
    w, h = PHOTO.size
    expected = {
        "resize 0.5": (120, 80),
        "resize 0.25": (60, 40),
        "screenshot": (144, 96),
        "crop 5%": (w - 2 * 6, h - 2 * 4),
        "crop 10%": (w - 2 * 12, h - 2 * 8),
        "crop 20%": (w - 2 * 24, h - 2 * 16),
        "rotate 90": (h, w),
        "letterbox": (w, w),
        "crop 15%": (w - 2 * 18, h - 2 * 12),
        "crop 10% top-left": (w - 24, h - 16),
        "crop 20% right": (w - 48, h),
        "crop 15% bottom-left": (w - 24 - 12, h - 8 - 16),
        "letterbox 30%": (w, h + 48),
        "letterbox 30% jpeg": (w, h + 48),
        "pillarbox 30%": (w + 72, h),
        "frame white": (w + 2 * 13, h + 2 * 13),
        "frame blue jpeg": (w + 2 * 8, h + 2 * 8),
    }.get(t.name, (w, h))
    assert decoded.size == expected
    original = np.asarray(PHOTO)
    if decoded.size == PHOTO.size and t.name != "mirror":
        assert not np.array_equal(np.asarray(decoded), original), "the edit changed nothing"
    if t.name == "mirror":
        assert np.array_equal(np.asarray(decoded), original[:, ::-1])
    assert t.apply(PHOTO) == data, "transforms must be deterministic"


def test_transforms_encode_as_their_names_say() -> None:
    """JPEG rows are JPEG at that quality; pixel edits are lossless PNG."""
    formats = {t.name: Image.open(io.BytesIO(t.apply(PHOTO))).format for t in TRANSFORMS}
    assert formats["jpeg q30"] == "JPEG" and formats["screenshot"] == "JPEG"
    assert formats["webp q75"] == "WEBP"
    assert formats["watermark"] == formats["crop 10%"] == formats["grayscale"] == "PNG"
    assert len(TRANSFORMS) == len(formats), "transform names must be unique"


def test_transforms_are_selected_by_name() -> None:
    assert [t.name for t in by_name("mirror, jpeg q50")] == ["mirror", "jpeg q50"]
    assert len(by_name(None)) == len(TRANSFORMS)
    with pytest.raises(ValueError, match="unknown transforms"):
        by_name("mirror,sepia")


def _upload(
    photo: int, name: str, pdq_bits: list[int], phash_bits: list[int], q: int = 100
) -> Upload:
    """An upload whose PDQ has the given bits set (variant 0); other variants are far."""
    pdq = np.zeros((8, 32), dtype=np.uint8)
    pdq[1:] = 0xFF  # the rotated/flipped variants: 256 bits from an all-zero hash
    for bit in pdq_bits:
        pdq[0, bit // 8] |= 0x80 >> (bit % 8)
    phash = np.zeros(8, dtype=np.uint8)
    for bit in phash_bits:
        phash[bit // 8] |= 0x80 >> (bit % 8)
    return Upload(photo, name, pdq, q, phash)


def test_metrics_follow_the_services_rules_on_hand_made_hashes() -> None:
    """Two photos far apart; edits at known distances; one low-quality edit."""
    far = list(range(100, 200))  # photo 1's PDQ: 100 bits from photo 0's
    uploads = [
        _upload(0, "original", [], []),
        _upload(0, "edit", [0, 1, 2, 3, 4], [0, 1]),  # PDQ 5, pHash 2 from photo 0
        _upload(0, "low", [0], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], q=10),  # PDQ not usable
        _upload(1, "original", far, list(range(32, 64))),
        _upload(1, "edit", [*far, 0, 1, 2, 3, 4, 5, 6, 7], list(range(30, 64))),  # 8 / 2
        _upload(1, "low", far, list(range(32, 64)), q=10),
    ]
    d = distances(uploads, min_quality=50)
    assert d.genuine("pdq").tolist() == [0, 5, UNMATCHABLE, 0, 8, UNMATCHABLE]
    assert d.genuine("phash").tolist() == [0, 2, 10, 0, 2, 0]
    assert recall(d, "pdq", "edit", 4) == 0.0
    assert recall(d, "pdq", "edit", 5) == 0.5
    assert recall(d, "pdq", "edit", 8) == 1.0
    assert recall(d, "pdq", "low", 256) == 0.0  # quality below the minimum never matches
    assert recall(d, "phash", "low", 9) == 0.5
    assert either_recall(d, "low", 31, 10) == 1.0  # pHash still catches both
    assert either_recall(d, "edit", 5, 1) == 0.5
    # Impostor pairs: each of the 6 uploads against the 3 versions of the other photo.
    assert len(d.impostor("pdq")) == 18
    assert false_match_rate(d, "pdq", 99) == (0.0, 0)
    rate, hits = false_match_rate(d, "pdq", 100)
    assert hits == 3 and rate == pytest.approx(3 / 18)  # usable originals/low, 100 bits apart
    assert either_false_matches(d, 0, 64) == (1.0, 18)
    curve = false_match_curve(d, "pdq", 256)
    assert curve[99] == 0 and curve[100] == pytest.approx(3 / 18) and curve[256] <= 1
    assert recall_curve(d, "pdq", ["edit"], 256)[0, [4, 5, 8]].tolist() == [0.0, 0.5, 1.0]


def test_dihedral_variants_count_for_pdq_but_phash_is_plain() -> None:
    """A mirrored upload matches through whichever variant is closest, as the matcher does."""
    original = _upload(0, "original", [], [])
    mirrored = _upload(0, "mirror", list(range(64)), [])
    mirrored.pdq_dihedral[5] = 0  # its flip variant equals the listed hash
    d = distances([original, mirrored], min_quality=50)
    assert d.genuine("pdq").tolist() == [0, 0]


def test_subset_keeps_only_the_chosen_photos() -> None:
    uploads = [_upload(p, n, [p], []) for p in range(3) for n in ("original", "edit")]
    d = distances(uploads, min_quality=50).subset([0, 2])
    assert d.photo.tolist() == [0, 0, 2, 2]
    assert d.genuine("pdq").tolist() == [0, 0, 0, 0]
    assert len(d.impostor("pdq")) == 8


def test_tail_fit_and_suggestion_on_a_known_distribution() -> None:
    """Counts that grow tenfold every 4 bits: the fit finds that slope, and the suggestion
    is the largest threshold whose modelled false matches fit the budget."""
    values = np.concatenate([np.full(10 ** (k // 4 + 1), 100 + k) for k in range(0, 20, 4)])
    fit = fit_tail(values)
    assert fit is not None
    assert fit.slope == pytest.approx(0.25, abs=0.03)
    assert fit.rate(60) < fit.rate(80) < fit.rate(100) <= 1
    assert fit_tail(np.arange(10)) is None  # too few pairs to say anything


def test_suggestion_stays_below_the_nearest_measured_false_match() -> None:
    """400 distinct photos, distinct pairs about 110 bits apart but one pair at 40: however
    generous the budget, the suggestion stays below 40; a strict budget lowers it."""
    n = 400
    rng = np.random.default_rng(3)
    table = rng.normal(110, 5, (n, n)).round().astype(np.int64)
    table[7, 9] = 40
    d = Distances(np.arange(n), np.array(["original"] * n), table, table.copy())
    assert suggest_threshold(d, "pdq", 256, list_size=1, budget=1.0) == 39
    strict = suggest_threshold(d, "pdq", 256, list_size=10**7, budget=1e-20)
    assert strict is not None and strict < 39
    assert suggest_threshold(d, "pdq", 256, list_size=10**7, budget=1e-60) is None


def test_registry_names_are_unique_and_both_splits_hold_photos() -> None:
    names = [p.name for p in REGISTRY]
    assert len(names) == len(set(names)) >= 40
    assert {p.split for p in REGISTRY} == {"tune", "holdout"}
    sources = {p.source for p in REGISTRY}
    for source in sources - {"matplotlib"}:
        splits = {p.split for p in REGISTRY if p.source == source}
        assert splits == {"tune", "holdout"}, source


def test_registry_loads_package_photos_scaled_to_the_cap() -> None:
    """skimage and PyWavelets are always installed; their photos load as RGB."""
    subset = [p for p in REGISTRY if p.source in ("scikit-image", "PyWavelets")][:4]
    photos, missing = load_registry(max_side=300, registry=subset)
    assert missing == []
    assert [p.name for p in photos] == [p.name for p in subset]
    assert all(p.image.mode == "RGB" and max(p.image.size) <= 300 for p in photos)


def test_missing_photos_are_reported_not_fatal(tmp_path: Path) -> None:
    gone = Photo("gone", "nowhere", "tune", _file(str(tmp_path / "missing.jpg")))
    photos, missing = load_registry(registry=[gone])
    assert photos == [] and len(missing) == 1 and "gone (nowhere)" in missing[0]


def test_fit_scales_down_only() -> None:
    assert fit(PHOTO, 120).size == (120, 80)
    assert fit(PHOTO, 1000) is PHOTO


def _photo_folder(folder: Path) -> Path:
    for name in ("astronaut", "coffee", "rocket", "camera"):
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        image.thumbnail((256, 256))
        image.save(folder / f"{name}.jpg", quality=92)
    (folder / "notes.txt").write_text("not a photo")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def test_folder_loader_reads_every_image_and_skips_the_rest(tmp_path: Path) -> None:
    photos = load_folder(_photo_folder(tmp_path), max_side=128)
    assert sorted(p.name for p in photos) == [
        "astronaut.jpg",
        "camera.jpg",
        "coffee.jpg",
        "rocket.jpg",
    ]
    assert all(p.split == "holdout" and max(p.image.size) == 128 for p in photos)


def test_benchmark_runs_end_to_end_on_a_users_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--photos DIR` with a few transforms: real hashing, tables and the failure list."""
    folder = _photo_folder(tmp_path)
    code = quality.main(
        ["--photos", str(folder), "--transforms", "jpeg q50,mirror,crop 20%", "--jobs", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "4 photos" in out and "3 transforms" in out and "16 uploads" in out
    assert "| jpeg q50 |" in out and "| mirror |" in out
    assert "pairs of (upload, a version of another photo as the listed hash): 192" in out
    assert "missed by either rule" in out
    # JPEG q50 of a natural photo is well within PDQ's default radius.
    row = next(line for line in out.splitlines() if line.startswith("| jpeg q50 |"))
    assert row.split("|")[2].strip() == "100%"


def test_benchmark_hashes_what_the_service_hashes() -> None:
    """The benchmark's upload for a transform is the service's own hash of those bytes."""
    photo = LoadedPhoto("chelsea", "test", "tune", PHOTO)
    [uploads] = quality.hash_uploads((0, photo, "jpeg q70", (512,), 50, False))
    expected = hash_image_bytes(next(t for t in TRANSFORMS if t.name == "jpeg q70").apply(PHOTO))
    assert [u.transform for u in uploads] == ["original", "jpeg q70"]
    assert uploads[1].pdq_dihedral.tobytes() == b"".join(expected.pdq_dihedral)
    assert uploads[1].phash.tobytes() == expected.phash.value
    assert uploads[1].pdq_quality == expected.pdq.quality


def test_with_crops_the_benchmark_lists_and_queries_what_the_product_does() -> None:
    """Crop matching's benchmark: the original's window hashes are `hashguard hash`'s
    (full decode), an upload's extra queries are the check path's candidate parts."""
    photo = LoadedPhoto("chelsea", "test", "tune", PHOTO)
    [uploads] = quality.hash_uploads((0, photo, "letterbox 30% jpeg", (512,), 50, True))
    original = decode_image(encode(PHOTO), draft_side=0)
    data = by_name("letterbox 30% jpeg")[0].apply(PHOTO)
    windows = uploads[0].pdq_windows
    assert windows is not None and uploads[1].pdq_windows is None
    assert windows.tobytes() == b"".join(h.value for h in window_hashes(original, 50))
    extra = uploads[1].pdq_extra
    assert extra is not None and len(extra) >= 1
    parts = candidate_queries(decode_image(data), 50)
    assert extra.tobytes() == b"".join(parts.pdq)
    phash_extra = uploads[1].phash_extra
    assert phash_extra is not None and len(phash_extra) >= 1  # the photo inside the bars
    assert phash_extra.tobytes() == b"".join(parts.phash)


def test_window_distances_take_the_nearest_of_queries_and_windows() -> None:
    """A crop whose extra query equals its photo's window is found in the window table
    only; another photo's upload with the same query is a false match there."""
    zeros, ones = np.zeros((1, 32), np.uint8), np.full((8, 32), 0xFF, np.uint8)
    phash = np.zeros(8, np.uint8)
    listed = Upload(0, "original", np.full((8, 32), 0x0F, np.uint8), 100, phash, None, zeros)
    crop = Upload(0, "crop", ones, 100, phash + 0xFF, zeros, None)
    other = Upload(1, "original", ones & 0x33, 100, phash + 0xF0, zeros, None)
    d = distances([listed, crop, other], min_quality=50)
    assert d.window is not None
    assert d.window[1, 0] == 0 and d.window[0, 1] == UNMATCHABLE
    assert d.pdq[1, 0] == 128  # 0xFF against 0x0F: 4 bits a byte
    assert either_recall(d, "crop", 31, 0) == 0.0
    assert either_recall(d, "crop", 31, 0, window=31) == 1.0
    assert either_false_matches(d, 31, 0)[1] == 0
    assert either_false_matches(d, 31, 0, window=31)[1] == 1  # other -> photo 0's window


def test_phash_distances_take_the_nearest_of_the_upload_and_its_whole_photo_parts() -> None:
    """A letterboxed upload whose part's pHash equals its photo's is matched by pHash;
    another photo whose part's pHash equals it is counted as a false match."""
    pdq = np.full((8, 32), 0x0F, np.uint8)
    listed = Upload(0, "original", pdq, 100, np.zeros(8, np.uint8))
    boxed = Upload(
        0,
        "letterbox",
        pdq ^ 0xFF,
        100,
        np.full(8, 0xFF, np.uint8),
        None,
        None,
        np.zeros((1, 8), np.uint8),
    )
    other = Upload(
        1,
        "original",
        pdq ^ 0x3C,
        100,
        np.full(8, 0x0F, np.uint8),
        None,
        None,
        np.zeros((1, 8), np.uint8),
    )
    d = distances([listed, boxed, other], min_quality=50)
    assert d.phash[1, 0] == 0 and d.phash[0, 1] == 64  # the part against the listed pHash
    assert d.phash[2, 0] == 0  # other's part is as close: a false match, counted
    assert either_recall(d, "letterbox", 31, 0) == 1.0
    assert either_false_matches(d, 31, 0)[1] == 1
    plain = distances([listed, Upload(0, "letterbox", pdq ^ 0xFF, 100, boxed.phash)], 50)
    assert either_recall(plain, "letterbox", 31, 0) == 0.0
