"""Operators check videos by their bytes through a real server: whole in CheckUpload's
`video`, or streamed through CheckVideo. A victim's listed video, re-encoded, is
REVIEWed both ways and an unrelated one ALLOWed; hostile videos each get a precise
status; a stream over the byte limit is refused before it is buffered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests import hostile_videos
from loadtests.videos import Scene, decoded, encode, frames
from service.client import Client
from service.media.video import sample_frames
from service.media.video_hashes import file_digests, hash_frames
from service.signals.vpdq_frames import pack
from tests.support import ServerProcess, Stubs, add_key, bearer, details, run_cli

pytestmark = pytest.mark.slow  # starts a real server

SIZE, FPS = (320, 180), 10.0
MAX_VIDEO_BYTES = 3 * 1024 * 1024


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


@pytest.fixture(scope="module")
def story() -> bytes:
    scenes = [Scene(_photo("astronaut"), 6.0), Scene(_photo("coffee"), 6.0)]
    return encode(frames(scenes, SIZE, FPS), FPS, "h264")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("videos")
    keys = {role: add_key(data_dir, role, role) for role in ("operator", "submitter")}
    proc = ServerProcess(
        data_dir,
        (
            "--max-video-bytes", str(MAX_VIDEO_BYTES),
            "--max-video-seconds", "60",
            "--rate-limits", "",
        ),
    ).start()  # fmt: skip
    proc.keys = keys  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.log()


def _key(server: ServerProcess, role: str) -> str:
    return str(server.keys[role])  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def listed(server: ServerProcess, story: bytes) -> bytes:
    """The victim lists the story by its vPDQ and MD5 (as `hashguard hash` computes)."""
    md5, _ = file_digests(story)
    hashes = [
        pb.Hash(algorithm=pb.HASH_ALGORITHM_VPDQ, value=pack(hash_frames(sample_frames(story)))),
        pb.Hash(algorithm=pb.HASH_ALGORITHM_VIDEO_MD5, value=md5),
    ]
    with server.channel() as channel:
        Stubs(channel).submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=hashes), metadata=bearer(_key(server, "submitter"))
        )
    return story


def _client(server: ServerProcess) -> Client:
    return Client(server.target, _key(server, "operator"), timeout=120)


def _stream(
    client: Client, data: bytes, tmp_path: Path, chunk: int = 64 * 1024
) -> pb.CheckUploadResponse:
    path = tmp_path / "upload.video"
    path.write_bytes(data)
    return client.check_video_stream(path, "post-1", timeout=300, chunk_bytes=chunk)


def test_a_reencoded_copy_is_reviewed_by_bytes_and_by_stream(
    server: ServerProcess, listed: bytes, tmp_path: Path
) -> None:
    pictures, fps = decoded(listed)
    reencoded = encode(pictures, fps, "vp9")
    unrelated = encode(frames([Scene(_photo("rocket"), 8.0)], SIZE, FPS), FPS, "h264")
    with _client(server) as client:
        by_bytes = client.check_video_bytes(reencoded, "post-1", timeout=300)
        by_stream = _stream(client, reencoded, tmp_path)
        exact = client.check_video_bytes(listed, "post-2", timeout=300)
        other = _stream(client, unrelated, tmp_path)
    for reply in (by_bytes, by_stream):
        assert reply.decision == pb.DECISION_REVIEW, reply
        video = [m for m in reply.matches if m.algorithm == pb.HASH_ALGORITHM_VPDQ]
        assert video and reply.hit_id and reply.content_ref == "post-1"
        assert video[0].span.upload_end_seconds > video[0].span.upload_start_seconds
    assert by_stream.computed_hashes == by_bytes.computed_hashes  # same bytes, same digests
    assert {m.algorithm for m in exact.matches} >= {pb.HASH_ALGORITHM_VIDEO_MD5}
    assert exact.decision == pb.DECISION_REVIEW
    assert other.decision == pb.DECISION_ALLOW and not other.matches


def test_the_cli_checks_a_video_file(server: ServerProcess, listed: bytes, tmp_path: Path) -> None:
    path = tmp_path / "leak.mp4"
    path.write_bytes(listed)
    out = run_cli(
        "check", str(path), "--key", _key(server, "operator"), "--target", server.target
    ).stdout
    assert "decision: REVIEW" in out and "VPDQ" in out and "of the listed video" in out


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


# name -> (the file, the status it gets, words of the message; "" for OK)
HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "not a video": (hostile_videos.not_a_video, "INVALID_ARGUMENT", "container 'jpeg_pipe'"),
    "odd container": (hostile_videos.odd_container, "INVALID_ARGUMENT", "'flv' is not accepted"),
    "zero frames": (hostile_videos.zero_frames, "INVALID_ARGUMENT", "not a video"),
    "truncated": (lambda: _cut(hostile_videos.odd_codec()), "OK", ""),
    "truncated MP4": (
        lambda: _cut(hostile_videos.deep_buffer_bomb(320, 240, 2)),
        "INVALID_ARGUMENT",
        "not a video",
    ),
    "huge declared size": (hostile_videos.huge_declared, "INVALID_ARGUMENT", "video"),
    "frames past the header": (
        hostile_videos.growing_frames_bomb,
        "INVALID_ARGUMENT",
        "could not be decoded",
    ),
    "two hours, declared": (hostile_videos.long_video, "INVALID_ARGUMENT", "the limit is 60 s"),
    "ten minutes, undeclared": (
        lambda: hostile_videos.long_video(600, "mpegts"),
        "INVALID_ARGUMENT",
        "the limit is 60 s",
    ),
    "odd codec": (hostile_videos.odd_codec, "OK", ""),
    "flat 4K bomb": (lambda: hostile_videos.flat_4k_bomb(1), "OK", ""),
    "deepest frame buffer": (
        lambda: hostile_videos.deep_buffer_bomb(1280, 720, 2),
        "OK",
        "",
    ),
    "big animation": (lambda: hostile_videos.big_animation(1000, 10), "OK", ""),
}


@pytest.mark.timeout(900)
def test_hostile_videos_get_a_precise_status(server: ServerProcess, tmp_path: Path) -> None:
    """Each hostile file, whole and streamed: OK (an ALLOW, nothing listed matches it)
    or the expected status and words. The times are printed, not asserted."""
    wrong = {}
    with _client(server) as client:
        for name, (make, status, words) in HOSTILE.items():
            data = make()
            for way in ("bytes", "stream"):
                started = time.monotonic()
                try:
                    if way == "bytes":
                        client.check_video_bytes(data, name, timeout=300)
                    else:
                        _stream(client, data, tmp_path)
                    got, message = "OK", ""
                except grpc.RpcError as exc:
                    got, message = exc.code().name, details(exc)
                took = time.monotonic() - started
                print(f"{name:24} {way:6} {len(data):>10,} B  {got:18} {took:5.1f} s  {message}")
                if got != status or words not in message:
                    wrong[f"{name} ({way})"] = f"{got}: {message}"
    assert not wrong, wrong


def test_a_stream_over_the_byte_limit_is_refused_before_it_is_buffered(
    server: ServerProcess,
) -> None:
    operator = bearer(_key(server, "operator"))
    sent = []

    def requests(declare: bool) -> Iterator[pb.CheckVideoRequest]:
        total = MAX_VIDEO_BYTES * 4
        yield pb.CheckVideoRequest(content_ref="big", total_bytes=total if declare else 0)
        for _ in range(total // 65536):
            sent.append(1)
            yield pb.CheckVideoRequest(chunk=b"\0" * 65536)

    with server.channel() as channel:
        stub = Stubs(channel).match
        for declare in (True, False):
            sent.clear()
            with pytest.raises(grpc.RpcError) as refused:
                stub.CheckVideo(requests(declare), metadata=operator, timeout=60)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert f"up to {MAX_VIDEO_BYTES:,} bytes (max_video_bytes)" in details(refused.value)
            # grpc reads ahead a little, but the stream ends long before its 12 MiB
            assert len(sent) < MAX_VIDEO_BYTES * 4 // 65536, len(sent)


def test_malformed_streams_and_videos_in_bulk_calls_are_refused(
    server: ServerProcess, story: bytes
) -> None:
    operator = bearer(_key(server, "operator"))
    cases = {
        "short": [
            pb.CheckVideoRequest(content_ref="a", total_bytes=len(story) + 10),
            pb.CheckVideoRequest(chunk=story),
        ],
        "long": [
            pb.CheckVideoRequest(content_ref="a", total_bytes=10),
            pb.CheckVideoRequest(chunk=story[:100]),
        ],
        "ref later": [pb.CheckVideoRequest(chunk=story), pb.CheckVideoRequest(content_ref="x")],
        "empty": [pb.CheckVideoRequest(content_ref="a")],
        "nothing": [],
    }
    with server.channel() as channel:
        stubs = Stubs(channel)
        for name, messages in cases.items():
            with pytest.raises(grpc.RpcError) as refused:
                stubs.match.CheckVideo(iter(messages), metadata=operator, timeout=60)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        batch = stubs.match.CheckUploadBatch(
            pb.CheckUploadBatchRequest(uploads=[pb.CheckUploadRequest(video=story)]),
            metadata=operator,
        )
        assert batch.results[0].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "a video goes alone" in batch.results[0].error.message
        with pytest.raises(grpc.RpcError) as both:
            stubs.match.CheckUpload(
                pb.CheckUploadRequest(video=story, image=b"x"), metadata=operator
            )
        assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT
