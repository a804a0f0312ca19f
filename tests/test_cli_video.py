"""`hashguard hash` on videos (issue 17): real files encoded with PyAV from package photos,
the real command in a fresh interpreter. A video's entry holds its vPDQ (one frame a
second, the service's own sampling), SHA-256 and MD5; hostile and unreadable files are
skipped with their reason while the batch goes on; the progress bar is drawn only on a
terminal and never with --quiet."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests.videos import Scene, decoded, encode, frames, retimed
from service import submission_file
from service.media.video import sample_frames
from service.media.video_hashes import hash_frames, pack, unpack
from service.signals.registry import parse_name
from tests.support import ServerProcess, Stubs, add_key, bearer, run_cli

SIZE = (320, 180)


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    scenes = [Scene(_photo("astronaut"), 3.0), Scene(_photo("coffee"), 3.0)]
    out = {}
    for name, encoding, fps in (("a.webm", "vp9", 25.0), ("b.mp4", "h264", 29.97)):
        out[name] = folder / name
        out[name].write_bytes(encode(frames(scenes, SIZE, fps), fps, encoding))
    out["c.gif"] = folder / "c.gif"
    out["c.gif"].write_bytes(encode(frames(scenes[:1], SIZE, 5.0), 5.0, "gif"))
    return out


def test_videos_and_photos_hash_into_one_submission_file(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    photo = tmp_path / "me.jpg"
    _photo("chelsea").save(photo, quality=92)
    out = tmp_path / "submission.json"
    files = [clips["a.webm"], photo, clips["b.mp4"], clips["c.gif"]]
    done = run_cli("hash", *map(str, files), "--out", str(out))
    assert "hashed 4 files into" in done.stderr
    images = json.loads(out.read_text())["images"]
    assert [i["file"] for i in images] == ["a.webm", "me.jpg", "b.mp4", "c.gif"]
    for entry, path in zip(images, files, strict=True):
        kinds = [h["algorithm"] for h in entry["hashes"]]
        if path == photo:
            assert "pdq" in kinds and "vpdq" not in kinds
            continue
        assert kinds == ["vpdq", "video-sha256", "video-md5"]
        data = path.read_bytes()
        written = {h["algorithm"]: h["hex"] for h in entry["hashes"]}
        assert written["video-sha256"] == hashlib.sha256(data).hexdigest()
        assert written["video-md5"] == hashlib.md5(data).hexdigest()
        # python-threatexchange's text form, with the service's own frames
        listed = unpack(parse_name("vpdq").parse(written["vpdq"]))
        assert listed == hash_frames(sample_frames(data))
        assert written["vpdq"].startswith('["')
        assert len(listed) == (3 if path.suffix == ".gif" else 6)
    # `hashguard submit` reads them back, one hash value each.
    hashes = submission_file.load(out)
    assert sum(h.algorithm.name == "vpdq" for h in hashes) == 3


def test_hostile_and_unreadable_videos_are_skipped_and_the_batch_goes_on(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    data = clips["b.mp4"].read_bytes()
    webm = clips["a.webm"].read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(webm[: len(webm) // 2])  # a download cut short: what came is hashed
    cut_mp4 = tmp_path / "cut.mp4"  # an MP4 whose index (moov, at the end) never came
    cut_mp4.write_bytes(data[: len(data) // 2])
    header_only = tmp_path / "header.mp4"
    header_only.write_bytes(data[:40])
    garbage = tmp_path / "garbage.mkv"
    garbage.write_bytes(b"\x1a\x45\xdf\xa3" + os.urandom(5000))
    huge = tmp_path / "huge.mp4"  # frames over the service's 3840x2160 limit
    huge.write_bytes(encode([np.zeros((2160, 4096, 3), np.uint8)], 1.0, "h264"))
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    files = [header_only, garbage, huge, cut_mp4, cut, empty, clips["a.webm"]]
    done = run_cli("hash", *map(str, files), "--out", str(tmp_path / "s.json"), check=False)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    said = {path.name: next(line for line in lines if path.name in line) for path in files[:4]}
    assert "not a video the service can decode" in said["header.mp4"] or (
        "no decodable frames" in said["header.mp4"]
    ), said
    assert said["garbage.mkv"].startswith("skipped ") and "decode" in said["garbage.mkv"]
    assert "4096x2160" in said["huge.mp4"] and "the limit is 8,294,400" in said["huge.mp4"]
    assert "not a video the service can decode" in said["cut.mp4"]
    assert "skipped " + str(empty) + ": image is empty" in done.stderr
    assert "hashed 2 of 7 files (5 skipped, named above)" in done.stderr
    images = json.loads((tmp_path / "s.json").read_text())["images"]
    assert [i["file"] for i in images] == ["cut.webm", "a.webm"]
    frames_cut = unpack(parse_name("vpdq").parse(images[0]["hashes"][0]["hex"]))
    assert 1 <= len(frames_cut) < 6


def _on_a_terminal(*args: str) -> str:
    """`hashguard ARGS` with stderr on an 80x24 pseudo-terminal; what it drew there."""
    import fcntl
    import pty
    import struct
    import termios

    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        subprocess.run(
            [sys.executable, "-m", "service.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=side,
            timeout=120,
            check=True,
        )
        os.close(side)
        side = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            drawn += chunk
        return drawn.decode(errors="replace")
    finally:
        os.close(main)
        if side >= 0:
            os.close(side)


def test_a_progress_bar_per_video_only_on_a_terminal(clips: dict[str, Path]) -> None:
    drawn = _on_a_terminal("hash", str(clips["a.webm"]), "--out", os.devnull)
    assert "a.webm:" in drawn and "0/6 s of video" in drawn  # then cleared when done
    quiet = _on_a_terminal("hash", str(clips["a.webm"]), "--out", os.devnull, "--quiet")
    assert "s of video" not in quiet and "hashed 1 file into" in quiet
    piped = run_cli("hash", str(clips["a.webm"]), "--out", os.devnull)
    assert "s of video" not in piped.stderr and "%|" not in piped.stderr


@pytest.mark.slow
def test_submitted_video_hashes_flag_a_reencoded_copy(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """`hashguard submit` sends a video's hashes; a re-encoded copy's vPDQ (VP9 -> H.264,
    24 fps) is then REVIEWed through a real server, and the same bytes match exactly."""
    out = tmp_path / "submission.json"
    run_cli("hash", str(clips["a.webm"]), "--out", str(out))
    data = tmp_path / "data"
    keys = {r: add_key(data, r, r) for r in ("operator", "submitter")}
    server = ServerProcess(data).start()
    try:
        submitted = run_cli(
            "submit", str(out), "--target", server.target, "--key", keys["submitter"]
        )
        assert "case id:" in submitted.stdout
        pictures, fps = decoded(clips["a.webm"].read_bytes())
        copy = encode(retimed(pictures, fps, 24.0), 24.0, "h264")
        frames_of_copy = hash_frames(sample_frames(copy))
        md5 = hashlib.md5(clips["a.webm"].read_bytes()).digest()
        with server.channel() as channel:
            for hashes in (
                [pb.Hash(algorithm=pb.HASH_ALGORITHM_VPDQ, value=pack(frames_of_copy))],
                [pb.Hash(algorithm=pb.HASH_ALGORITHM_VIDEO_MD5, value=md5)],
            ):
                answer = Stubs(channel).match.CheckUpload(
                    pb.CheckUploadRequest(hashes=hashes, content_ref="clip-1"),
                    metadata=bearer(keys["operator"]),
                    timeout=60,
                )
                assert answer.decision == pb.DECISION_REVIEW, answer
    finally:
        server.stop()
