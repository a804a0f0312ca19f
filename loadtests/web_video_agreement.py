"""The victim page's video fingerprints in a real browser against the service's.

Each video (pans over package photos cut together, encoded with PyAV's encoders at the
frame rates forums see, plus animated GIF and WebP) is hashed twice: in Debian's Chromium
by the page's own script (static/video.js: a <video> element seeked once a second, or
ImageDecoder, then pdq.js) and by `hashguard hash`'s code (service/media/video.py and
video_hashes.py, the service's sampling). Printed per file: the frame counts, how many
frames were taken at the same time, the largest and median PDQ distance between
frames taken at the same second, the frames of quality >= 80 beyond PDQ's 10-bit port
tolerance, whether SHA-256 and MD5 agree, and the seconds each side took.

    python -m loadtests.web_video_agreement            # the set below
    python -m loadtests.web_video_agreement --long     # and a 60 s 720p H.264 file

Needs /usr/bin/chromium and the `playwright` package (test extra); no server.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import skimage.data
from PIL import Image

from loadtests.videos import Scene, encode, frames
from service.media.video import sample_frames
from service.media.video_hashes import FrameHash, hash_frames, unpack

STATIC = Path(__file__).resolve().parent.parent / "service" / "web" / "static"
SCRIPTS = ("pdq.js", "md5.js", "video.js")
PORT_TOLERANCE = 10
LIMITS = {"maxBytes": 512 * 1024 * 1024, "maxSeconds": 1800, "maxPixels": 3840 * 2160}
_HASH_IN_PAGE = """async ([encoded, name, limits]) => {
  const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
  const file = new File([bytes], name);
  const started = performance.now();
  const kind = await HashGuardVideo.kindOf(file);
  const result = await HashGuardVideo.videoFingerprints(
    file, kind, Object.assign({everySeconds: 1}, limits), null);
  result.ms = performance.now() - started;
  result.kind = kind;
  return result;
}"""
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "cat")


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


def clips(long: bool) -> dict[str, bytes]:
    """The files compared: each a few scenes over different photos."""

    def scenes(first: int, seconds: float) -> list[Scene]:
        return [Scene(_photo(PHOTOS[(first + i) % len(PHOTOS)]), seconds) for i in range(3)]

    out = {
        "VP9 WebM 25 fps 480x270": encode(frames(scenes(0, 4), (480, 270), 25), 25, "vp9"),
        "VP9 WebM 29.97 fps 640x360": encode(frames(scenes(1, 4), (640, 360), 29.97), 29.97, "vp9"),
        "H.264 MP4 30 fps 640x360": encode(frames(scenes(2, 4), (640, 360), 30), 30, "h264"),
        "H.264 MP4 29.97 fps 480x270": encode(
            frames(scenes(3, 4), (480, 270), 29.97), 29.97, "h264"
        ),
        "H.264 MP4 24 fps 1280x720": encode(frames(scenes(4, 4), (1280, 720), 24), 24, "h264"),
        "H.264 MKV 60 fps 480x270": encode(frames(scenes(5, 3), (480, 270), 60), 60, "mkv"),
        "GIF 10 fps 320x180": encode(frames(scenes(0, 2), (320, 180), 10), 10, "gif"),
        "animated WebP 4 fps 320x180": _webp(scenes(1, 2)),
    }
    if long:
        long_scenes = [Scene(_photo(PHOTOS[i % len(PHOTOS)]), 6.0) for i in range(10)]
        out["H.264 MP4 30 fps 1280x720, 60 s"] = encode(
            frames(long_scenes, (1280, 720), 30), 30, "h264"
        )
    return out


def _webp(scenes: list[Scene]) -> bytes:
    pictures = [Image.fromarray(p) for p in frames(scenes, (320, 180), 4)]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="WEBP", save_all=True, append_images=pictures[1:], duration=250, quality=90
    )
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    service_frames: int
    page_frames: int
    same_times: int
    worst: int
    median: float
    beyond: int  # frames of quality >= 80 beyond PORT_TOLERANCE
    digests_equal: bool
    service_seconds: float
    page_seconds: float


def compare(
    name: str, data: bytes, page: dict[str, Any], service: list[FrameHash], service_seconds: float
) -> Row:
    vpdq = next(h["hex"] for h in page["hashes"] if h["algorithm"] == "vpdq")
    ours: list[FrameHash] = unpack(bytes.fromhex(vpdq))
    by_time = {round(f.timestamp, 3): f for f in service}
    distances, beyond, same = [], 0, 0
    for frame in ours:
        theirs = by_time.get(round(frame.timestamp, 3))
        if theirs is None:
            continue
        same += 1
        bits = (int.from_bytes(frame.pdq, "big") ^ int.from_bytes(theirs.pdq, "big")).bit_count()
        distances.append(bits)
        beyond += theirs.quality >= 80 and bits > PORT_TOLERANCE
    digests = {h["algorithm"]: h["hex"] for h in page["hashes"]}
    return Row(
        name,
        len(service),
        len(ours),
        same,
        max(distances, default=-1),
        statistics.median(distances) if distances else -1,
        beyond,
        digests["video-sha256"] == hashlib.sha256(data).hexdigest()
        and digests["video-md5"] == hashlib.md5(data).hexdigest(),
        service_seconds,
        page["ms"] / 1000,
    )


def in_chromium(files: dict[str, bytes], chromium: str = "/usr/bin/chromium") -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            # crypto.subtle needs a secure context: an https page served by this script.
            page.route(
                "https://hashguard.test/",
                lambda route: route.fulfill(body="<!doctype html><title>t</title>"),
            )
            page.goto("https://hashguard.test/")
            page.add_style_tag(path=str(STATIC / "style.css"))
            for script in SCRIPTS:
                page.add_script_tag(path=str(STATIC / script))
            return {
                name: page.evaluate(_HASH_IN_PAGE, [base64.b64encode(data).decode(), name, LIMITS])
                for name, data in files.items()
            }
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--long", action="store_true", help="add a 60 s 720p H.264 file")
    args = parser.parse_args()
    files = clips(args.long)
    pages = in_chromium(files)
    rows = []
    for name, data in files.items():
        started = time.process_time()
        service = hash_frames(sample_frames(data))
        rows.append(compare(name, data, pages[name], service, time.process_time() - started))
    print(f"load average {os.getloadavg()[0]:.1f} (1 min)")
    print(
        f"| {'file':34} | service frames | page frames | same seconds | largest distance "
        "| median | q>=80 over 10 | SHA-256, MD5 | service CPU s | page s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        print(
            f"| {r.name:34} | {r.service_frames} | {r.page_frames} | {r.same_times} | "
            f"{r.worst} | {r.median:g} | {r.beyond} | {'equal' if r.digests_equal else 'DIFFER'} "
            f"| {r.service_seconds:.2f} | {r.page_seconds:.2f} |"
        )


if __name__ == "__main__":
    main()
