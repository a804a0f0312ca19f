"""What checking one video costs the server: by its bytes streamed through CheckVideo,
by its bytes in one CheckUpload, and by hashes the operator computed (video-md5 and
vPDQ) in CheckUpload, side by side in one run against one real server.

For each way, the server process's CPU time (user + system, from /proc) and its peak
RSS above what it held before the call (the peak reset before each call through
/proc/PID/clear_refs) are printed, with the wall time; for the hashes, also the CPU the
operator spent computing them. The video is a minute of 720p H.264 (pans over package
photos), listed by its vPDQ, so every check is a REVIEW.

    python -m loadtests.video_check_cost --seconds 60 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests.load import Server, cli
from loadtests.videos import Scene, encode, frames
from service.client import Client
from service.media.video import sample_frames
from service.media.video_hashes import file_digests, hash_frames
from service.signals.vpdq_frames import pack

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def video(seconds: float) -> bytes:
    per = seconds / len(PHOTOS)
    scenes = [Scene(Image.fromarray(getattr(skimage.data, n)()), per) for n in PHOTOS]
    return encode(frames(scenes, (1280, 720), 25.0), 25.0, "h264")


def operator_hashes(data: bytes) -> list[pb.Hash]:
    """What an operator computes on its side: the file's MD5 and its vPDQ."""
    md5, _ = file_digests(data)
    return [
        pb.Hash(algorithm=pb.HASH_ALGORITHM_VIDEO_MD5, value=md5),
        pb.Hash(algorithm=pb.HASH_ALGORITHM_VPDQ, value=pack(hash_frames(sample_frames(data)))),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    started = time.process_time()
    data = video(args.seconds)
    print(
        f"made {args.seconds:g} s of 720p H.264: {len(data):,} bytes "
        f"({time.process_time() - started:.0f} s CPU)"
    )
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        keys = {}
        for role in ("operator", "submitter"):
            printed = cli("keys", "add", "--data-dir", str(data_dir), "--role", role,
                          "--name", role)  # fmt: skip
            keys[role] = printed.strip().splitlines()[-1]
        path = Path(folder) / "upload.mp4"
        path.write_bytes(data)
        server = Server(data_dir, ("--max-message-bytes", str(64 * 2**20))).start()
        try:
            target = f"127.0.0.1:{server.port}"
            with Client(target, keys["submitter"]) as victim:
                victim.submission.SubmitCase(
                    pb.SubmitCaseRequest(hashes=operator_hashes(data)[1:]),
                    metadata=victim.metadata,
                )
            client = Client(target, keys["operator"], timeout=600)
            hashing: list[float] = []

            def by_hashes() -> pb.CheckUploadResponse:
                begun = time.process_time()
                hashes = operator_hashes(data)
                hashing.append(time.process_time() - begun)
                reply: pb.CheckUploadResponse = client.match.CheckUpload(
                    pb.CheckUploadRequest(hashes=hashes, content_ref="hashes"),
                    metadata=client.metadata,
                    timeout=600,
                )
                return reply

            ways: dict[str, Callable[[], pb.CheckUploadResponse]] = {
                "CheckVideo (streamed)": lambda: client.check_video_stream(path, "stream"),
                "CheckUpload (video bytes)": lambda: client.check_video_bytes(data, "bytes"),
                "CheckUpload (hashes)": by_hashes,
            }
            rows: dict[str, list[tuple[float, float, int, str]]] = {w: [] for w in ways}
            pid = server.server_pid
            for _ in range(args.repeats):
                for name, call in ways.items():
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
                    rss, cpu, wall = _status(pid, "VmRSS"), _cpu(pid), time.perf_counter()
                    reply = call()
                    wall = time.perf_counter() - wall
                    used = _cpu(pid) - cpu
                    peak = _status(pid, "VmHWM") - rss
                    rows[name].append((used, wall, peak, pb.Decision.Name(reply.decision)))
            client.close()
        finally:
            server.stop()
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; medians of {args.repeats}"
    )
    print(
        f"{'way':28} {'server CPU s':>12} {'CPU s / video s':>15} {'wall s':>7} "
        f"{'peak RSS +MiB':>13}  decision"
    )
    for name, got in rows.items():
        cpu = statistics.median(r[0] for r in got)
        wall = statistics.median(r[1] for r in got)
        peak_mib = statistics.median(r[2] for r in got) / 2**20
        print(
            f"{name:28} {cpu:>12.2f} {cpu / args.seconds:>15.3f} {wall:>7.2f} "
            f"{peak_mib:>13.0f}  {got[-1][3]}"
        )
    print(f"operator's CPU to compute the hashes (MD5, vPDQ): {statistics.median(hashing):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
