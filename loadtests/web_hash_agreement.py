"""How closely the victim page's hashes (service/web/static/fingerprints.js: PDQ, pHash,
SHA-256, MD5, pdq-window) agree with `hashguard hash`'s for the same file.

In Node (`compare_in_node`) the page's code gets the pixels Pillow decoded, so this
compares the hashing alone; tests/test_web_browser.py does the same through Chromium's
own decoder. Run over the registered photos (saved as JPEG quality 90):

    python -m loadtests.web_hash_agreement
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.config import Settings
from service.domain import HashValue
from service.media.crops import window_hashes
from service.media.decode import decode_image
from service.media.hashes import hash_decoded
from service.signals.pdq_window import PDQ_WINDOW
from service.submission_checks import degenerate

ROOT = Path(__file__).resolve().parent.parent
NODE_SCRIPT = ROOT / "tests" / "js" / "fingerprints_raw.js"


def cli_hashes(data: bytes) -> list[HashValue]:
    """What `hashguard hash` submits for a photo's bytes (every pixel decoded, windows
    on, hashes the service would refuse left out)."""
    image = decode_image(data, draft_side=0)
    minimum = Settings().pdq_min_quality
    hashes = hash_decoded(image, data).canonical + window_hashes(image, minimum)
    return [h for h in hashes if degenerate(h, minimum) is None]


def as_pairs(hashes: Sequence[HashValue]) -> list[tuple[str, str, int | None]]:
    return [(h.algorithm.name, h.value.hex(), h.quality) for h in hashes]


def page_pairs(fingerprint: Mapping[str, Any]) -> list[tuple[str, str, int | None]]:
    return [(h["algorithm"], h["hex"], h.get("quality")) for h in fingerprint["hashes"]]


def _bits(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@dataclass(frozen=True)
class Agreement:
    name: str
    exact: dict[str, bool]  # phash, sha256, md5: equal
    pdq_bits: int  # the photo's own PDQ
    windows_cli: int  # pdq-window hashes on each side
    windows_page: int
    windows_worst: int  # for each CLI window, the nearest page window; the largest of those

    @property
    def exact_all(self) -> bool:
        return all(self.exact.values())


def agreement(name: str, cli: Sequence[HashValue], page: Mapping[str, Any]) -> Agreement:
    theirs = page_pairs(page)
    ours = as_pairs(cli)

    def one(algorithm: str, pairs: list[tuple[str, str, int | None]]) -> str | None:
        found = [h for a, h, _ in pairs if a == algorithm]
        return found[0] if found else None

    exact = {a: one(a, ours) == one(a, theirs) for a in ("phash", "sha256", "md5")}
    pdq_ours, pdq_theirs = one("pdq", ours), one("pdq", theirs)
    pdq_bits = (
        _bits(pdq_ours, pdq_theirs)
        if pdq_ours and pdq_theirs
        else (0 if pdq_ours == pdq_theirs else 256)
    )
    w_ours = [h for a, h, _ in ours if a == PDQ_WINDOW.name]
    w_theirs = [h for a, h, _ in theirs if a == PDQ_WINDOW.name]
    worst = max((min((_bits(o, t) for t in w_theirs), default=256) for o in w_ours), default=0)
    return Agreement(name, exact, pdq_bits, len(w_ours), len(w_theirs), worst)


def compare_in_node(files: Mapping[str, bytes], node: str | None = None) -> list[Agreement]:
    """The page's hashing in Node on Pillow's pixels, against `hashguard hash`."""
    node = node or shutil.which("node") or "node"
    with tempfile.TemporaryDirectory() as tmp:
        manifest, expected = [], []
        for i, (name, data) in enumerate(files.items()):
            image = decode_image(data, draft_side=0)
            file_path, pixel_path = Path(tmp, f"{i}.bin"), Path(tmp, f"{i}.rgb")
            file_path.write_bytes(data)
            pixel_path.write_bytes(np.asarray(image).tobytes())
            manifest.append(
                {
                    "file": str(file_path),
                    "pixels": str(pixel_path),
                    "width": image.width,
                    "height": image.height,
                }
            )
            expected.append((name, cli_hashes(data)))
        Path(tmp, "manifest.json").write_text(json.dumps(manifest))
        done = subprocess.run(
            [node, str(NODE_SCRIPT), str(Path(tmp, "manifest.json"))],
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
    pages = json.loads(done.stdout)
    return [agreement(name, cli, page) for (name, cli), page in zip(expected, pages, strict=True)]


def registered_jpegs() -> dict[str, bytes]:
    from loadtests.photos import load_registry

    photos, _missing = load_registry()
    files = {}
    for photo in photos:
        buffer = io.BytesIO()
        photo.image.convert("RGB").save(buffer, format="JPEG", quality=90)
        files[f"{photo.name}.jpg"] = buffer.getvalue()
    return files


def print_table(rows: Sequence[Agreement]) -> None:
    header = f"{'phash':>6} {'sha':>4} {'md5':>4} {'pdq':>4} {'win cli/page':>13} {'worst':>6}"
    print(f"{'file':40} {header}")
    for r in rows:
        print(
            f"{r.name:40} {r.exact['phash']!s:>6} {r.exact['sha256']!s:>4} {r.exact['md5']!s:>4} "
            f"{r.pdq_bits:4} {r.windows_cli:6}/{r.windows_page:<6} {r.windows_worst:6}"
        )
    print(
        f"{len(rows)} files: pHash/SHA-256/MD5 all equal for {sum(r.exact_all for r in rows)}; "
        f"largest PDQ distance {max(r.pdq_bits for r in rows)}; largest window distance "
        f"{max(r.windows_worst for r in rows)}; same window count for "
        f"{sum(r.windows_cli == r.windows_page for r in rows)}"
    )


def main() -> None:
    print_table(compare_in_node(registered_jpegs()))


if __name__ == "__main__":
    main()
