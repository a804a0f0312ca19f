"""Videos through real servers (issue 17): a listed video's re-encoded clip asks for
REVIEW and says which seconds matched (the API, the hit, the moderators' console), an
unrelated video is ALLOWed, a moderator's confirmation of the whole video makes its
re-encodes BLOCK while clips still ask for review, bad vPDQ values get INVALID_ARGUMENT,
a victim's submission file and python-threatexchange's list form carry vPDQ, and a
withdrawn video stops matching on every replica (SQLite and PostgreSQL).

Every video is made from package photos (pans and zooms) with PyAV's encoders; an
upload's queries are computed as the server computes them (media/video_hashes:
check_queries, four frames a second with their mirror and inner variants) and sent as a
precomputed vpdq hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from loadtests.videos import Scene, clip, decoded, encode, frames, resized
from service.media.video import VideoLimits, sample_frames
from service.media.video_hashes import check_queries, hash_frames
from service.signals.vpdq_frames import FrameHash, pack, pack_query, to_threatexchange, unpack
from tests.postgres import fresh_schema
from tests.support import ServerProcess, Stubs, WebTier, add_key, bearer, details, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

SIZE = (320, 180)
FPS = 10.0
ROLES = ("operator", "moderator", "submitter")
NO_LIMITS = (*("--rate-limits", "", "--max-cases-per-hour", "0", "--max-hashes-per-hour", "0"),)


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(skimage.data, name)())


def _video(names: tuple[str, ...], seconds: float = 6.0) -> bytes:
    scenes = [Scene(_photo(n), seconds) for n in names]
    return encode(frames(scenes, SIZE, FPS), FPS, "h264")


@dataclass(frozen=True)
class Videos:
    listed: bytes  # 24 s: four scenes
    vpdq: bytes  # its vPDQ, one frame a second, as a victim lists it
    clip: bytes  # seconds 8-16 of it, re-encoded to VP9
    whole: bytes  # all of it, re-encoded to VP9
    smaller: bytes  # all of it at 144 lines and a low bitrate
    unrelated: bytes  # four other photos


@pytest.fixture(scope="module")
def videos() -> Videos:
    listed = _video(("astronaut", "coffee", "chelsea", "rocket"))
    pictures, rate = decoded(listed)
    cut = encode(clip(pictures, rate, 8.0, 8.0), rate, "vp9")
    pictures, rate = decoded(listed)
    whole = encode(pictures, rate, "vp9")
    pictures, rate = decoded(listed)
    smaller = encode(resized(pictures, 144), rate, "h264", bitrate=150_000)
    listed_frames = hash_frames(sample_frames(listed, VideoLimits()))
    unrelated = _video(("immunohistochemistry", "hubble_deep_field", "retina", "clock"))
    return Videos(listed, pack(listed_frames), cut, whole, smaller, unrelated)


def vpdq_hash(value: bytes) -> pb.Hash:
    return pb.Hash(algorithm=pb.HASH_ALGORITHM_VPDQ, value=value)


def queries(video: bytes) -> pb.Hash:
    """An upload's vpdq query, computed as the server computes it."""
    return vpdq_hash(pack_query(check_queries(video, VideoLimits())))


def digests(video: bytes) -> list[pb.Hash]:
    return [
        pb.Hash(algorithm=pb.HASH_ALGORITHM_VIDEO_MD5, value=hashlib.md5(video).digest()),
        pb.Hash(algorithm=pb.HASH_ALGORITHM_VIDEO_SHA256, value=hashlib.sha256(video).digest()),
    ]


@dataclass
class Service:
    server: ServerProcess
    stubs: Stubs
    keys: dict[str, str]

    def check(self, *hashes: pb.Hash, ref: str = "") -> pb.CheckUploadResponse:
        request = pb.CheckUploadRequest(hashes=list(hashes), content_ref=ref)
        return self.stubs.match.CheckUpload(request, metadata=bearer(self.keys["operator"]))

    def submit(self, *hashes: pb.Hash) -> pb.SubmitCaseResponse:
        request = pb.SubmitCaseRequest(hashes=list(hashes))
        return self.stubs.submission.SubmitCase(request, metadata=bearer(self.keys["submitter"]))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("videos")
    keys = {role: add_key(data, role, role) for role in ROLES}
    server = ServerProcess(data, extra_args=NO_LIMITS).start()
    with server.channel() as channel:
        yield Service(server, Stubs(channel), keys)
    assert server.stop() == 0, server.log()


def test_a_clip_is_reviewed_with_its_seconds_and_an_unrelated_video_allowed(
    service: Service, videos: Videos
) -> None:
    case = service.submit(vpdq_hash(videos.vpdq), *digests(videos.listed))
    assert case.entry_count == 3
    assert service.check(queries(videos.unrelated)).decision == pb.DECISION_ALLOW

    reply = service.check(queries(videos.clip), ref="clip-1")
    assert reply.decision == pb.DECISION_REVIEW and reply.hit_id
    [match] = reply.matches
    assert match.algorithm == pb.HASH_ALGORITHM_VPDQ
    assert (match.part, match.partial) == (pb.MATCH_PART_SEGMENT, True)
    span = match.span
    # the clip is seconds 8-16 of the listed video: most of both, within a second
    assert 0.0 <= span.upload_start_seconds <= 1.5 and span.upload_end_seconds >= 5.5
    assert 7.0 <= span.listed_start_seconds <= 9.5 and 13.5 <= span.listed_end_seconds <= 16.5
    lag = span.listed_start_seconds - span.upload_start_seconds
    assert abs(lag - 8.0) <= 1.0

    hits = service.stubs.review.ListHits(
        pb.ListHitsRequest(), metadata=bearer(service.keys["moderator"])
    )
    [hit] = [h for h in hits.hits if h.hit_id == reply.hit_id]
    assert hit.matches[0].span == span

    web = WebTier(service.server.target).start()
    try:
        moderator = web.browser()
        moderator.sign_in(service.keys["moderator"])
        status, page, _ = moderator.request("/console")
        assert status == 200
        expected = (
            f"seconds {span.upload_start_seconds:.1f}\u2013{span.upload_end_seconds:.1f} of the "
            f"upload match seconds {span.listed_start_seconds:.1f}\u2013"
            f"{span.listed_end_seconds:.1f} of the listed video"
        )
        assert expected in page
    finally:
        web.stop()

    # The file itself, byte for byte: its digests match exactly.
    exact = service.check(*digests(videos.listed))
    assert exact.decision == pb.DECISION_REVIEW
    assert sorted(m.algorithm for m in exact.matches) == [
        pb.HASH_ALGORITHM_VIDEO_MD5,
        pb.HASH_ALGORITHM_VIDEO_SHA256,
    ]
    assert all(not m.HasField("span") for m in exact.matches)


def test_vetting_the_whole_video_blocks_its_re_encodes_and_clips_still_ask_for_review(
    service: Service, videos: Videos
) -> None:
    if service.check(vpdq_hash(videos.vpdq)).decision == pb.DECISION_ALLOW:  # run alone
        service.submit(vpdq_hash(videos.vpdq))
    reply = service.check(queries(videos.whole), ref="whole-1")
    assert reply.decision == pb.DECISION_REVIEW
    whole = [m for m in reply.matches if m.part == pb.MATCH_PART_WHOLE]
    assert whole and not whole[0].partial
    assert whole[0].span.listed_end_seconds - whole[0].span.listed_start_seconds >= 20
    resolved = service.stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=reply.hit_id, verdict=pb.VERDICT_CONFIRMED),
        metadata=bearer(service.keys["moderator"]),
    )
    assert whole[0].entry_id in resolved.vetted_entry_ids
    assert service.check(queries(videos.whole)).decision == pb.DECISION_BLOCK
    # Smaller and blurrier, still within the threshold of what the moderator confirmed.
    assert service.check(queries(videos.smaller)).decision == pb.DECISION_BLOCK
    # A clip matches only a segment: partial, so it asks for review even now.
    clip_reply = service.check(queries(videos.clip))
    assert clip_reply.decision == pb.DECISION_REVIEW
    assert all(m.partial for m in clip_reply.matches)
    assert service.check(queries(videos.unrelated)).decision == pb.DECISION_ALLOW


def _refused(call: Callable[[], object]) -> str:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, details(caught.value)
    return details(caught.value)


def test_bad_vpdq_values_are_invalid_argument_with_a_plain_message(
    service: Service, videos: Videos
) -> None:
    frames_ = unpack(videos.vpdq)
    backwards = b"".join(pack([f]) for f in reversed(frames_[:3]))
    flat = pack([FrameHash(f.pdq, 20, f.timestamp) for f in frames_])
    twice = pack([frames_[0], FrameHash(frames_[1].pdq, 90, frames_[0].timestamp)])
    for value, message in (
        (videos.vpdq[:-1], "records of 37 bytes"),
        (b"", "1 to 86,400 records of 37 bytes, got 0 bytes"),
        (backwards, "vpdq frame 1: times must not go backwards"),
        (twice, "vpdq frame 1: time 0.000 s is not after frame 0's"),
        (flat, "PDQ quality below 50"),
    ):
        assert message in _refused(lambda v=value: service.submit(vpdq_hash(v)))  # type: ignore[misc]
    assert "37-byte frame records" in _refused(lambda: service.check(vpdq_hash(b"\x01" * 40)))
    assert "times must not go backwards" in _refused(lambda: service.check(vpdq_hash(backwards)))


def test_a_victims_submission_file_and_a_python_threatexchange_list_carry_vpdq(
    service: Service, videos: Videos, tmp_path: Path
) -> None:
    """`hashguard submit` sends a file's vpdq; a list in python-threatexchange's form
    (JSON with blanks, times to 3 significant digits) imports, exports in that form and
    imports again unchanged."""
    other = _video(("astronaut", "camera", "coffee"), 5.0)
    value = pack(hash_frames(sample_frames(other, VideoLimits())))
    submission = tmp_path / "submission.json"
    submission.write_text(
        json.dumps(
            {
                "format": "hashguard-submission",
                "version": 1,
                "images": [
                    {
                        "file": "me.mp4",
                        "hashes": [{"algorithm": "vpdq", "hex": to_threatexchange(unpack(value))}],
                    }
                ],
            }
        )
    )
    sent = run_cli(
        "submit", str(submission), "--key", service.keys["submitter"],
        "--target", service.server.target,
    )  # fmt: skip
    assert "case id" in sent.stdout
    assert service.check(queries(other)).decision == pb.DECISION_REVIEW

    theirs = json.dumps([f"{f.pdq.hex()},{f.quality},{f.timestamp:.3}" for f in unpack(value)])
    listing = tmp_path / "dataset.txt"
    listing.write_text(f"vpdq {theirs} 'Sample Signals' {{}}\n")
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        "imported 1 new entries" in run_cli("import", str(listing), "--data-dir", str(first)).stdout
    )
    exported = tmp_path / "exported.txt"
    run_cli(
        "export", "--data-dir", str(first), "--out", str(exported), "--format", "threatexchange"
    )
    line = exported.read_text()
    assert line.startswith('vpdq ["') and line.count("\n") == 1
    run_cli("import", str(exported), "--data-dir", str(second))
    again = tmp_path / "again.txt"
    run_cli("export", "--data-dir", str(second), "--out", str(again), "--format", "threatexchange")
    assert again.read_text() == line


# -- every replica -----------------------------------------------------------------------


def _within(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not true within {seconds}s"
        time.sleep(0.05)


def _withdrawal_reaches_every_replica(
    replicas: list[Stubs], keys: dict[str, str], videos: Videos
) -> None:
    def decision(stubs: Stubs) -> int:
        request = pb.CheckUploadRequest(hashes=[queries_of_clip])
        return int(stubs.match.CheckUpload(request, metadata=bearer(keys["operator"])).decision)

    queries_of_clip = queries(videos.clip)
    first, *others = replicas
    case = first.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=[vpdq_hash(videos.vpdq)]),
        metadata=bearer(keys["submitter"]),
    )
    for stubs in replicas:
        _within(lambda s=stubs: decision(s) == pb.DECISION_REVIEW, 5.0)  # type: ignore[misc]
    others[-1].submission.WithdrawCase(
        pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    for stubs in replicas:
        _within(lambda s=stubs: decision(s) == pb.DECISION_ALLOW, 5.0)  # type: ignore[misc]


def test_a_withdrawn_video_stops_matching_on_every_sqlite_replica(
    videos: Videos, tmp_path: Path
) -> None:
    """Two processes on one SQLite store: the second follows the first's changes."""
    keys = {role: add_key(tmp_path, role, role) for role in ROLES}
    servers = [ServerProcess(tmp_path, extra_args=NO_LIMITS).start() for _ in range(2)]
    channels = [s.channel() for s in servers]
    try:
        _withdrawal_reaches_every_replica([Stubs(c) for c in channels], keys, videos)
    finally:
        for channel in channels:
            channel.close()
        for server in servers:
            assert server.stop() == 0, server.log()


def test_a_withdrawn_video_stops_matching_on_every_postgresql_replica(
    videos: Videos, tmp_path: Path
) -> None:
    with fresh_schema() as (url, _schema):
        keys = {
            role: run_cli("keys", "add", "--store", url, "--role", role, "--name", role)
            .stdout.strip()
            .splitlines()[-1]
            for role in ROLES
        }
        args = [*NO_LIMITS, "--store", url, "--pool-size", "2"]
        servers = [ServerProcess(tmp_path / n, extra_args=args).start() for n in "abc"]
        channels = [s.channel() for s in servers]
        try:
            _withdrawal_reaches_every_replica([Stubs(c) for c in channels], keys, videos)
        finally:
            for channel in channels:
                channel.close()
            for server in servers:
                assert server.stop() == 0, server.log()
