"""Crop matching (issue 7): border trimming and box painting on generated images, the
sub-window geometry, and the whole path through a real server: a victim's photo hashed by
`hashguard hash` and submitted by `hashguard submit`, then cropped, letterboxed and
captioned uploads checked. With crop_matching=0 the server answers as it did before."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pdqhash
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image, ImageDraw

from loadtests.transforms import bars, caption_and_logo, centre_crop, frame
from service.media.borders import content_box, content_boxes, has_bars
from service.media.crops import DEFAULT_WINDOWS, Window, candidate_queries, window_hashes
from service.media.hashes import pack_bits, phash_bytes
from service.media.overlays import fill_boxes, solid_boxes
from service.signals.pdq_window import PDQ_WINDOW
from tests.support import ServerProcess, Stubs, add_key, bearer, encode, run_cli

PHOTO = Image.fromarray(skimage.data.astronaut())
DISTINCT = [skimage.data.coffee(), skimage.data.rocket(), skimage.data.chelsea()]


def _pdq(rgb: np.ndarray) -> bytes:
    return pack_bits(pdqhash.compute(np.ascontiguousarray(rgb))[0])


def _distance(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum())


def _pasted(
    canvas: tuple[int, int], colour: tuple[int, int, int], at: tuple[int, int]
) -> Image.Image:
    photo = PHOTO.resize((300, 200))
    out = Image.new("RGB", canvas, colour)
    out.paste(photo, at)
    return out


# -- borders ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("canvas", "colour", "at"),
    [
        ((300, 260), (0, 0, 0), (0, 30)),  # letterbox: bars above and below
        ((390, 200), (0, 0, 0), (45, 0)),  # pillarbox
        ((340, 240), (255, 255, 255), (20, 20)),  # white frame on all sides
        ((330, 250), (20, 60, 160), (10, 35)),  # off-centre coloured frame
    ],
)
def test_content_box_finds_the_photo_inside_solid_bars(
    canvas: tuple[int, int], colour: tuple[int, int, int], at: tuple[int, int]
) -> None:
    image = np.asarray(_pasted(canvas, colour, at))
    assert content_box(image) == (at[0], at[1], at[0] + 300, at[1] + 200)


def test_content_box_survives_jpeg_noise_in_the_bars() -> None:
    letterboxed = _pasted((300, 300), (0, 0, 0), (0, 50))
    decoded = np.asarray(Image.open(io.BytesIO(encode(letterboxed, "JPEG", quality=70))))
    left, top, right, bottom = content_box(decoded)
    assert (left, right) == (0, 300)
    assert abs(top - 50) <= 2 and abs(bottom - 250) <= 2


def test_content_box_leaves_photos_without_bars_and_flat_images_whole() -> None:
    photo = np.asarray(PHOTO)
    assert content_box(photo) == (0, 0, photo.shape[1], photo.shape[0])
    flat = np.full((100, 120, 3), 200, dtype=np.uint8)
    assert content_box(flat) == (0, 0, 120, 100)
    thin = np.asarray(_pasted((300, 202), (0, 0, 0), (0, 1)))  # 1 px bars: not worth a cut
    assert not has_bars(content_box(thin), 300, 202)


def test_a_photo_with_its_own_dark_margin_is_also_cut_as_it_is_without_bars() -> None:
    """camera's top 66 rows are a dark sky close to black: in black bars the whole-image
    reading stops at the bars, the nested reading cuts the sky too, as on its own."""
    photo = Image.fromarray(skimage.data.camera()).convert("RGB")
    own_left, own_top, own_right, own_bottom = content_box(np.asarray(photo))
    assert own_top > 0  # its own margin is cut even without bars
    boxed = np.asarray(bars(0.3, False, (0, 0, 0), photo))
    bar = (boxed.shape[0] - photo.height) // 2
    assert content_boxes(boxed) == [
        (0, bar, photo.width, bar + photo.height),
        (own_left, bar + own_top, own_right, bar + own_bottom),
    ]
    assert content_boxes(np.asarray(PHOTO)) == [(0, 0, PHOTO.width, PHOTO.height)]


# -- overlays -----------------------------------------------------------------------------


def test_a_pasted_solid_box_is_found_and_painting_it_over_brings_pdq_back() -> None:
    original = np.asarray(PHOTO.resize((400, 300)))
    stamped = original.copy()
    stamped[20:80, 300:380] = (230, 40, 90)
    assert solid_boxes(original) == []
    (found,) = solid_boxes(stamped)  # the first row and column differ from their neighbour
    assert np.abs(np.subtract(found, (300, 20, 380, 80))).max() <= 1
    painted = fill_boxes(stamped, solid_boxes(stamped))
    before = _distance(_pdq(stamped), _pdq(original))
    after = _distance(_pdq(painted), _pdq(original))
    assert after < before


def test_flat_gradients_are_not_taken_for_pasted_boxes() -> None:
    """A smooth ramp passes the neighbour-step test like a pasted box does, but its
    colours spread far wider than a solid box's, also after JPEG."""
    original = np.asarray(PHOTO.resize((400, 300))).copy()
    ramp = np.linspace(60, 160, 80).astype(np.uint8)
    original[20:80, 300:380] = ramp[None, :, None]
    assert solid_boxes(original) == []
    stamped = original.copy()
    stamped[150:210, 40:120] = (230, 40, 90)
    decoded = np.asarray(
        Image.open(io.BytesIO(encode(Image.fromarray(stamped), "JPEG", quality=85)))
    )
    (found,) = solid_boxes(decoded)
    assert np.abs(np.subtract(found, (40, 150, 120, 210))).max() <= 3


def test_a_texture_in_bars_is_hashed_at_the_scale_its_victim_hashed_it() -> None:
    """brick pasted into bars at its own size: cut out of the decoded pixels, not out of
    the upload scaled down with its bars, its PDQ is the photo's own."""
    brick = Image.fromarray(skimage.data.brick()).convert("RGB")
    own = _pdq(np.asarray(brick))
    queries = candidate_queries(bars(0.3, False, (0, 0, 0), brick), min_quality=50)
    assert min(_distance(q, own) for q in queries.pdq) <= 4


def test_only_whole_photo_parts_get_a_phash_query_never_strips() -> None:
    """A photo without bars or boxes has strips as its only parts: PDQ queries, no pHash.
    In bars, the pHash queries are the photo cut out of them (nearly the photo's own),
    none of them a strip's."""
    plain = candidate_queries(PHOTO, min_quality=50)
    assert len(plain.pdq) >= 2 and plain.phash == []
    boxed = bars(0.3, False, (0, 0, 0), PHOTO)
    framed = candidate_queries(boxed, min_quality=50)
    assert len(framed.phash) == 1
    assert _distance(framed.phash[0], phash_bytes(PHOTO)) <= 2
    strips = [Window(1.0, 0.7, 0.5, y).box(*boxed.size) for y in (0.0, 1.0)]
    strips += [Window(1.0, 0.7, 0.5, y).box(*PHOTO.size) for y in (0.0, 1.0)]
    for image, box in zip((boxed, boxed, PHOTO, PHOTO), strips, strict=True):
        assert phash_bytes(image.crop(box)) not in framed.phash


# -- windows ------------------------------------------------------------------------------


def test_window_boxes_sit_where_their_anchors_say() -> None:
    assert Window(0.9, 0.9).box(200, 100) == (10, 5, 190, 95)
    assert Window(0.8, 0.8, 0.0, 1.0).box(200, 100) == (0, 20, 160, 100)
    assert Window(1.0, 0.7, 0.5, 0.0).box(200, 100) == (0, 0, 200, 70)


def test_window_hashes_are_pdq_window_entries_and_skip_flat_windows() -> None:
    hashes = window_hashes(PHOTO, min_quality=50)
    assert 0 < len(hashes) <= len(DEFAULT_WINDOWS)
    assert {h.algorithm for h in hashes} == {PDQ_WINDOW}
    assert all(h.quality is not None and h.quality >= 50 for h in hashes)
    assert window_hashes(Image.new("RGB", (300, 200), (90, 90, 90)), min_quality=50) == []


def test_a_centre_crop_lands_near_a_window_and_a_letterbox_near_the_photo() -> None:
    windows = [h.value for h in window_hashes(PHOTO, min_quality=50)]
    crop_pdq = _pdq(np.asarray(centre_crop(0.10, PHOTO)))
    assert min(_distance(crop_pdq, w) for w in windows) <= 31
    full = _pdq(np.asarray(PHOTO))
    queries = candidate_queries(bars(0.3, False, (0, 0, 0), PHOTO), min_quality=50)
    assert min(_distance(q, full) for q in queries.pdq) <= 31


# -- through a real server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The victim's `hashguard hash` output for the photo (on their machine)."""
    folder = tmp_path_factory.mktemp("victim")
    PHOTO.save(folder / "photo.png")
    out = folder / "submission.json"
    run_cli("hash", str(folder / "photo.png"), "--out", str(out))
    return out


def _serve(data_dir: Path, submission: Path, *extra: str) -> tuple[ServerProcess, dict[str, str]]:
    keys = {r: add_key(data_dir, r, r) for r in ("operator", "submitter")}
    server = ServerProcess(data_dir, extra_args=list(extra)).start()
    try:
        run_cli("submit", str(submission), "--target", server.target, "--key", keys["submitter"])
    except BaseException:
        server.stop()  # a refused submission must not leave the server running
        raise
    return server, keys


@pytest.fixture(scope="module")
def crop_server(
    tmp_path_factory: pytest.TempPathFactory, submission: Path
) -> Iterator[tuple[ServerProcess, Stubs, dict[str, str]]]:
    server, keys = _serve(tmp_path_factory.mktemp("data"), submission)
    try:
        with server.channel() as channel:
            yield server, Stubs(channel), keys
    finally:
        assert server.stop() == 0, server.log()


UPLOADS = {
    "crop 10%": lambda: encode(centre_crop(0.10, PHOTO), "JPEG", quality=85),
    "crop 20%": lambda: encode(centre_crop(0.20, PHOTO), "PNG"),
    "letterbox 30%": lambda: encode(bars(0.3, False, (0, 0, 0), PHOTO), "JPEG", quality=80),
    "white frame": lambda: encode(frame(0.08, (255, 255, 255), PHOTO), "PNG"),
    "caption+logo": lambda: encode(caption_and_logo(PHOTO), "JPEG", quality=85),
}
# Edits crop matching missed before: a texture pasted into bars at its own size, a texture
# whose mortar passes for pasted boxes, captioned; a photo with a dark margin, captioned
# with a logo in it.
HARD_PHOTOS = {"brick": skimage.data.brick, "moon": skimage.data.moon}
HARD = {
    "brick letterbox 30%": ("brick", lambda im: encode(bars(0.3, False, (0, 0, 0), im), "PNG")),
    "brick caption+logo": ("brick", lambda im: encode(caption_and_logo(im), "PNG")),
    "moon caption+logo": ("moon", lambda im: encode(caption_and_logo(im), "JPEG", quality=85)),
}


@pytest.mark.slow
def test_submission_holds_window_hashes_next_to_the_photos_own(submission: Path) -> None:
    hashes = json.loads(submission.read_text())["images"][0]["hashes"]
    kinds = [h["algorithm"] for h in hashes]
    assert kinds[:4] == ["pdq", "phash", "sha256", "md5"]
    assert kinds.count("pdq-window") == len(kinds) - 4 >= len(DEFAULT_WINDOWS) - 2


def _check(stubs: Stubs, keys: dict[str, str], image: bytes) -> pb.CheckUploadResponse:
    return stubs.match.CheckUpload(
        pb.CheckUploadRequest(image=image), metadata=bearer(keys["operator"])
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(UPLOADS))
def test_edited_uploads_match_the_victims_case(
    crop_server: tuple[ServerProcess, Stubs, dict[str, str]], name: str
) -> None:
    _, stubs, keys = crop_server
    reply = _check(stubs, keys, UPLOADS[name]())
    assert reply.decision == pb.DECISION_REVIEW, name
    assert reply.hit_id


@pytest.mark.slow
def test_distinct_photos_and_their_edits_are_not_matched(
    crop_server: tuple[ServerProcess, Stubs, dict[str, str]],
) -> None:
    _, stubs, keys = crop_server
    for pixels in DISTINCT:
        other = Image.fromarray(pixels)
        for image in (other, centre_crop(0.1, other), bars(0.3, False, (0, 0, 0), other)):
            reply = _check(stubs, keys, encode(image, "PNG"))
            assert reply.decision == pb.DECISION_ALLOW and not reply.matches


@pytest.mark.slow
def test_checking_with_a_pdq_window_hash_is_refused(
    crop_server: tuple[ServerProcess, Stubs, dict[str, str]],
) -> None:
    _, stubs, keys = crop_server
    bad = pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ_WINDOW, value=bytes(32))
    with pytest.raises(grpc.RpcError) as caught:
        stubs.match.CheckUpload(
            pb.CheckUploadRequest(hashes=[bad]), metadata=bearer(keys["operator"])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pdq-window" in (caught.value.details() or "")


@pytest.mark.slow
def test_switched_off_the_server_matches_whole_pictures_only(
    tmp_path: Path, submission: Path
) -> None:
    server, keys = _serve(tmp_path / "data", submission, "--crop-matching", "0")
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            assert _check(stubs, keys, encode(PHOTO, "JPEG", quality=80)).decision == (
                pb.DECISION_REVIEW
            )
            for name in ("crop 10%", "crop 20%", "letterbox 30%"):
                reply = _check(stubs, keys, UPLOADS[name]())
                assert reply.decision == pb.DECISION_ALLOW and not reply.matches, name
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.slow
def test_hard_framed_and_captioned_photos_match_their_case(tmp_path: Path) -> None:
    folder = tmp_path / "victim"
    folder.mkdir()
    photos = {name: Image.fromarray(load()).convert("RGB") for name, load in HARD_PHOTOS.items()}
    files = [str(folder / f"{name}.png") for name in photos]
    for path, photo in zip(files, photos.values(), strict=True):
        photo.save(path)
    out = tmp_path / "submission.json"
    run_cli("hash", *files, "--out", str(out))
    server, keys = _serve(tmp_path / "data", out)
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            for name, (photo_name, edit) in HARD.items():
                reply = _check(stubs, keys, edit(photos[photo_name]))
                assert reply.decision == pb.DECISION_REVIEW, name
    finally:
        assert server.stop() == 0, server.log()


# clock's own PDQ quality is 34, under the submission minimum (50): only its pHash and
# digests can be listed, so an edit of it is found through the pHash of a whole-photo part.
CLOCK = Image.fromarray(skimage.data.clock()).convert("RGB")


def _logo(image: Image.Image) -> Image.Image:
    """A solid logo box covering 3 % of the photo in its top right corner."""
    out = image.copy()
    side = round((0.03 * out.width * out.height) ** 0.5)
    ImageDraw.Draw(out).rectangle(
        (out.width - side - 8, 8, out.width - 9, side + 7), fill=(200, 30, 40)
    )
    return out


CLOCK_UPLOADS = {
    "letterbox 30%": lambda: encode(bars(0.3, False, (0, 0, 0), CLOCK), "JPEG", quality=85),
    "logo box": lambda: encode(_logo(CLOCK), "JPEG", quality=85),
    "letterbox 30% + logo box": lambda: encode(bars(0.3, False, (0, 0, 0), _logo(CLOCK)), "PNG"),
}


@pytest.fixture(scope="module")
def clock_submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clock")
    CLOCK.save(folder / "clock.png")
    out = folder / "submission.json"
    hashed = run_cli("hash", str(folder / "clock.png"), "--out", str(out))
    # Too flat for PDQ (the service would refuse it): `hash` leaves it out, the rest go in.
    assert "its pdq is left out" in hashed.stderr
    hashes = json.loads(out.read_text())["images"][0]["hashes"]
    assert "pdq" not in {h["algorithm"] for h in hashes}
    return out


@pytest.mark.slow
def test_a_photo_too_flat_for_pdq_is_matched_in_bars_and_under_a_box_by_phash(
    tmp_path: Path, clock_submission: Path
) -> None:
    kinds = [
        h["algorithm"] for h in json.loads(clock_submission.read_text())["images"][0]["hashes"]
    ]
    server, keys = _serve(tmp_path / "data", clock_submission)
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            for name, upload in CLOCK_UPLOADS.items():
                reply = _check(stubs, keys, upload())
                assert reply.decision == pb.DECISION_REVIEW, (name, kinds)
                assert pb.HASH_ALGORITHM_PHASH in {m.algorithm for m in reply.matches}, name
            for pixels in DISTINCT:
                other = Image.fromarray(pixels)
                for image in (bars(0.3, False, (0, 0, 0), other), _logo(other)):
                    reply = _check(stubs, keys, encode(image, "JPEG", quality=85))
                    assert reply.decision == pb.DECISION_ALLOW and not reply.matches
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.slow
def test_switched_off_a_photo_too_flat_for_pdq_is_not_matched_in_bars(
    tmp_path: Path, clock_submission: Path
) -> None:
    server, keys = _serve(tmp_path / "data", clock_submission, "--crop-matching", "0")
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            assert _check(stubs, keys, encode(CLOCK, "PNG")).decision == pb.DECISION_REVIEW
            for name, upload in CLOCK_UPLOADS.items():
                reply = _check(stubs, keys, upload())
                assert reply.decision == pb.DECISION_ALLOW and not reply.matches, name
    finally:
        assert server.stop() == 0, server.log()
