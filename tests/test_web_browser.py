"""`hashguard web` in a real browser (Debian's headless Chromium driven by Playwright)
against a real `hashguard serve`: a victim hashes a photo file and submits only hashes,
an operator's re-upload is flagged, a moderator confirms it in the console, the re-upload
is then blocked, and the victim withdraws.

Screenshots of every page (desktop and phone) go to HASHGUARD_SCREENSHOTS if set (that is
how docs/web/ was made), else to a temporary folder.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.hashes import hash_file, hash_image_bytes
from tests.browser import need_program
from tests.certs import CertificateAuthority
from tests.support import ServerProcess, Stubs, add_key, bearer, encode, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

playwright_api = pytest.importorskip("playwright.sync_api")

CONTENT_URL = "https://forum.example/mod/posts/{ref}"
_LISTENING = re.compile(r"web pages on (http://\S+:\d+)/")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Stack:
    server: ServerProcess
    web: subprocess.Popen[str]
    url: str
    operator_key: str
    moderator_key: str
    submitter_key: str
    shots: Path

    def check(self, image: bytes, ref: str) -> Any:
        with self.server.channel() as channel:
            return Stubs(channel).match.CheckUpload(
                pb.CheckUploadRequest(image=image, content_ref=ref),
                metadata=bearer(self.operator_key),
                timeout=30,
            )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("web-data")
    keys = {
        role: add_key(data, role, f"{role}-1") for role in ("submitter", "operator", "moderator")
    }
    server = ServerProcess(data).start()
    web, url = start_web(
        server.target,
        HASHGUARD_WEB_SUBMITTER_KEY=keys["submitter"],
        HASHGUARD_WEB_SESSION_SECRET="s" * 40,
    )
    try:
        shots = Path(os.environ.get("HASHGUARD_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
        shots.mkdir(parents=True, exist_ok=True)
        yield Stack(server, web, url, keys["operator"], keys["moderator"], keys["submitter"], shots)
    finally:
        stop_web(web)
        server.stop()


def start_web(target: str, **env: str) -> tuple[subprocess.Popen[str], str]:
    """`hashguard web` on a free port in front of `target`; returns it and its URL."""
    web = subprocess.Popen(
        [
            *(sys.executable, "-m", "service.cli", "web", "--web-port", "0"),
            *("--web-target", target, "--web-content-url", CONTENT_URL),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    assert web.stdout is not None
    seen = []
    for line in web.stdout:
        seen.append(line)
        found = _LISTENING.search(line)
        if found:
            return web, found.group(1)
    stop_web(web)
    raise AssertionError("hashguard web did not start:\n" + "".join(seen))


def stop_web(web: subprocess.Popen[str]) -> None:
    web.terminate()
    web.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = need_program("chromium", "chromium chromium-driver")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


def shoot(page: Any, stack: Stack, name: str) -> None:
    """Desktop and phone screenshots of the page as it is now."""
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(stack.shots / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(stack.shots / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def tab_order(page: Any, presses: int) -> list[str]:
    """What Tab focuses, in order: an element's id, class or text."""
    page.evaluate("document.activeElement.blur()")
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(
            page.evaluate(
                "(e => e.id || e.className || e.textContent.trim())(document.activeElement)"
            )
        )
    return seen


def test_victim_operator_moderator_journey(stack: Stack, browser: Any, tmp_path: Path) -> None:
    photo = tmp_path / "me.jpg"
    Image.fromarray(skimage.data.astronaut()).save(photo, quality=92)
    photo_bytes = photo.read_bytes()

    # -- the victim hashes a photo file in the browser and submits --------------------
    victim = browser.new_context(viewport=DESKTOP)
    requests: list[Any] = []
    victim.on("request", lambda request: requests.append(request))
    page = victim.new_page()
    page.goto(stack.url + "/")
    shoot(page, stack, "1-victim-start")
    assert tab_order(page, 6) == [
        "skip",
        "brand",
        "Protect photos",
        "Check or withdraw a case",
        "lang-switch",
        "photos",
    ]
    page.set_input_files("#photos", str(photo))
    page.wait_for_selector("#progress li.ok")
    assert page.inner_text("#progress") == "Photo 1 of 1: fingerprints ready."
    shoot(page, stack, "1b-victim-photo-ready")
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "result"  # read from the top
    case_id = page.inner_text("#case-id")
    case_token = page.inner_text("#case-token")
    assert re.fullmatch(r"[0-9a-f-]{36}", case_id) and len(case_token) >= 32
    shoot(page, stack, "2-victim-case-open")

    # Every request stayed on the web tier; the only one with a body is the JSON of the
    # fingerprints, and no byte of the photo was sent.
    assert all(r.url.startswith(stack.url + "/") for r in requests)
    with_body = [r for r in requests if r.post_data_buffer]
    assert [(r.method, r.url) for r in with_body] == [("POST", stack.url + "/api/cases")]
    sent = json.loads(with_body[0].post_data_buffer)
    kinds = [item["algorithm"] for item in sent["hashes"]]
    assert kinds[:4] == ["pdq", "phash", "sha256", "md5"] and kinds.count("pdq-window") >= 20
    assert all(set(item) <= {"algorithm", "hex", "quality"} for item in sent["hashes"])
    assert sent["hashes"][2]["hex"] == hashlib.sha256(photo_bytes).hexdigest()
    assert sent["hashes"][3]["hex"] == hashlib.md5(photo_bytes).hexdigest()
    assert photo_bytes[:4096] not in with_body[0].post_data_buffer
    assert all(r.method == "GET" for r in requests if r not in with_body)
    # The browser's PDQ (canvas decoding + pdq.js) is the one `hashguard hash` computes.
    python_pdq = hash_file(str(photo)).pdq
    browser_pdq = bytes.fromhex(sent["hashes"][0]["hex"])
    distance = int.from_bytes(browser_pdq, "big") ^ int.from_bytes(python_pdq.value, "big")
    assert distance.bit_count() <= 10
    assert abs(sent["hashes"][0]["quality"] - python_pdq.quality) <= 2
    # "Save them as a file" is made in the page.
    with page.expect_download() as saving:
        page.click("#save")
    saved = Path(saving.value.path()).read_text()
    assert f"Case number: {case_id}" in saved and f"Secret code: {case_token}" in saved

    # -- an operator's re-upload (recompressed, smaller) is flagged ------------------
    reupload = io.BytesIO()
    Image.open(photo).resize((384, 384)).save(reupload, format="JPEG", quality=70)
    flagged = stack.check(reupload.getvalue(), "post 123/ä")
    assert flagged.decision == pb.DECISION_REVIEW and flagged.hit_id

    # -- the moderator signs in and confirms it ---------------------------------------
    moderator = browser.new_context(viewport=DESKTOP)
    console = moderator.new_page()
    console.goto(stack.url + "/console")
    assert console.url == stack.url + "/console/sign-in"
    assert console.evaluate("document.activeElement.id") == "key"
    console.fill("#key", "hg_not-a-real-key")
    console.click("button[type=submit]")
    assert "not recognised" in console.inner_text(".error")
    shoot(console, stack, "3-console-sign-in")
    console.fill("#key", stack.moderator_key)
    console.click("button[type=submit]")
    console.wait_for_url(stack.url + "/console")
    assert stack.moderator_key not in console.content()
    session = next(c for c in moderator.cookies() if c["name"] == "__Host-hg_session")
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert stack.moderator_key not in session["value"]

    hit = console.locator(f"#hit-{flagged.hit_id}")
    assert console.inner_text("#count-pending") == "1"
    assert "from operator-1" in hit.inner_text()
    ref = hit.locator(".ref")
    assert "blurred" in (ref.get_attribute("class") or "")
    link = ref.locator("a")
    assert link.get_attribute("href") == "https://forum.example/mod/posts/post%20123%2F%C3%A4"
    shoot(console, stack, "4-console-queue")
    console.keyboard.press("v")  # reveal
    assert "blurred" not in (ref.get_attribute("class") or "")
    shoot(console, stack, "4b-console-revealed")
    console.keyboard.press("n")
    console.keyboard.type("same photo, recompressed")
    console.keyboard.press("Escape")
    console.keyboard.press("c")
    console.wait_for_url(stack.url + "/console?done=confirmed")
    assert "Confirmed" in console.inner_text(".notice")
    assert console.inner_text("#count-pending") == "0"
    assert console.inner_text("#count-confirmed") == "1"
    shoot(console, stack, "5-console-after-confirm")
    console.goto(stack.url + "/console/disputed")
    assert "Only admin keys can see disputed entries" in console.inner_text("main")

    # -- the re-upload is now blocked -------------------------------------------------
    assert stack.check(reupload.getvalue(), "post-124").decision == pb.DECISION_BLOCK

    # -- the victim follows the case, then withdraws ----------------------------------
    page.goto(stack.url + "/case")
    shoot(page, stack, "6-victim-status-form")
    page.fill("#case_id", case_id)
    page.fill("#case_token", case_token)
    page.click("button[type=submit]")
    counts = page.inner_text(".counts")
    listed = int(re.search(r"Fingerprints on the list\s+(\d+)", counts).group(1))  # type: ignore[union-attr]
    assert listed == len(sent["hashes"])
    # The confirmed hit vetted every entry the re-upload matched (its PDQ, pHash, windows).
    blocked = int(re.search(r"so copies are blocked\s+(\d+)", counts).group(1))  # type: ignore[union-attr]
    assert 1 <= blocked < listed
    assert re.search(r"Uploads that matched\s+1", counts)
    assert re.search(r"Uploads a moderator confirmed\s+1", counts)
    assert "active" in page.inner_text(".lead")
    shoot(page, stack, "7-victim-status")
    page.check("#understand")
    page.click("button.danger")
    assert page.inner_text("h1") == "Your case is withdrawn"
    assert f"{listed} fingerprints removed" in page.inner_text(".lead")
    shoot(page, stack, "8-victim-withdrawn")
    assert stack.check(reupload.getvalue(), "post-125").decision == pb.DECISION_ALLOW
    victim.close()
    moderator.close()


def test_forms_and_endpoints_refuse_forgeries_and_images(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.url + "/")
    # A file that is not a photo is left out, in words; the photo beside it still counts.
    (tmp_path / "notes.txt").write_text("not a photo")
    Image.fromarray(skimage.data.coffee()).save(tmp_path / "cup.png")
    page.set_input_files("#photos", [str(tmp_path / "notes.txt"), str(tmp_path / "cup.png")])
    page.wait_for_selector("#progress li:nth-child(2).ok")
    assert page.inner_text("#progress li.bad") == (
        "Photo 1 of 2: this file could not be read as a photo. It will be left out."
    )
    assert page.is_enabled("#send")
    csrf = page.get_attribute("#submit-form", "data-csrf")
    api = context.request

    # Without the page's CSRF token, or with image bytes instead of fingerprints: refused.
    one = {"hashes": [{"algorithm": "sha256", "hex": "ab" * 32}]}
    assert api.post(stack.url + "/api/cases", data=one).status == 403
    photo = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(photo, format="PNG")
    refused = api.post(
        stack.url + "/api/cases",
        headers={"X-CSRF-Token": csrf, "Content-Type": "image/png"},
        data=photo.getvalue(),
    )
    assert refused.status == 413
    for wrong in (
        {"hashes": [{"algorithm": "tmk", "hex": "ab" * 16}]},  # not one the page computes
        {"hashes": [{"algorithm": "pdq", "hex": "ab" * 16, "quality": 90}]},  # too short
    ):
        answer = api.post(stack.url + "/api/cases", headers={"X-CSRF-Token": csrf}, data=wrong)
        assert answer.status == 400 and "expected form" in answer.json()["error"]

    # The console without a session, or with a forged one, goes to sign-in and does nothing.
    forged = api.post(
        stack.url + "/console/hits/some-hit",
        form={"verdict": "confirm", "note": "", "csrf": "x"},
        headers={"Cookie": "__Host-hg_session=AAAA"},
        max_redirects=0,
    )
    assert forged.status == 303 and forged.headers["location"] == "/console/sign-in"

    # A signed-in moderator's form without the session's CSRF token is refused.
    page.goto(stack.url + "/console/sign-in")
    page.fill("#key", stack.moderator_key)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/console")
    no_token = api.post(
        stack.url + "/console/hits/some-hit", form={"verdict": "confirm", "csrf": csrf or ""}
    )
    assert no_token.status == 403 and "expired" in no_token.text()
    context.close()


def test_moderator_works_the_queue_by_keyboard(stack: Stack, browser: Any) -> None:
    """Two hits, newest first: j moves to the older one, n/r reject it with a note."""
    photos = {name: getattr(skimage.data, name)() for name in ("coffee", "chelsea")}
    with stack.server.channel() as channel:
        Stubs(channel).submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=[pdq_hash(encode(pixels)) for pixels in photos.values()]),
            metadata=bearer(stack.submitter_key),
            timeout=30,
        )
    hit_ids = [
        stack.check(encode(photos[name], "JPEG"), f"<i>{name}</i>").hit_id
        for name in ("coffee", "chelsea")  # chelsea's hit is the newer
    ]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(stack.url + "/console/sign-in")
    page.fill("#key", stack.moderator_key)
    page.keyboard.press("Enter")
    page.wait_for_url(stack.url + "/console")
    shown = page.eval_on_selector_all(".hit", "hits => hits.map(h => h.dataset.hit)")
    assert shown == hit_ids[::-1]
    # Operators' references are text, never markup; the link encodes them whole.
    assert page.inner_text(f"#hit-{hit_ids[1]} .ref").strip() == "<i>chelsea</i>"
    assert page.get_attribute(f"#hit-{hit_ids[1]} .ref a", "href") == (
        "https://forum.example/mod/posts/%3Ci%3Echelsea%3C%2Fi%3E"
    )
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.dataset.hit") == hit_ids[0]
    page.keyboard.press("n")
    page.keyboard.type("a different cup")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    page.wait_for_url(stack.url + "/console?done=rejected")
    assert page.eval_on_selector_all(".hit", "hits => hits.map(h => h.dataset.hit)") == [hit_ids[1]]
    assert page.inner_text("#count-rejected") == "1"
    with stack.server.channel() as channel:
        rejected = Stubs(channel).review.ListHits(
            pb.ListHitsRequest(state=pb.HIT_STATE_REJECTED),
            metadata=bearer(stack.moderator_key),
            timeout=30,
        )
    assert [(h.hit_id, h.note) for h in rejected.hits] == [(hit_ids[0], "a different cup")]
    context.close()


def pdq_hash(data: bytes) -> Any:
    """The PDQ `hashguard hash` would submit for this file."""
    pdq = hash_image_bytes(data, draft_side=0).pdq
    return pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq.value, quality=pdq.quality)


def test_pages_explain_when_the_service_cannot_be_reached(browser: Any) -> None:
    """Nothing listens at the target: the pages say so in plain words, with no trace."""
    web, url = start_web("127.0.0.1:1", HASHGUARD_WEB_SUBMITTER_KEY="hg_unused")
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/case")
        page.fill("#case_id", "3f1c0000-0000-0000-0000-000000000000")
        page.fill("#case_token", "whatever")
        page.click("button[type=submit]")
        assert "cannot be reached right now" in page.inner_text(".error")
        assert "Traceback" not in page.content()
        page.goto(url + "/console/sign-in")
        page.fill("#key", "hg_some-key")
        page.click("button[type=submit]")
        assert "cannot be reached right now" in page.inner_text(".error")
        # The probes' page answers although the service is down (it does not call it).
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/healthz")
        health = connection.getresponse()
        assert (health.status, health.read()) == (200, b"ok")
        # A body without a length (chunked) is refused before it is read.
        connection.request("POST", "/api/cases", body=iter([b"{}" * 8]), encode_chunked=True)
        assert connection.getresponse().status == 411
        connection.close()
        context.close()
    finally:
        stop_web(web)


def test_admins_see_disputed_entries(stack: Stack, browser: Any) -> None:
    """Moderators of two platforms reject the same photo's hits: the entry is disputed and
    an admin signed in to the console sees it with both rejections."""
    data = stack.server.data_dir
    keys = {
        name: run_cli(
            *("keys", "add", "--data-dir", str(data), "--role", role, "--name", name),
            *("--tenant", tenant),
        )
        .stdout.strip()
        .splitlines()[-1]
        for name, role, tenant in (
            ("op-a", "operator", "forum-a"),
            ("op-b", "operator", "forum-b"),
            ("mod-a", "moderator", "forum-a"),
            ("mod-b", "moderator", "forum-b"),
            ("root", "admin", "default"),
        )
    }
    photo = encode(Image.fromarray(skimage.data.rocket()), "PNG")
    pdq = hash_image_bytes(photo).pdq
    with stack.server.channel() as channel:
        stubs = Stubs(channel)
        stubs.submission.SubmitCase(
            pb.SubmitCaseRequest(
                hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq.value)]
            ),
            metadata=bearer(stack.submitter_key),
        )
        for tenant in ("a", "b"):
            hit = stubs.match.CheckUpload(
                pb.CheckUploadRequest(image=photo, content_ref=f"rocket-{tenant}"),
                metadata=bearer(keys[f"op-{tenant}"]),
            )
            assert hit.decision == pb.DECISION_REVIEW
            stubs.review.ResolveHit(
                pb.ResolveHitRequest(hit_id=hit.hit_id, verdict=pb.VERDICT_REJECTED),
                metadata=bearer(keys[f"mod-{tenant}"]),
            )
        listed = stubs.review.ListDisputedEntries(
            pb.ListDisputedEntriesRequest(), metadata=bearer(keys["root"])
        ).entries
    assert listed

    admin = browser.new_context(viewport=DESKTOP)
    page = admin.new_page()
    page.goto(stack.url + "/console/sign-in")
    page.fill("#key", keys["root"])
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/console")
    page.goto(stack.url + "/console/disputed")
    for entry in listed:
        row = page.locator(f"#entry-{entry.entry_id}")
        assert row.locator(".rejecting").inner_text() == "2"
        assert row.locator(".confirming").inner_text() == "0"
    shoot(page, stack, "8-console-disputed")
    admin.close()


def test_console_reaches_a_tls_service_only_when_it_trusts_the_ca(
    browser: Any, tmp_path: Path
) -> None:
    """The web tier calls a TLS-only service (--tls-cert) with HASHGUARD_WEB_TLS_CA; a web
    tier that does not trust the service's CA cannot reach it and says so."""
    ca = CertificateAuthority(tmp_path, "service-ca")
    issued = ca.issue("server", server=True)
    moderator = add_key(tmp_path, "moderator", "mod-tls")
    server = ServerProcess(
        tmp_path, ("--tls-cert", str(issued.cert), "--tls-key", str(issued.key))
    ).start()
    trusting, url = start_web(server.target, HASHGUARD_WEB_TLS_CA=str(ca.cert_path))
    plain, plain_url = start_web(server.target)
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/console/sign-in")
        page.fill("#key", moderator)
        page.click("button[type=submit]")
        page.wait_for_url(url + "/console")
        page.goto(plain_url + "/console/sign-in")
        page.fill("#key", moderator)
        page.click("button[type=submit]")
        assert "cannot be reached right now" in page.inner_text(".error")
        context.close()
    finally:
        stop_web(plain)
        stop_web(trusting)
        server.stop()


def test_one_visitor_cannot_spend_the_quota_all_victims_share(stack: Stack, browser: Any) -> None:
    """Cases per visitor per hour, the visitor read from the proxy's header: the third case
    from one address is refused with a time to come back; another address still submits,
    and a client cannot pass as another by writing earlier hops of the header itself."""
    web, url = start_web(
        stack.server.target,
        HASHGUARD_WEB_SUBMITTER_KEY=stack.submitter_key,
        HASHGUARD_WEB_CASES_PER_VISITOR_HOUR="2",
        HASHGUARD_WEB_CLIENT_IP_HEADER="X-Forwarded-For",
    )
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(url + "/")
        csrf = page.get_attribute("#submit-form", "data-csrf") or ""

        def send(forwarded_for: str) -> Any:
            one = {"hashes": [{"algorithm": "sha256", "hex": secrets.token_hex(32)}]}
            headers = {"X-CSRF-Token": csrf, "X-Forwarded-For": forwarded_for}
            return context.request.post(url + "/api/cases", headers=headers, data=one)

        assert [send("198.51.100.1").status for _ in range(2)] == [200, 200]
        third = send("198.51.100.1")
        assert third.status == 429
        assert "Please try again in 30 minutes" in third.json()["error"]
        assert 1700 <= int(third.headers["retry-after"]) <= 1800
        assert send("198.51.100.7, 198.51.100.1").status == 429
        assert send("198.51.100.2").status == 429  # the same /24: the same visitor
        assert send("198.51.101.2").status == 200
        context.close()
    finally:
        stop_web(web)


def test_a_flat_photo_is_submitted_without_its_pdq(
    stack: Stack, browser: Any, tmp_path: Path
) -> None:
    """skimage's clock is too flat for PDQ (quality under 50), which the service refuses
    with the whole case: the page says some changed copies may not be recognised, leaves
    the PDQ out (as `hashguard hash` does) and the case opens with the rest."""
    photo = tmp_path / "clock.png"
    Image.fromarray(skimage.data.clock()).save(photo)
    context = browser.new_context()
    sent: list[Any] = []
    context.on("request", lambda r: sent.append(r) if r.url.endswith("/api/cases") else None)
    page = context.new_page()
    page.goto(stack.url + "/")
    page.set_input_files("#photos", str(photo))
    page.wait_for_selector("#progress li.note")
    assert "some changed copies may not be recognised" in page.inner_text("#progress")
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])")
    assert re.fullmatch(r"[0-9a-f-]{36}", page.inner_text("#case-id"))
    (request,) = sent
    hashes = json.loads(request.post_data_buffer)["hashes"]
    data = photo.read_bytes()
    assert [h for h in hashes if h["algorithm"] != "pdq-window"] == [
        {"algorithm": "phash", "hex": hash_file(str(photo)).phash.value.hex()},
        {"algorithm": "sha256", "hex": hashlib.sha256(data).hexdigest()},
        {"algorithm": "md5", "hex": hashlib.md5(data).hexdigest()},
    ]
    assert all(h["quality"] >= 50 for h in hashes if h["algorithm"] == "pdq-window")
    context.close()
