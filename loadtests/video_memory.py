"""What checking one video really allocates, against what the decode budget reserves.

Each video is checked as the server checks it (MD5, SHA-256, then the frame queries at
4 a second: decoding, RGB conversion of the sampled frames, PDQ of each and its
variants) in one fresh interpreter, one after another, the peak reset before each; its
peak RSS above what the process held before is printed beside what
service.media.video_cost reserves for it (the file's bytes are reserved apart, as they
arrive). The reservation must be at least the peak for every kind.

    python -m loadtests.video_memory
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable

import skimage.data
from PIL import Image

from loadtests import hostile_videos
from loadtests.videos import Scene, encode, frames
from service.media.video import VideoLimits
from service.media.video_cost import video_decode_cost

_MEASURE_MANY = """
import ctypes, json, sys
import av
from service.media.video_hashes import check_queries, file_digests
from service.media.video import VideoLimits
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
libc = ctypes.CDLL(None)
results = []
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    sizes = []
    libc.malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = status("VmRSS")
    file_digests(data)
    try:
        check_queries(data, VideoLimits(), on_header=lambda w, h: sizes.append((w, h)))
        outcome = "OK"
    except Exception as exc:
        outcome = type(exc).__name__
    results.append({"peak": status("VmHWM") - before, "size": sizes[:1], "outcome": outcome})
print(json.dumps(results))
"""


def measure_many(files: list[bytes]) -> list[dict[str, object]]:
    """Peak RSS growth of each file's check, one after another in one fresh process,
    with the frame size its header declared and how the check ended."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, data in enumerate(files):
            path = f"{folder}/{n}.video"
            with open(path, "wb") as handle:
                handle.write(data)
            paths.append(path)
        out = subprocess.run(
            [sys.executable, "-c", _MEASURE_MANY, *paths],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
    results: list[dict[str, object]] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def _story(size: tuple[int, int], encoding: str, seconds: float = 3.0) -> bytes:
    scenes = [Scene(Image.fromarray(skimage.data.astronaut()), seconds)]
    return encode(frames(scenes, size, 25.0), 25.0, encoding)


def videos(quick: bool = False) -> dict[str, Callable[[], bytes]]:
    """Kinds of video, each decoded differently: codecs at several sizes, the decoder
    holding the most frames, flat 4K, frames larger than the header says, animation."""
    kinds: dict[str, Callable[[], bytes]] = {
        "H.264 640x360": lambda: _story((640, 360), "h264"),
        "H.264 1280x720": lambda: _story((1280, 720), "h264"),
        "VP9 1280x720": lambda: _story((1280, 720), "vp9"),
        "MPEG-4 1280x720": lambda: _story((1280, 720), "mpeg4"),
        "H.264 16 refs 1920x1080": lambda: hostile_videos.deep_buffer_bomb(1920, 1080, 2),
        "MJPEG frames past header": hostile_videos.growing_frames_bomb,
        "GIF 1000x1000": lambda: hostile_videos.big_animation(1000, 10),
    }
    if not quick:
        kinds["H.264 1920x1080"] = lambda: _story((1920, 1080), "h264")
        kinds["H.264 flat 3840x2160"] = lambda: hostile_videos.flat_4k_bomb(2)
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out 1080p and 4K")
    args = parser.parse_args()
    made = {name: make() for name, make in videos(args.quick).items()}
    results = measure_many(list(made.values()))
    mib = 2**20
    print(
        f"{'video':28} {'bytes':>10} {'header':>11} {'reserved MiB':>13} {'peak MiB':>9} "
        f"{'reserved/peak':>14}  outcome"
    )
    worst = float("inf")
    for (name, data), result in zip(made.items(), results, strict=True):
        size = result["size"]
        width, height = size[0] if isinstance(size, list) and size else (0, 0)
        reserved = video_decode_cost(width, height, VideoLimits())
        peak = int(str(result["peak"]))
        ratio = reserved / max(peak, 1)
        worst = min(worst, ratio)
        print(
            f"{name:28} {len(data):>10,} {f'{width}x{height}':>11} {reserved / mib:>13.0f} "
            f"{peak / mib:>9.0f} {ratio:>14.2f}  {result['outcome']}"
        )
    print(f"lowest reserved/peak: {worst:.2f}")
    return 0 if worst >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
