"""How closely the browser's PDQ (service/web/static/pdq.js, run in Node) agrees with the
service's Python hasher (service.media.hashes, pdqhash) on the same decoded pixels.

Python decodes every image once with Pillow (service.media.decode.decode_image, every pixel);
the pixels go to Node as raw RGB, so the comparison is of the hashing algorithm alone, not
of two image decoders. Images: the ThreatExchange vectors in tests/fixtures/pdq and the
quality benchmark's registered photos that are installed. PDQ's rule for a port is
agreement within 10 bits for quality >= 80.

    python -m loadtests.pdq_js_agreement
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from loadtests.photos import REGISTRY, load_registry
from service.media.decode import decode_image
from service.media.hashes import hash_image_bytes

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "pdq"
NODE_SCRIPT = ROOT / "tests" / "js" / "pdq_hash_raw.js"
PORT_TOLERANCE_BITS = 10
PORT_TOLERANCE_MIN_QUALITY = 80


@dataclass(frozen=True, slots=True)
class Agreement:
    name: str
    python_quality: int
    js_quality: int
    distance: int  # bits between the two PDQ hashes
    js_hash: str  # pdq.js's canonical hex


def fixture_files() -> dict[str, bytes]:
    """The vector images, each file once (the vector table lists some several times)."""
    suffixes = (".jpg", ".jpeg", ".png")
    files = sorted(p for p in FIXTURES.rglob("*") if p.suffix.lower() in suffixes)
    return {str(p.relative_to(FIXTURES)): p.read_bytes() for p in files}


def photo_files(max_side: int = 1280, sources: Iterable[str] = ()) -> dict[str, bytes]:
    """The registered photos that are installed (of `sources` only, if given), as lossless
    PNG files."""
    wanted = set(sources)
    registry = [p for p in REGISTRY if not wanted or p.source in wanted]
    photos, _missing = load_registry(max_side=max_side, registry=registry)
    files = {}
    for photo in photos:
        buffer = io.BytesIO()
        photo.image.save(buffer, format="PNG")
        files[photo.name] = buffer.getvalue()
    return files


def compare(files: dict[str, bytes], node: str | None = None) -> list[Agreement]:
    """Hash every file with both implementations; raises if Node is missing or fails."""
    node = node or shutil.which("node")
    if node is None:
        raise FileNotFoundError("node is not installed (Debian: apt-get install nodejs)")
    with tempfile.TemporaryDirectory(prefix="hg-pdq-js-") as folder:
        manifest, python = [], []
        for index, data in enumerate(files.values()):
            pixels = np.asarray(decode_image(data, draft_side=0))
            raw = Path(folder) / f"{index}.rgb"
            raw.write_bytes(pixels.tobytes())
            manifest.append({"path": str(raw), "width": pixels.shape[1], "height": pixels.shape[0]})
            python.append(hash_image_bytes(data, draft_side=0).pdq)
        (Path(folder) / "manifest.json").write_text(json.dumps(manifest))
        result = subprocess.run(
            [node, str(NODE_SCRIPT), str(Path(folder) / "manifest.json")],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
    js = json.loads(result.stdout)
    return [
        Agreement(
            name,
            python_quality=ours.quality or 0,
            js_quality=theirs["quality"],
            distance=_distance(ours.value, theirs["hash"]),
            js_hash=theirs["hash"],
        )
        for name, ours, theirs in zip(files, python, js, strict=True)
    ]


def _distance(python_value: bytes, js_hex: str) -> int:
    return hex_distance(python_value.hex(), js_hex)


def hex_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def summary(rows: Iterable[Agreement]) -> str:
    rows = list(rows)
    strong = [r for r in rows if r.python_quality >= PORT_TOLERANCE_MIN_QUALITY]
    worst = max((r.distance for r in strong), default=0)
    exact = sum(r.distance == 0 for r in rows)
    return (
        f"{len(rows)} images, {exact} bit-identical; quality >= {PORT_TOLERANCE_MIN_QUALITY}: "
        f"{len(strong)} images, largest distance {worst} bits "
        f"(tolerance {PORT_TOLERANCE_BITS}); largest quality difference "
        f"{max((abs(r.python_quality - r.js_quality) for r in rows), default=0)}"
    )


def main() -> None:
    for label, files in (("ThreatExchange vectors", fixture_files()), ("photos", photo_files())):
        rows = compare(files)
        print(f"\n{label}")
        print(f"{'image':44} {'py q':>5} {'js q':>5} {'bits':>5}")
        for row in rows:
            print(f"{row.name:44} {row.python_quality:5} {row.js_quality:5} {row.distance:5}")
        print(summary(rows))


if __name__ == "__main__":
    main()
