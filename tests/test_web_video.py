"""Videos on the victim page (issue 17), in Debian's Chromium against a real `hashguard
serve` and `hashguard web`: the page takes one frame a second from a <video> element (or
ImageDecoder for animated GIF and WebP) into pdq.js, and MD5 and SHA-256 of the file;
its vPDQ agrees with `hashguard hash`'s and the service's within PDQ's port tolerance;
only the fingerprints' JSON leaves the page; over-limit and unplayable files are left out
in plain words, in both languages, and the batch goes on."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests.videos import Scene, decoded, encode, frames, retimed
from service.media.video import sample_frames
from service.media.video_hashes import FrameHash, hash_frames, pack, unpack
from tests.support import Stubs, bearer
from tests.test_web_browser import DESKTOP, Stack, browser, stack
from tests.test_web_i18n import axe_problems, axe_script

__all__ = ["axe_script", "browser", "stack"]  # fixtures shared with the other web tests

pytestmark = pytest.mark.slow

# PDQ's tolerance for a port (bits, at quality >= 80), as the photo tests use it.
PORT_TOLERANCE = 10
SIZE = (480, 270)


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


def make_clip(path: Path, encoding: str, fps: float, seconds: float = 4.0) -> Path:
    """Pans over two package photos, encoded with PyAV."""
    scenes = [Scene(_photo("astronaut"), seconds), Scene(_photo("coffee"), seconds)]
    path.write_bytes(encode(frames(scenes, SIZE, fps), fps, encoding))
    return path


def make_webp(path: Path) -> Path:
    """An animated WebP: 12 frames of 250 ms from two photos."""
    pictures = [
        Image.fromarray(p)
        for p in frames([Scene(_photo("chelsea"), 1.5), Scene(_photo("rocket"), 1.5)], SIZE, 4)
    ]
    pictures[0].save(
        path, save_all=True, append_images=pictures[1:], duration=250, loop=0, quality=90
    )
    return path


def service_frames(path: Path) -> list[FrameHash]:
    return service_frames_of(path.read_bytes())


def service_frames_of(data: bytes) -> list[FrameHash]:
    """What the service (and `hashguard hash`) makes of a video: one frame a second."""
    return hash_frames(sample_frames(data))


def choose(page: Any, paths: list[Path]) -> list[str]:
    """Choose files on the page and wait until each has its line; their texts."""
    page.set_input_files("#photos", [str(p) for p in paths])
    page.wait_for_function(
        """n => { const items = document.querySelectorAll('#progress li');
                  return items.length === n &&
                    Array.from(items).every(i => !i.hasAttribute('aria-busy')); }""",
        arg=len(paths),
        timeout=120_000,
    )
    return [page.inner_text(f"#progress li:nth-child({n + 1})") for n in range(len(paths))]


def sent_hashes(page: Any, stack: Stack) -> tuple[list[dict[str, Any]], Any]:
    """Press send; the JSON the page posted, and the request."""
    with page.expect_request(stack.url + "/api/cases") as posting:
        page.click("#send")
    request = posting.value
    return json.loads(request.post_data_buffer)["hashes"], request


def agreement(browser_frames: list[FrameHash], reference: list[FrameHash]) -> list[int]:
    """Per-frame PDQ distances (asserting the counts and times agree)."""
    assert abs(len(browser_frames) - len(reference)) <= 1
    distances = []
    for ours, theirs in zip(browser_frames, reference, strict=False):
        assert abs(ours.timestamp - theirs.timestamp) <= 0.002
        distance = (int.from_bytes(ours.pdq, "big") ^ int.from_bytes(theirs.pdq, "big")).bit_count()
        if theirs.quality >= 80:
            assert distance <= PORT_TOLERANCE, (ours.timestamp, distance)
        assert abs(ours.quality - theirs.quality) <= 5
        distances.append(distance)
    return distances


@pytest.mark.parametrize(
    ("encoding", "fps", "suffix"),
    [("vp9", 25.0, "webm"), ("h264", 29.97, "mp4"), ("mkv", 24.0, "mkv")],
)
def test_the_page_hashes_a_video_as_the_service_does(
    stack: Stack, browser: Any, tmp_path: Path, encoding: str, fps: float, suffix: str
) -> None:
    clip = make_clip(tmp_path / f"clip.{suffix}", encoding, fps)
    context = browser.new_context(viewport=DESKTOP)
    requests: list[Any] = []
    context.on("request", lambda request: requests.append(request))
    page = context.new_page()
    page.goto(stack.url + "/")
    assert choose(page, [clip]) == ["Video 1 of 1: fingerprints ready."]
    hashes, posted = sent_hashes(page, stack)

    assert [h["algorithm"] for h in hashes] == ["vpdq", "video-sha256", "video-md5"]
    data = clip.read_bytes()
    assert hashes[1]["hex"] == hashlib.sha256(data).hexdigest()
    assert hashes[2]["hex"] == hashlib.md5(data).hexdigest()
    distances = agreement(unpack(bytes.fromhex(hashes[0]["hex"])), service_frames(clip))
    assert len(distances) == 8 and max(distances) <= PORT_TOLERANCE

    # Nothing but the fingerprints left the page: every request went to the web tier, the
    # only one with a body is their JSON, and no 4 KiB run of the video is in it.
    assert all(r.url.startswith(stack.url + "/") for r in requests if not r.url.startswith("blob:"))
    assert [r for r in requests if r.post_data_buffer] == [posted]
    body = posted.post_data_buffer
    assert all(data[at : at + 4096] not in body for at in range(0, len(data) - 4096, 4096))
    context.close()


def test_animated_gif_and_webp_are_hashed_as_videos(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    gif = make_clip(tmp_path / "loop.gif", "gif", 10.0, seconds=2.0)
    webp = make_webp(tmp_path / "loop.webp")
    still = tmp_path / "still.gif"
    _photo("coffee").convert("P").save(still)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(stack.url + "/")
    assert choose(page, [gif, webp, still]) == [
        "Video 1 of 3: fingerprints ready.",
        "Video 2 of 3: fingerprints ready.",
        "Photo 3 of 3: fingerprints ready.",
    ]
    hashes, _ = sent_hashes(page, stack)
    vpdqs = [unpack(bytes.fromhex(h["hex"])) for h in hashes if h["algorithm"] == "vpdq"]
    assert len(vpdqs) == 2
    for ours, path in zip(vpdqs, (gif, webp), strict=True):
        assert agreement(ours, service_frames(path))
    assert [h["algorithm"] for h in hashes].count("pdq") == 1  # the still GIF is a photo


def test_limits_and_unplayable_files_are_said_plainly(
    stack: Stack, browser: Any, tmp_path: Path, axe_script: Path
) -> None:
    clip = make_clip(tmp_path / "clip.webm", "vp9", 10.0, seconds=2.0)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[:0] + b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    long = tmp_path / "long.webm"
    long.write_bytes(
        encode((np.full((64, 64, 3), i % 256, np.uint8) for i in range(130)), 1, "vp9")
    )
    photo = tmp_path / "cup.jpg"
    _photo("coffee").save(photo)
    for lang, too_long, unplayable, too_large in (
        ("en", "longer than 2 minutes", "could not play this video", "480 \u00d7 270 pixels"),
        ("fr", "dure plus de 2 minutes", "n'a pas pu lire cette vidéo", "480 \u00d7 270 pixels"),
    ):
        # bypass_csp: axe-core is injected as a script of the test's
        page = browser.new_context(viewport=DESKTOP, bypass_csp=True).new_page()
        page.goto(stack.url + f"/?lang={lang}")
        # The service's limits, lowered in this page for the test (no 30-minute file).
        page.evaluate(
            """() => { const f = document.getElementById('submit-form');
                       f.dataset.videoMaxSeconds = '120'; f.dataset.videoMaxPixels = '100000'; }"""
        )
        lines = choose(page, [long, broken, clip, photo])
        assert too_long in lines[0]
        assert unplayable in lines[1]
        assert too_large in lines[2]
        assert lines[3].endswith(("fingerprints ready.", "empreintes prêtes."))
        assert page.locator("#progress li.bad").count() == 3
        assert page.is_enabled("#send")
        assert axe_problems(page, axe_script) == []


def test_a_video_hashed_in_the_page_flags_a_reencoded_copy(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    """End to end: the victim hashes a video in the browser and submits; an operator's
    precomputed check (the vPDQ of a copy re-encoded to VP9 at 24 fps) is REVIEWed, and
    an unrelated video's is ALLOWed."""
    scenes = [Scene(_photo("hubble_deep_field"), 5.0), Scene(_photo("immunohistochemistry"), 5.0)]
    original = tmp_path / "mine.mp4"
    original.write_bytes(encode(frames(scenes, (640, 360), 30), 30, "h264"))
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(stack.url + "/")
    assert choose(page, [original]) == ["Video 1 of 1: fingerprints ready."]
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])")
    assert page.inner_text("#case-id")

    pictures, fps = decoded(original.read_bytes())
    copy = encode(retimed(pictures, fps, 24.0), 24.0, "vp9")
    other = encode(frames([Scene(_photo("rocket"), 6.0)], (640, 360), 30), 30, "h264")
    for video, expected in ((copy, pb.DECISION_REVIEW), (other, pb.DECISION_ALLOW)):
        vpdq = pb.Hash(algorithm=pb.HASH_ALGORITHM_VPDQ, value=pack(service_frames_of(video)))
        with stack.server.channel() as channel:
            answer = Stubs(channel).match.CheckUpload(
                pb.CheckUploadRequest(hashes=[vpdq], content_ref="video-post"),
                metadata=bearer(stack.operator_key),
                timeout=60,
            )
        assert answer.decision == expected, answer


def test_a_video_by_keyboard_alone_with_its_progress_bar_in_french(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    clip = make_clip(tmp_path / "clip.webm", "vp9", 25.0, seconds=3.0)
    page = browser.new_context(viewport=DESKTOP, locale="fr-FR").new_page()
    page.on("filechooser", lambda _chooser: None)  # interception on before the key press
    page.goto(stack.url + "/")
    # What the progress bar showed while the video was hashed.
    page.evaluate(
        """() => { window.seenBars = [];
             new MutationObserver(() => document.querySelectorAll('#progress progress')
               .forEach(b => window.seenBars.push([b.getAttribute('aria-label'), b.value, b.max,
                                                   b.getAttribute('aria-valuetext')])))
             .observe(document.getElementById('progress'),
                      {subtree: true, childList: true, attributes: true}); }"""
    )

    def tab_to(selector: str, most: int = 15) -> None:
        for _ in range(most):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#photos")
    with page.expect_file_chooser() as choosing:
        page.keyboard.press("Space")
    choosing.value.set_files(str(clip))
    page.wait_for_selector("#progress li.ok", timeout=120_000)
    assert page.inner_text("#progress li") == "Vidéo 1 sur 1 : empreintes prêtes."
    bars = page.evaluate("window.seenBars")
    assert bars and all(label == "Vidéo 1 sur 1" for label, *_ in bars)
    assert ["Vidéo 1 sur 1", 6, 6, "6 secondes sur 6"] in bars
    tab_to("#send")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "result"
