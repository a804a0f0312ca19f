"""The file `hashguard hash` writes on the victim's machine and `hashguard submit` sends.

It holds hashes only (and the local file names, for the victim's own reference; names
are never sent). Format, version 1:
{"format": "hashguard-submission", "version": 1,
 "images": [{"file": "a.jpg", "hashes": [{"algorithm": "pdq", "hex": "...", "quality": 100}]}]}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.domain import HashValue
from service.errors import InvalidInput
from service.signals.registry import parse_name

FORMAT = "hashguard-submission"
VERSION = 1


def image_entry(file_name: str, hashes: Sequence[HashValue]) -> dict[str, Any]:
    return {
        "file": file_name,
        "hashes": [
            {"algorithm": h.algorithm.name, "hex": h.algorithm.format(h.value)}
            | ({"quality": h.quality} if h.quality is not None else {})
            for h in hashes
        ],
    }


def dump(images: list[dict[str, Any]]) -> str:
    return json.dumps({"format": FORMAT, "version": VERSION, "images": images}, indent=2) + "\n"


# How image files begin (JPEG, PNG, GIF, WebP's RIFF, BMP, TIFF, HEIF's ftyp box).
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*")


def load(path: str | Path) -> list[HashValue]:
    """Read a submission file back into hashes, with errors that say what is wrong."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read submission file {path}: {exc.strerror}") from None
    not_ours = (
        f"{path} is not a submission file: `hashguard submit` takes the JSON file that "
        "`hashguard hash PHOTO --out submission.json` writes"
    )
    if data.startswith(_IMAGE_MAGIC):
        raise InvalidInput(f"{not_ours} (this one is a photo: hash it first)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput(not_ours) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not a file written by `hashguard hash`")
    if doc.get("version") != VERSION:
        raise InvalidInput(f"{path} has version {doc.get('version')}; this tool reads {VERSION}")
    hashes = []
    for image in doc.get("images", []):
        for item in image.get("hashes", []):
            signal = parse_name(str(item.get("algorithm", "")))
            value = signal.parse(str(item.get("hex", "")))
            quality = item.get("quality")
            hashes.append(HashValue(signal, value, int(quality) if quality else None))
    if not hashes:
        raise InvalidInput(f"{path} holds no hashes")
    # The same photo hashed twice (a copy under another name) would repeat its hashes,
    # which the server refuses: send each once.
    return list({(h.algorithm, h.value): h for h in hashes}.values())
