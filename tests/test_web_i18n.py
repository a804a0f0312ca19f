"""French and English pages (issue 16, item 2), in Debian's Chromium against a real
`hashguard serve` and `hashguard web`: the language follows Accept-Language, the switch
on every page changes it and it sticks; the victim's flow and the moderator's console in
both languages; axe-core (from the npm registry, tests/js/package.json) on every page in
both languages, with no serious or critical violation; the victim's flow by keyboard
alone. The catalogues must have the same keys, and every key the pages use."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.web import i18n
from tests.browser import need_program
from tests.test_web_browser import DESKTOP, Stack, browser, shoot, stack

__all__ = ["browser", "stack"]  # fixtures shared with tests/test_web_browser.py

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "service" / "web"
AXE_DIR = ROOT / "tests" / "js"
AXE = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
LOCALE = {"en": "en-GB", "fr": "fr-FR"}


# -- the catalogues -----------------------------------------------------------------------


def used_keys() -> set[str]:
    """Every catalogue key the templates, the page handlers and the scripts name."""
    keys: set[str] = set()
    for template in (WEB / "templates").glob("*.html"):
        text = template.read_text(encoding="utf-8")
        keys |= set(re.findall(r"""\bt\(\s*["']([a-z_.0-9]+)["']""", text))
        keys |= {f"{k}.one" for k in re.findall(r"""\bt\.n\(\s*["']([a-z_.0-9]+)["']""", text)}
    for module in WEB.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        found = re.findall(r"""["']((?:err|queue|js)\.[a-z_.0-9]+)["']""", text)
        keys |= {k for k in found if not k.endswith(".html")}  # not template names
    for script in (WEB / "static").glob("*.js"):
        text = script.read_text(encoding="utf-8")
        keys |= {f"js.{k}" for k in re.findall(r"""\bt\(\s*["']([a-z_0-9]+)["']""", text)}
    return keys


def test_both_catalogues_have_every_key() -> None:
    assert i18n.missing_keys() == {"en": [], "fr": []}
    english = i18n.CATALOGUE["en"]
    used = used_keys()
    assert len(used) > 100
    missing = sorted(k for k in used if k not in english and f"{k}.one" not in english)
    assert missing == []
    # Placeholders are the same in both languages.
    for key, text in english.items():
        names = set(re.findall(r"{(\w+)}", text))
        assert names == set(re.findall(r"{(\w+)}", i18n.CATALOGUE["fr"][key])), key


def test_a_missing_french_string_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    french = dict(i18n.CATALOGUE["fr"])
    del french["status.listed"]
    monkeypatch.setitem(i18n.CATALOGUE, "fr", french)
    assert i18n.missing_keys() == {"en": [], "fr": ["status.listed"]}


def test_accept_language_picks_the_best_language_we_have() -> None:
    assert i18n.from_accept_language("fr-FR,fr;q=0.9,en;q=0.8") == "fr"
    assert i18n.from_accept_language("de-DE,de;q=0.9,fr;q=0.5,en;q=0.4") == "fr"
    assert i18n.from_accept_language("en-US,fr;q=0.9") == "en"
    assert i18n.from_accept_language("de,es") == "en"
    assert i18n.from_accept_language("") == "en"
    assert i18n.from_accept_language("fr-CA;q=0.2, en;q=0.1") == "fr"
    assert i18n.from_accept_language("fr;q=bad, en") == "en"


def test_plurals_follow_each_language() -> None:
    assert i18n.plural("en", "withdrawn.count", 1).startswith("1 fingerprint removed")
    assert i18n.plural("en", "withdrawn.count", 0).startswith("0 fingerprints removed")
    assert i18n.plural("fr", "withdrawn.count", 0).startswith("0 empreinte enlevée")
    assert i18n.plural("fr", "withdrawn.count", 28).startswith("28 empreintes enlevées")


# -- in the browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe-core from the npm registry, installed by `npm ci` into tests/js on first use
    (pinned with its integrity hash in tests/js/package-lock.json)."""
    if not AXE.exists():
        npm = need_program("npm", "npm")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR)],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return AXE


def axe_problems(page: Any, axe: Path) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(axe))
    result = page.evaluate(
        """() => axe.run(document, {resultTypes: ["violations"]}).then(r =>
             r.violations.map(v => ({id: v.id, impact: v.impact,
               nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 3)})))"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['nodes']}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.slow
def test_axe_reports_a_real_violation(stack: Stack, browser: Any, axe_script: Path) -> None:
    """Guards the check above against passing vacuously: an unlabelled field is caught."""
    context, page = new_page(browser, "en")
    page.goto(stack.url + "/case")
    assert axe_problems(page, axe_script) == []
    page.evaluate("document.querySelector('label[for=case_id]').remove()")
    assert any(p.startswith("label (critical)") for p in axe_problems(page, axe_script))
    context.close()


def photo_file(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(skimage.data.chelsea()).save(path, quality=90)
    return path


def new_page(browser: Any, lang: str) -> tuple[Any, Any]:
    """A visitor whose browser asks for `lang`; the CSP is bypassed only so that the
    test can inject axe-core."""
    context = browser.new_context(viewport=DESKTOP, locale=LOCALE[lang], bypass_csp=True)
    return context, context.new_page()


def submit_photo(page: Any, stack: Stack, photo: Path) -> tuple[str, str]:
    page.set_input_files("#photos", str(photo))
    page.wait_for_selector("#progress li.ok", timeout=120_000)
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])")
    return page.inner_text("#case-id"), page.inner_text("#case-token")


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_every_page_in_each_language_passes_axe(
    stack: Stack, browser: Any, axe_script: Path, tmp_path: Path, lang: str
) -> None:
    words = i18n.CATALOGUE[lang]
    context, page = new_page(browser, lang)
    seen: dict[str, list[str]] = {}

    def audit(name: str) -> None:
        assert page.evaluate("document.documentElement.lang") == lang, name
        seen[name] = axe_problems(page, axe_script)
        shoot(page, stack, f"i18n-{lang}-{name}")

    page.goto(stack.url + "/")
    assert page.inner_text("h1") == words["submit.heading"]
    audit("submit")
    case_id, case_token = submit_photo(page, stack, photo_file(tmp_path))
    assert page.inner_text("#result-title") == words["result.heading"]
    assert page.inner_text("#progress li") == words["js.ready"].replace(
        "{label}", words["js.photo_label"].replace("{n}", "1").replace("{total}", "1")
    )
    audit("case-open")
    # An operator's upload of the same photo queues a hit for the console pages.
    upload = Image.fromarray(skimage.data.chelsea()).resize((300, 200))
    assert stack.check(_jpeg(upload), f"i18n-{lang}").decision == pb.DECISION_REVIEW

    page.goto(stack.url + "/case")
    assert page.inner_text("h1") == words["status.title"]
    page.fill("#case_id", case_id)
    page.fill("#case_token", "not-the-code")
    page.click("button[type=submit]")
    assert page.inner_text(".error") == words["err.not_found"]
    audit("status-error")
    page.fill("#case_token", case_token)
    page.click("button[type=submit]")
    assert words["status.listed"] in page.inner_text(".counts")
    assert words["status.hits"] in page.inner_text(".counts")
    audit("status")
    page.goto(stack.url + "/console/sign-in")
    page.fill("#key", "hg_not-a-real-key")
    page.click("button[type=submit]")
    assert page.inner_text(".error") == words["err.bad_key"]
    audit("sign-in")
    page.fill("#key", stack.moderator_key)
    page.click("button[type=submit]")
    page.wait_for_url(stack.url + "/console")
    assert page.inner_text("h1") == words["queue.title"]
    assert page.locator(".hit").count() >= 1
    page.locator(".hit .reveal").first.click()
    assert page.locator(".hit .reveal").first.inner_text() == words["js.hide"]
    audit("queue")
    page.goto(stack.url + "/console/disputed")
    assert page.inner_text("h1") == words["disputed.title"]
    audit("disputed")

    page.goto(stack.url + "/case")
    page.fill("#case_id", case_id)
    page.fill("#case_token", case_token)
    page.click("button[type=submit]")
    page.check("#understand")
    page.click("button.danger")
    assert page.inner_text("h1") == words["withdrawn.heading"]
    audit("withdrawn")
    context.close()

    problems = {name: found for name, found in seen.items() if found}
    assert problems == {}, json.dumps(problems, indent=1)


def _jpeg(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


@pytest.mark.slow
def test_the_switch_changes_the_language_and_it_sticks(stack: Stack, browser: Any) -> None:
    context, page = new_page(browser, "fr")
    page.goto(stack.url + "/")
    assert page.inner_text("h1") == i18n.CATALOGUE["fr"]["submit.heading"]
    switch = page.locator("a.lang-switch")
    assert switch.inner_text() == "English" and switch.get_attribute("lang") == "en"
    switch.click()
    assert page.inner_text("h1") == i18n.CATALOGUE["en"]["submit.heading"]
    page.goto(stack.url + "/case")  # no ?lang: the choice was kept
    assert page.inner_text("h1") == i18n.CATALOGUE["en"]["status.title"]
    assert page.evaluate("document.documentElement.lang") == "en"
    page.goto(stack.url + "/console/sign-in")
    assert page.inner_text("h1") == i18n.CATALOGUE["en"]["sign_in.heading"]
    page.locator("a.lang-switch").click()
    assert page.inner_text("h1") == i18n.CATALOGUE["fr"]["sign_in.heading"]
    page.goto(stack.url + "/")
    assert page.inner_text("h1") == i18n.CATALOGUE["fr"]["submit.heading"]
    context.close()
    # An error from the submit call comes in the visitor's language too.
    context, page = new_page(browser, "fr")
    page.goto(stack.url + "/")
    answer = page.evaluate(
        """async () => {
          const r = await fetch("/api/cases", {method: "POST",
            headers: {"Content-Type": "application/json",
                      "X-CSRF-Token": document.getElementById("submit-form").dataset.csrf},
            body: JSON.stringify({hashes: []})});
          return [r.status, (await r.json()).error];
        }"""
    )
    assert answer == [400, i18n.CATALOGUE["fr"]["err.no_hashes"]]
    context.close()


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_victims_flow_works_by_keyboard_alone(
    stack: Stack, browser: Any, tmp_path: Path, lang: str
) -> None:
    words = i18n.CATALOGUE[lang]
    context = browser.new_context(viewport=DESKTOP, locale=LOCALE[lang])
    page = context.new_page()
    # Playwright turns file-chooser interception on without waiting for the browser; a
    # listener from the start has it on long before the key press (under load the
    # press could win the race and the chooser never be reported).
    page.on("filechooser", lambda _chooser: None)
    page.goto(stack.url + "/")

    def tab_to(selector: str, most: int = 15) -> None:
        for _ in range(most):
            page.keyboard.press("Tab")
            if page.evaluate("s => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#photos")
    with page.expect_file_chooser() as choosing:
        page.keyboard.press("Space")
    choosing.value.set_files(str(photo_file(tmp_path)))
    page.wait_for_selector("#progress li.ok", timeout=120_000)
    tab_to("#send")
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])")
    assert page.evaluate("document.activeElement.id") == "result"
    case_id, case_token = page.inner_text("#case-id"), page.inner_text("#case-token")
    tab_to("#save")
    with page.expect_download() as saving:
        page.keyboard.press("Enter")
    saved = Path(saving.value.path()).read_text(encoding="utf-8")
    assert words["js.file_case"].replace("{id}", case_id) in saved
    tab_to("a[href='/case']")
    page.keyboard.press("Enter")
    page.wait_for_url(stack.url + "/case")
    tab_to("#case_id")
    page.keyboard.type(case_id)
    page.keyboard.press("Tab")
    page.keyboard.type(case_token)
    page.keyboard.press("Enter")
    page.wait_for_selector(".counts")
    tab_to("#understand")
    page.keyboard.press("Space")
    tab_to("button.danger")
    page.keyboard.press("Enter")
    page.locator("h1", has_text=words["withdrawn.heading"]).wait_for()
    context.close()
