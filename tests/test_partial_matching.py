"""Partial matching (issue 18): a victim's photo found when it is only part of an upload
(off-centre crops, a small rotation, a collage tile, the photo in a phone screenshot, a
photo pasted on a busy picture), the pure parts that find it, and the whole path through
a real server: each kind is caught, the rotated and panel matches say where in the upload
they are, and they only ask for REVIEW even once the photo's entries are vetted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests.partial_transforms import phone_screenshot, rotate
from loadtests.transforms import off_centre_crop
from service.media.crops import DEFAULT_WINDOWS, OFF_CENTRE_WINDOWS
from service.media.deskew import rotation_angle
from service.media.panels import MAX_GROWN, MAX_PANELS, panel_boxes
from service.media.regions import describe
from service.media.snap import snapped
from tests.support import ServerProcess, Stubs, add_key, bearer, encode, run_cli

pytestmark = pytest.mark.slow  # starts real servers

PHOTO = Image.fromarray(skimage.data.chelsea()).convert("RGB")
OTHERS = [
    Image.fromarray(f()).convert("RGB")
    for f in (skimage.data.astronaut, skimage.data.coffee, skimage.data.rocket)
]
# Busy pictures the photo is pasted on: a star field, and natural photos (found since
# panel sides are judged on colour and a crossed rectangle is no longer dropped).
BUSY = Image.fromarray(skimage.data.hubble_deep_field()).convert("RGB")


def collage_with_box(
    photo: Image.Image, others: list[Image.Image], n: int, gutter: int
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """An n x n grid on a 1080 px canvas, the photo in the second cell, `others` around it,
    and where the photo is; each picture scaled into its cell (aspect kept, never
    enlarged) on white gutters, or stretched to fill it when `gutter` is 0 (tiles
    touching: hard edges only)."""
    cell = (1080 - gutter * (n + 1)) // n
    canvas = Image.new("RGB", (1080, 1080), (255, 255, 255))
    box = (0, 0, 0, 0)
    for k in range(n * n):
        picture = photo if k == 1 else others[k % len(others)]
        if gutter:
            tile = picture.copy()
            tile.thumbnail((cell, cell))
        else:
            tile = picture.resize((cell, cell))
        x, y = gutter + (k % n) * (cell + gutter), gutter + (k // n) * (cell + gutter)
        at = (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2)
        canvas.paste(tile, at)
        if k == 1:
            box = (at[0], at[1], at[0] + tile.width, at[1] + tile.height)
    return canvas, box


def collage(photo: Image.Image, others: list[Image.Image], n: int, gutter: int) -> Image.Image:
    return collage_with_box(photo, others, n, gutter)[0]


def pasted(photo: Image.Image, background: Image.Image) -> Image.Image:
    """The photo at half the width of a busy picture, pasted off centre on it."""
    canvas = background.resize((1024, 1024))
    small = photo.resize((512, round(512 * photo.height / photo.width)))
    canvas.paste(small, (120, 420))
    return canvas


# -- the pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(("degrees", "fill"), [(3, (0, 0, 0)), (-5, (0, 0, 0)), (10, (255,) * 3)])
def test_the_angle_of_a_small_rotation_is_read_from_the_filled_corners(
    degrees: float, fill: tuple[int, int, int]
) -> None:
    turned = np.asarray(rotate(degrees, fill, PHOTO))
    angle = rotation_angle(turned)
    assert angle is not None and abs(angle - degrees) < 0.25


def test_no_angle_for_a_plain_photo_or_a_letterbox() -> None:
    assert rotation_angle(np.asarray(PHOTO)) is None
    boxed = Image.new("RGB", (PHOTO.width, PHOTO.width), (0, 0, 0))
    boxed.paste(PHOTO, (0, (PHOTO.width - PHOTO.height) // 2))
    assert rotation_angle(np.asarray(boxed)) is None


@pytest.mark.parametrize(("n", "gutter"), [(2, 12), (3, 0)])
def test_the_tiles_of_a_collage_are_panels(n: int, gutter: int) -> None:
    image, box = collage_with_box(PHOTO, OTHERS, n, gutter)
    found = panel_boxes(np.asarray(image.resize((512, 512))))
    assert 0 < len(found) <= MAX_PANELS + MAX_GROWN
    want = np.multiply(box, 512 / 1080)
    assert any(np.abs(np.subtract(b, want)).max() <= 3 for b in found), (found, want)


def test_the_photo_in_a_phone_screenshot_is_a_panel() -> None:
    shot = phone_screenshot(PHOTO)
    small = shot.resize((round(shot.width * 512 / shot.height), 512))
    scale = 512 / shot.height
    width = 1080 - 80
    height = round(PHOTO.height * width / PHOTO.width)
    want = (40 * scale, 270 * scale, (40 + width) * scale, (270 + height) * scale)
    found = panel_boxes(np.asarray(small))
    assert any(np.abs(np.subtract(box, want)).max() <= 3 for box in found), (found, want)


def test_a_landscape_photo_pasted_small_on_a_portrait_picture_is_a_panel() -> None:
    """Half the width of a portrait picture, a landscape photo is 15-18 % of its height."""
    canvas = BUSY.resize((576, 1024))
    small = PHOTO.resize((288, round(288 * PHOTO.height / PHOTO.width)))
    canvas.paste(small, (86, 600))
    found = panel_boxes(np.asarray(canvas.resize((288, 512))))
    want = np.multiply((86, 600, 86 + small.width, 600 + small.height), 0.5)
    assert any(np.abs(np.subtract(b, want)).max() <= 3 for b in found), (found, want)


def test_a_panel_side_found_off_the_edge_is_snapped_onto_it() -> None:
    canvas = Image.new("RGB", (600, 600), (255, 255, 255))
    canvas.paste(PHOTO.resize((400, 266)), (100, 150))
    assert snapped(canvas, (98, 153, 502, 414), 4) == (100, 150, 500, 416)
    assert snapped(canvas, (0, 0, 600, 600), 4) == (0, 0, 600, 600)


def test_a_region_is_described_as_shares_of_the_upload() -> None:
    assert describe((256, 0, 512, 240), 512, 480) == "x 50-100 %, y 0-50 %"


def test_off_centre_windows_are_listed_at_85_and_70_percent() -> None:
    sides = {(w.width, w.x, w.y) for w in OFF_CENTRE_WINDOWS}
    assert {(0.85, 1.0, 1.0), (0.85, 0.0, 0.5), (0.7, 0.0, 0.0), (0.7, 0.5, 1.0)} <= sides
    assert set(OFF_CENTRE_WINDOWS) <= set(DEFAULT_WINDOWS)


# -- through a real server ----------------------------------------------------------------


def keep(fraction: float, x: float, y: float, image: Image.Image) -> Image.Image:
    cut = 1 - fraction
    return off_centre_crop(cut * x, cut * y, cut * (1 - x), cut * (1 - y), image)


UPLOADS = {
    "keep 85% side": (lambda: encode(keep(0.85, 0.0, 0.5, PHOTO), "PNG"), None),
    "keep 70% corner": (lambda: encode(keep(0.70, 1.0, 0.0, PHOTO), "JPEG", quality=85), None),
    "rotate 5°": (lambda: encode(rotate(5, (0, 0, 0), PHOTO), "PNG"), pb.MATCH_PART_ROTATED),
    "rotate -10° white": (
        lambda: encode(rotate(-10, (255,) * 3, PHOTO), "JPEG", quality=85),
        pb.MATCH_PART_ROTATED,
    ),
    "collage 2x2": (
        lambda: encode(collage(PHOTO, OTHERS, 2, 12), "JPEG", quality=85),
        pb.MATCH_PART_PANEL,
    ),
    "collage 3x3 hard edges": (
        lambda: encode(collage(PHOTO, OTHERS, 3, 0), "JPEG", quality=85),
        pb.MATCH_PART_PANEL,
    ),
    "phone screenshot": (
        lambda: encode(phone_screenshot(PHOTO), "JPEG", quality=85),
        pb.MATCH_PART_PANEL,
    ),
    "pasted on a busy picture": (
        lambda: encode(pasted(PHOTO, BUSY), "JPEG", quality=85),
        pb.MATCH_PART_PANEL,
    ),
    "pasted on a photo": (
        lambda: encode(pasted(PHOTO, OTHERS[0]), "JPEG", quality=85),
        pb.MATCH_PART_PANEL,
    ),
    "pasted on another photo": (
        lambda: encode(pasted(PHOTO, OTHERS[2]), "JPEG", quality=85),
        pb.MATCH_PART_PANEL,
    ),
}


@pytest.fixture(scope="module")
def submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The victim's `hashguard hash` output for the photo (on their machine)."""
    folder = tmp_path_factory.mktemp("victim")
    PHOTO.save(folder / "photo.png")
    out = folder / "submission.json"
    run_cli("hash", str(folder / "photo.png"), "--out", str(out))
    return out


def _serve(data_dir: Path, submission: Path, *extra: str) -> tuple[ServerProcess, dict[str, str]]:
    keys = {r: add_key(data_dir, r, r) for r in ("operator", "submitter", "moderator")}
    server = ServerProcess(data_dir, extra_args=list(extra)).start()
    try:
        run_cli("submit", str(submission), "--target", server.target, "--key", keys["submitter"])
    except BaseException:
        server.stop()
        raise
    return server, keys


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, submission: Path
) -> Iterator[tuple[Stubs, dict[str, str]]]:
    server, keys = _serve(tmp_path_factory.mktemp("data"), submission)
    try:
        with server.channel() as channel:
            yield Stubs(channel), keys
    finally:
        assert server.stop() == 0, server.log()


def _check(stubs: Stubs, keys: dict[str, str], image: bytes, ref: str) -> pb.CheckUploadResponse:
    return stubs.match.CheckUpload(
        pb.CheckUploadRequest(image=image, content_ref=ref),
        metadata=bearer(keys["operator"]),
        timeout=60,
    )


@pytest.mark.parametrize("name", list(UPLOADS))
def test_each_kind_is_caught_and_a_region_match_says_where(
    stack: tuple[Stubs, dict[str, str]], name: str
) -> None:
    stubs, keys = stack
    make, part = UPLOADS[name]
    reply = _check(stubs, keys, make(), name)
    assert reply.decision == pb.DECISION_REVIEW and reply.hit_id, name
    if part is not None:
        assert any(m.part == part and m.partial and m.region for m in reply.matches), reply
        listed = stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(keys["moderator"]))
        (hit,) = [h for h in listed.hits if h.hit_id == reply.hit_id]
        assert any(m.part == part and m.region for m in hit.matches)


def test_distinct_pictures_in_the_same_layouts_are_not_matched(
    stack: tuple[Stubs, dict[str, str]],
) -> None:
    stubs, keys = stack
    other = OTHERS[1]
    for image in (
        collage(other, [OTHERS[0], OTHERS[2]], 2, 12),
        collage(other, [OTHERS[0], OTHERS[2]], 3, 0),
        phone_screenshot(other),
        rotate(5, (0, 0, 0), other),
        pasted(other, BUSY),
        pasted(other, OTHERS[0]),
    ):
        reply = _check(stubs, keys, encode(image, "JPEG", quality=85), "other")
        assert reply.decision == pb.DECISION_ALLOW and not reply.matches


def test_region_matches_ask_for_review_even_once_the_photo_is_vetted(
    tmp_path: Path, submission: Path
) -> None:
    """A moderator confirms the photo itself, which vets its entries: the photo then
    BLOCKs, while a collage holding it and the photo turned by 5° still only ask for
    REVIEW (a tile or a turned copy is not the picture the moderator saw)."""
    server, keys = _serve(tmp_path / "data", submission)
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            whole = _check(stubs, keys, encode(PHOTO, "JPEG", quality=90), "photo")
            assert whole.decision == pb.DECISION_REVIEW
            stubs.review.ResolveHit(
                pb.ResolveHitRequest(hit_id=whole.hit_id, verdict=pb.VERDICT_CONFIRMED),
                metadata=bearer(keys["moderator"]),
            )
            again = _check(stubs, keys, encode(PHOTO, "JPEG", quality=80), "photo again")
            assert again.decision == pb.DECISION_BLOCK
            for name in ("collage 2x2", "rotate 5°"):
                reply = _check(stubs, keys, UPLOADS[name][0](), name)
                assert reply.decision == pb.DECISION_REVIEW, name
                vetted = [m for m in reply.matches if m.entry_state == pb.ENTRY_STATE_VETTED]
                assert vetted and all(m.partial for m in vetted), reply
    finally:
        assert server.stop() == 0, server.log()


def test_switched_off_collages_and_rotations_are_not_matched(
    tmp_path: Path, submission: Path
) -> None:
    server, keys = _serve(tmp_path / "data", submission, "--region-matching", "0")
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            for name in ("collage 2x2", "rotate 5°", "phone screenshot"):
                reply = _check(stubs, keys, UPLOADS[name][0](), name)
                assert reply.decision == pb.DECISION_ALLOW and not reply.matches, name
    finally:
        assert server.stop() == 0, server.log()
