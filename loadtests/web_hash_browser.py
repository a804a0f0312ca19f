"""The victim page's hashes in a real browser (Debian's Chromium decoding each file as
static/victim.js does, then static/fingerprints.js) against `hashguard hash`'s for the
same file, and how long a 12-megapixel photo takes.

    python -m loadtests.web_hash_browser            # agreement over vectors and photos
    python -m loadtests.web_hash_browser --speed    # a 4000x3000 JPEG, 5 runs

Needs /usr/bin/chromium and the `playwright` package (test extra); no server.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from loadtests.pdq_js_agreement import fixture_files
from loadtests.web_hash_agreement import agreement, cli_hashes, print_table, registered_jpegs

STATIC = Path(__file__).resolve().parent.parent / "service" / "web" / "static"
SCRIPTS = ("pdq.js", "resample.js", "phash.js", "md5.js", "windows.js", "fingerprints.js")
# victim.js's steps, timed: decode (createImageBitmap + canvas), then every hash.
_HASH_IN_PAGE = """async (encoded) => {
  const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
  const started = performance.now();
  const bitmap = await createImageBitmap(new Blob([bytes]), {
    imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none"});
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0);
  const image = context.getImageData(0, 0, bitmap.width, bitmap.height);
  const decoded = performance.now();
  const result = await window.HashGuardFingerprints.fingerprints(
    bytes.buffer, image.data, image.width, image.height, 4, true);
  result.decodeMs = decoded - started;
  result.hashMs = performance.now() - decoded;
  return result;
}"""


def in_chromium(
    files: Mapping[str, bytes], chromium: str = "/usr/bin/chromium", browser: Any = None
) -> dict[str, Any]:
    """Each file hashed as the page does, in `browser` (a Playwright Chromium) or in one
    launched from `chromium`."""
    if browser is not None:
        return _hash_files(browser, files)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            return _hash_files(launched, files)
        finally:
            launched.close()


def _hash_files(browser: Any, files: Mapping[str, bytes]) -> dict[str, Any]:
    page = browser.new_page()
    # crypto.subtle needs a secure context: an https page served by the test itself.
    page.route(
        "https://hashguard.test/",
        lambda route: route.fulfill(body="<!doctype html><title>t</title>"),
    )
    page.goto("https://hashguard.test/")
    for script in SCRIPTS:
        page.add_script_tag(path=str(STATIC / script))
    try:
        return {
            name: page.evaluate(_HASH_IN_PAGE, base64.b64encode(data).decode())
            for name, data in files.items()
        }
    finally:
        page.close()


def twelve_megapixels() -> bytes:
    """A 4000x3000 JPEG (quality 90) made from a registered photo, like a phone's."""
    from loadtests.photos import load_registry

    photos, _ = load_registry()
    largest = max(photos, key=lambda p: p.image.width * p.image.height)
    buffer = io.BytesIO()
    largest.image.convert("RGB").resize((4000, 3000), Image.Resampling.LANCZOS).save(
        buffer, format="JPEG", quality=90
    )
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", action="store_true")
    args = parser.parse_args()
    if args.speed:
        data = twelve_megapixels()
        runs = in_chromium({f"run{i}": data for i in range(5)})
        decode = [r["decodeMs"] for r in runs.values()]
        hashing = [r["hashMs"] for r in runs.values()]
        print(f"4000x3000 JPEG, {len(data)} bytes, 5 runs in Chromium")
        for label, times in (("decode", decode), ("hash", hashing)):
            print(
                f"{label} ms: median {statistics.median(times):.0f} "
                f"(min {min(times):.0f}, max {max(times):.0f})"
            )
        return
    files = {**fixture_files(), **registered_jpegs()}
    pages = in_chromium(files)
    rows = []
    for name, data in files.items():
        try:
            cli = cli_hashes(data)
        except Exception as exc:
            print(f"{name}: hashguard hash refuses it ({exc})")
            continue
        rows.append(agreement(name, cli, pages[name]))
    print_table(rows)


if __name__ == "__main__":
    main()
