"""The victim page protects as much as `hashguard hash` (issue 16, item 1): in Debian's
Chromium, photos chosen on the page are hashed by the browser's own decoder and the
page's scripts, and the JSON the page sends holds the CLI's hashes for the same files
(pHash, SHA-256 and MD5 equal; PDQ and every pdq-window within PDQ's port tolerance).
No byte of any photo is in any request. Then the case submitted through the page is
checked with the cropped, letterboxed and captioned uploads of tests/test_crop_matching.py
through the real server, and the page's agreement with the CLI is measured in Node on
Pillow's pixels too (exact there)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests.as_displayed import measure
from loadtests.transforms import bars
from loadtests.web_hash_agreement import as_pairs, cli_hashes, compare_in_node, registered_jpegs
from tests.browser import need_program
from tests.support import ServerProcess, Stubs, add_key, bearer, encode
from tests.test_crop_matching import (
    CLOCK,
    CLOCK_UPLOADS,
    DISTINCT,
    HARD,
    HARD_PHOTOS,
    PHOTO,
    UPLOADS,
    _logo,
)
from tests.test_web_browser import browser, start_web, stop_web

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

__all__ = ["browser"]  # the Chromium fixture, shared with tests/test_web_browser.py

PORT_TOLERANCE_BITS = 10


def _bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.fixture(scope="module")
def victim_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The photos of test_crop_matching's server tests, as a victim keeps them: the
    astronaut as a phone-like JPEG, brick and moon as PNG, clock (too flat for PDQ)."""
    folder = tmp_path_factory.mktemp("victim-photos")
    files = []
    photos = {"astronaut.jpg": PHOTO, "clock.png": CLOCK}
    photos |= {
        f"{name}.png": Image.fromarray(load()).convert("RGB") for name, load in HARD_PHOTOS.items()
    }
    for name, image in photos.items():
        path = folder / name
        image.save(path, quality=92) if name.endswith(".jpg") else image.save(path)
        files.append(path)
    return files


@pytest.fixture(scope="module")
def page_case(
    tmp_path_factory: pytest.TempPathFactory, browser: Any, victim_files: list[Path]
) -> Iterator[tuple[ServerProcess, str, list[Any], bytes]]:
    """A real server and web tier; the victim submits victim_files through the page.
    Yields the server, the operator key, every request the page made and the body sent."""
    data = tmp_path_factory.mktemp("parity-data")
    keys = {role: add_key(data, role, f"{role}-1") for role in ("submitter", "operator")}
    server = ServerProcess(data).start()
    web, url = start_web(server.target, HASHGUARD_WEB_SUBMITTER_KEY=keys["submitter"])
    try:
        context = browser.new_context()
        requests: list[Any] = []
        context.on("request", lambda request: requests.append(request))
        page = context.new_page()
        page.goto(url + "/")
        page.set_input_files("#photos", [str(p) for p in victim_files])
        done = page.locator("#progress li.ok, #progress li.note")
        done.nth(len(victim_files) - 1).wait_for(timeout=120_000)
        lines = page.locator("#progress li").all_inner_texts()
        assert [line.split(":")[0] for line in lines] == [
            f"Photo {i + 1} of {len(victim_files)}" for i in range(len(victim_files))
        ]
        page.click("#send")
        page.wait_for_selector("#result:not([hidden])")
        (sent,) = [r for r in requests if r.post_data_buffer]
        yield server, keys["operator"], requests, sent.post_data_buffer
        context.close()
    finally:
        stop_web(web)
        assert server.stop() == 0, server.log()


def test_the_page_sends_the_clis_hashes_and_no_photo_byte(
    page_case: tuple[ServerProcess, str, list[Any], bytes], victim_files: list[Path]
) -> None:
    _, _, requests, body = page_case
    sent = [(h["algorithm"], h["hex"], h.get("quality")) for h in json.loads(body)["hashes"]]
    expected = [pair for path in victim_files for pair in as_pairs(cli_hashes(path.read_bytes()))]
    assert [a for a, _, _ in sent] == [a for a, _, _ in expected]  # same kinds, same counts
    assert "pdq" not in [a for a, _, _ in as_pairs(cli_hashes(victim_files[1].read_bytes()))]
    for (algorithm, ours, quality), (_, theirs, cli_quality) in zip(sent, expected, strict=True):
        if algorithm in ("phash", "sha256", "md5"):
            assert ours == theirs, algorithm
        else:
            assert _bits(ours, theirs) <= PORT_TOLERANCE_BITS, (algorithm, ours, theirs)
            assert quality is not None and cli_quality is not None
            assert abs(quality - cli_quality) <= 2
    # Not one request carried a photo: only the JSON has a body, and no 4 KiB run of any
    # file is in it.
    with_body = [r for r in requests if r.post_data_buffer]
    assert [r.method for r in with_body] == ["POST"] and with_body[0].url.endswith("/api/cases")
    for path in victim_files:
        data = path.read_bytes()
        for start in range(0, len(data) - 4096, max(4096, len(data) // 8)):
            assert data[start : start + 4096] not in body
    assert all(r.method == "GET" and not r.post_data_buffer for r in requests if r not in with_body)


def _check(server: ServerProcess, operator: str, image: bytes) -> Any:
    with server.channel() as channel:
        return Stubs(channel).match.CheckUpload(
            pb.CheckUploadRequest(image=image), metadata=bearer(operator), timeout=60
        )


def test_crops_letterboxes_and_captions_match_a_case_sent_from_the_page(
    page_case: tuple[ServerProcess, str, list[Any], bytes],
) -> None:
    server, operator, _, _ = page_case
    photos = {name: Image.fromarray(load()).convert("RGB") for name, load in HARD_PHOTOS.items()}
    for name, upload in UPLOADS.items():
        assert _check(server, operator, upload()).decision == pb.DECISION_REVIEW, name
    for name, (photo, edit) in HARD.items():
        assert _check(server, operator, edit(photos[photo])).decision == pb.DECISION_REVIEW, name
    for name, upload in CLOCK_UPLOADS.items():
        reply = _check(server, operator, upload())
        assert reply.decision == pb.DECISION_REVIEW, name
        assert pb.HASH_ALGORITHM_PHASH in {m.algorithm for m in reply.matches}, name
    for pixels in DISTINCT:
        other = Image.fromarray(pixels)
        for image in (other, bars(0.3, False, (0, 0, 0), other), _logo(other)):
            reply = _check(server, operator, encode(image, "JPEG", quality=85))
            assert reply.decision == pb.DECISION_ALLOW and not reply.matches


def test_the_pages_hashing_equals_the_clis_on_the_same_pixels() -> None:
    """In Node on Pillow's pixels (no second decoder): pHash, SHA-256 and MD5 equal, PDQ
    and the windows bit for bit, over the photos every install has."""
    node = need_program("node", "nodejs")
    files = {
        name: data
        for name, data in registered_jpegs().items()
        if not name.startswith(("mate_", "lomiri_"))  # the large Debian wallpapers: slow
    }
    files["flat-clock.png"] = encode(CLOCK, "PNG")
    files["grey.png"] = encode(Image.fromarray(skimage.data.camera()), "PNG")
    assert len(files) >= 15
    rows = compare_in_node(files, node)
    for row in rows:
        assert row.exact_all, row
        assert row.pdq_bits == 0 and row.windows_worst == 0, row
        assert row.windows_cli == row.windows_page, row


def test_rotated_cmyk_and_palette_files_hash_as_chromium_displays_them(browser: Any) -> None:
    """Issue 16, item 4: for every EXIF orientation, a CMYK JPEG and a palette PNG, the
    CLI, the check path and the page (Chromium's decoder) agree, and all differ from
    python-threatexchange's hash of the stored samples (docs/QUALITY.md)."""
    rows = measure(browser=browser)
    assert {r["file"] for r in rows} >= {"cmyk.jpg", "palette.png", "exif-orientation-6.jpg"}
    for row in rows:
        assert row["cli-page"] <= PORT_TOLERANCE_BITS, row
        assert row["cli-check"] <= PORT_TOLERANCE_BITS, row
        assert row["cli-threatexchange"] >= 100, row  # what "as stored" would have given
