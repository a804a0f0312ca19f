"""How closely PDQ computed in a real browser (Chromium decoding the file, then
service/web/static/pdq.js) agrees with `hashguard hash` (Pillow decoding, pdqhash) for the
same file. Unlike loadtests.pdq_js_agreement this includes the two image decoders.

Needs Debian's Chromium (`apt-get install chromium`) and the `playwright` package (test
extra); no server. Files: the ThreatExchange vector JPEGs/PNGs and the registered photos
as JPEG (quality 90) and PNG.

    python -m loadtests.pdq_browser_agreement
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from loadtests.pdq_js_agreement import (
    PORT_TOLERANCE_MIN_QUALITY,
    fixture_files,
    hex_distance,
)
from loadtests.photos import load_registry
from service.media.hashes import hash_image_bytes

PDQ_JS = Path(__file__).resolve().parent.parent / "service" / "web" / "static" / "pdq.js"
# The same decoding steps as static/victim.js.
_BROWSER_HASH = """async (encoded) => {
  const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes]), {
    imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none"});
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0);
  const image = context.getImageData(0, 0, bitmap.width, bitmap.height);
  return window.HashGuardPDQ.pdqFromPixels(image.data, image.width, image.height, 4);
}"""


def photo_files() -> dict[str, bytes]:
    photos, _missing = load_registry()
    files = {}
    for photo in photos:
        for fmt, options in (("JPEG", {"quality": 90}), ("PNG", {})):
            buffer = io.BytesIO()
            photo.image.save(buffer, format=fmt, **options)
            files[f"{photo.name}.{fmt.lower()}"] = buffer.getvalue()
    return files


def browser_hashes(files: dict[str, bytes], chromium: str) -> dict[str, dict[str, object]]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.add_script_tag(path=str(PDQ_JS))
        results = {
            name: page.evaluate(_BROWSER_HASH, base64.b64encode(data).decode())
            for name, data in files.items()
        }
        browser.close()
    return results


def main(chromium: str = "/usr/bin/chromium") -> None:
    files = {**fixture_files(), **photo_files()}
    in_browser = browser_hashes(files, chromium)
    print(f"{'file':48} {'py q':>5} {'br q':>5} {'bits':>5}")
    worst_jpeg = worst_png = 0
    for name, data in files.items():
        python = hash_image_bytes(data, draft_side=0).pdq
        ours = in_browser[name]
        bits = hex_distance(python.value.hex(), str(ours["hash"]))
        print(f"{name:48} {python.quality:5} {ours['quality']:5} {bits:5}")
        if python.quality >= PORT_TOLERANCE_MIN_QUALITY:
            if name.endswith((".jpg", ".jpeg")):
                worst_jpeg = max(worst_jpeg, bits)
            else:
                worst_png = max(worst_png, bits)
    print(
        f"{len(files)} files; largest distance at quality >= {PORT_TOLERANCE_MIN_QUALITY}: "
        f"JPEG {worst_jpeg} bits, PNG {worst_png} bits"
    )


if __name__ == "__main__":
    main()
