"""The degenerate-hash rule refuses what flat images hash to and lets real photos through:
hashes computed by service.media.hashes from natural photos (skimage.data and the PDQ
fixtures) and from generated flat and nearly flat images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from service import submission_file
from service.domain import HashValue
from service.errors import RefusedSubmission
from service.media.crops import window_hashes
from service.media.decode import decode_image
from service.media.hashes import hash_image_bytes
from service.signals.pdq import PDQ
from service.submission_checks import check_submission
from tests.support import encode, run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "pdq"
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page"]


def natural_images() -> list[tuple[str, bytes]]:
    found = [(name, encode(getattr(skimage.data, name)(), "PNG")) for name in PHOTOS]
    found += [(p.name, p.read_bytes()) for p in sorted(FIXTURES.rglob("*.jp*g"))]
    return found


@pytest.mark.parametrize(("name", "image"), natural_images(), ids=lambda v: str(v)[:20])
def test_real_photos_pass(name: str, image: bytes) -> None:
    hashed = hash_image_bytes(image)
    assert hashed.pdq.quality is not None and hashed.pdq.quality >= 50, name
    windows = window_hashes(decode_image(image), min_quality=50)
    check_submission([*hashed.canonical, *windows], pdq_min_quality=50)


@pytest.mark.parametrize("grey", [0, 128, 255])
def test_flat_images_are_refused(grey: int) -> None:
    """A flat image's PDQ is all zeros or noise of quality 0; its pHash keeps at most
    the DC bit."""
    hashed = hash_image_bytes(encode(np.full((256, 256, 3), grey, np.uint8), "PNG"))
    expected = (
        (hashed.pdq, {"constant", "low_quality"}),
        (hashed.phash, {"constant", "near_constant"}),
    )
    for h, reasons in expected:
        with pytest.raises(RefusedSubmission) as refused:
            check_submission([hashed.sha256, h], pdq_min_quality=50)
        assert str(refused.value).startswith(f"hashes[1] ({h.algorithm.name} ")
        assert refused.value.reason in reasons


def test_pdq_of_unknown_quality_is_judged_by_its_bits() -> None:
    balanced = bytes(range(32))  # 4 bits set per byte on average
    check_submission([HashValue(PDQ, balanced)], pdq_min_quality=50)
    sparse = bytes(31) + b"\x01"
    with pytest.raises(RefusedSubmission, match="1 of its 256 bits are set") as refused:
        check_submission([HashValue(PDQ, sparse)], pdq_min_quality=50)
    assert refused.value.reason == "near_constant"


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
def test_a_photo_hashed_twice_is_submitted_once(tmp_path: Path) -> None:
    photo = encode(skimage.data.chelsea(), "JPEG", quality=90)
    (tmp_path / "a.jpg").write_bytes(photo)
    (tmp_path / "copy of a.jpg").write_bytes(photo)
    out = tmp_path / "submission.json"
    run_cli("hash", str(tmp_path / "a.jpg"), str(tmp_path / "copy of a.jpg"), "--out", str(out))
    hashes = submission_file.load(out)
    single = tmp_path / "single.json"
    run_cli("hash", str(tmp_path / "a.jpg"), "--out", str(single))
    assert sorted(h.value for h in hashes) == sorted(h.value for h in submission_file.load(single))
    check_submission(hashes, pdq_min_quality=50)
