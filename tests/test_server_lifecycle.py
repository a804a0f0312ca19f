"""Restarts and shutdown: acknowledged data survives, SIGTERM drains in-flight calls."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import skimage.data
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.hashes import hash_image_bytes
from service.store.sqlite import DB_FILENAME
from tests.support import ServerProcess, Stubs, add_key, bearer, details, encode, run_cli
from tests.test_limits import rate_limited_counts

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

PHOTO = Image.fromarray(skimage.data.astronaut())
UPLOAD = encode(PHOTO, "JPEG", quality=50)


def pdq_case(photo: Image.Image) -> pb.SubmitCaseRequest:
    """The PDQ hash a victim would submit for `photo`."""
    value = hash_image_bytes(encode(photo, "PNG")).pdq.value
    return pb.SubmitCaseRequest(hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=value)])


def submit_and_check(server: ServerProcess, keys: dict[str, str]) -> tuple[str, str, str]:
    """Submit PHOTO's case and check UPLOAD once: returns (case id, case token, hit id)."""
    with server.channel() as channel:
        stubs = Stubs(channel)
        case = stubs.submission.SubmitCase(pdq_case(PHOTO), metadata=bearer(keys["submitter"]))
        hit_id = stubs.match.CheckUpload(
            pb.CheckUploadRequest(image=UPLOAD, content_ref="x"), metadata=bearer(keys["operator"])
        ).hit_id
    return case.case_id, case.case_token, hit_id


def test_vetted_state_and_hits_survive_restart(tmp_path) -> None:
    keys = {r: add_key(tmp_path, r, r) for r in ("operator", "moderator", "submitter")}
    first = ServerProcess(tmp_path).start()
    case_id, case_token, hit_id = submit_and_check(first, keys)
    with first.channel() as channel:
        Stubs(channel).review.ResolveHit(
            pb.ResolveHitRequest(hit_id=hit_id, verdict=pb.VERDICT_CONFIRMED),
            metadata=bearer(keys["moderator"]),
        )
    assert first.stop() == 0

    second = ServerProcess(tmp_path).start()
    try:
        with second.channel() as channel:
            stubs = Stubs(channel)
            reply = stubs.match.CheckUpload(
                pb.CheckUploadRequest(image=UPLOAD), metadata=bearer(keys["operator"])
            )
            assert reply.decision == pb.DECISION_BLOCK
            hits = stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(keys["moderator"]))
            assert [h.state for h in hits.hits] == [pb.HIT_STATE_CONFIRMED]
            status = stubs.submission.GetCase(
                pb.GetCaseRequest(case_id=case_id, case_token=case_token)
            )
            assert status.entries_vetted == 1
    finally:
        assert second.stop() == 0
    assert "loaded the list" in second.log() and "pdq 1" in second.log()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_sigterm_lets_in_flight_stream_finish(tmp_path, loop: str) -> None:
    """On either event loop (--event-loop): SIGTERM drains the open stream, then stops."""
    operator = add_key(tmp_path, "operator", "op")
    server = ServerProcess(tmp_path, ("--event-loop", loop)).start()
    image = encode(Image.fromarray(skimage.data.coffee()))
    first_answered = threading.Event()

    def slow_requests() -> Iterator[pb.CheckUploadRequest]:
        for i in range(4):
            if i == 1:
                first_answered.wait(10)
                time.sleep(0.5)
            yield pb.CheckUploadRequest(image=image, content_ref=f"r{i}")

    replies: list[pb.CheckUploadResponse] = []
    errors: list[grpc.RpcError] = []

    def run_stream() -> None:
        with server.channel() as channel:
            try:
                for reply in Stubs(channel).match.CheckUploads(
                    slow_requests(), metadata=bearer(operator)
                ):
                    replies.append(reply)
                    first_answered.set()
            except grpc.RpcError as exc:
                errors.append(exc)

    worker = threading.Thread(target=run_stream)
    worker.start()
    assert first_answered.wait(30)
    code = server.stop()
    worker.join(30)
    assert code == 0
    assert not errors
    assert [r.content_ref for r in replies] == ["r0", "r1", "r2", "r3"]
    assert "hashguard stopped" in server.log()
    assert f"event loop: {loop}" in server.log()


def test_acknowledged_writes_survive_a_hard_kill(tmp_path) -> None:
    """SIGKILL right after the server answers: nothing it acknowledged is lost."""
    keys = {r: add_key(tmp_path, r, r) for r in ("operator", "moderator", "submitter")}
    server = ServerProcess(tmp_path).start()
    case_id, case_token, hit_id = submit_and_check(server, keys)
    assert server.process is not None
    server.process.kill()
    server.process.wait(30)

    again = ServerProcess(tmp_path).start()
    try:
        with again.channel() as channel:
            stubs = Stubs(channel)
            hits = stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(keys["moderator"]))
            assert [h.hit_id for h in hits.hits] == [hit_id]
            status = stubs.submission.GetCase(
                pb.GetCaseRequest(case_id=case_id, case_token=case_token)
            )
            assert status.entries_pending == 1
            reply = stubs.match.CheckUpload(
                pb.CheckUploadRequest(image=UPLOAD), metadata=bearer(keys["operator"])
            )
            assert reply.decision == pb.DECISION_REVIEW and reply.hit_id == hit_id
    finally:
        assert again.stop() == 0


def test_concurrent_checks_while_cases_come_and_go(tmp_path) -> None:
    """Checks on 8 threads while another submits and withdraws cases: no errors, and a
    photo whose case stays listed is never missed."""
    keys = {r: add_key(tmp_path, r, r) for r in ("operator", "submitter")}
    server = ServerProcess(tmp_path, extra_args=["--workers", "12"]).start()
    churn = pdq_case(Image.fromarray(skimage.data.coffee()))
    errors: list[BaseException] = []
    decisions: list[int] = []
    stop = threading.Event()

    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            stubs.submission.SubmitCase(pdq_case(PHOTO), metadata=bearer(keys["submitter"]))

            def checker() -> None:
                try:
                    while not stop.is_set():
                        reply = stubs.match.CheckUpload(
                            pb.CheckUploadRequest(image=UPLOAD),
                            metadata=bearer(keys["operator"]),
                        )
                        decisions.append(reply.decision)
                except BaseException as exc:  # surfaced below
                    errors.append(exc)

            threads = [threading.Thread(target=checker) for _ in range(8)]
            for thread in threads:
                thread.start()
            for _ in range(15):
                case = stubs.submission.SubmitCase(churn, metadata=bearer(keys["submitter"]))
                stubs.submission.WithdrawCase(
                    pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
                )
            stop.set()
            for thread in threads:
                thread.join(30)
    finally:
        stop.set()
        assert server.stop() == 0
    assert not errors, errors[:3]
    assert decisions and set(decisions) == {pb.DECISION_REVIEW}


def test_clear_errors_when_ports_are_taken_and_hint_without_keys(tmp_path) -> None:
    first = ServerProcess(tmp_path).start()
    try:
        assert "no API keys yet" in first.log()
        taken_grpc = run_cli(
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            str(first.port),
            "--metrics-port",
            "0",
            check=False,
        )
        assert taken_grpc.returncode == 1
        assert f"cannot listen for gRPC on 127.0.0.1:{first.port}" in taken_grpc.stderr
        taken_metrics = run_cli(
            "serve",
            "--data-dir",
            str(tmp_path),
            "--port",
            "0",
            "--metrics-port",
            str(first.metrics_port),
            check=False,
        )
        assert taken_metrics.returncode == 1
        assert f"cannot serve metrics on 127.0.0.1:{first.metrics_port}" in taken_metrics.stderr
        assert "Traceback" not in taken_grpc.stderr + taken_metrics.stderr
    finally:
        assert first.stop() == 0


def test_idle_streams_hold_no_thread_and_their_number_is_capped(tmp_path) -> None:
    """Streams are coroutines, not threads: with more idle CheckUploads streams open
    than --workers threads, single calls, image checks and new streams are still
    answered; the stream beyond --max-streams is refused, and a closed stream frees
    its slot."""
    operator = add_key(tmp_path, "operator", "op")
    server = ServerProcess(tmp_path, extra_args=["--workers", "1", "--max-streams", "3"]).start()
    hashes = [pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=bytes(32))]
    check = pb.CheckUploadRequest(hashes=hashes, content_ref="x")
    try:
        with server.channel() as channel:
            match = Stubs(channel).match
            closers, streams = [], []
            for _ in range(2):  # two streams that answer once, then sit idle
                close = threading.Event()

                def requests(close: threading.Event = close) -> Iterator[pb.CheckUploadRequest]:
                    yield check
                    close.wait(60)

                stream = match.CheckUploads(requests(), metadata=bearer(operator))
                assert next(stream).decision == pb.DECISION_ALLOW
                closers.append(close)
                streams.append(stream)

            # More idle streams than worker threads, and still everything is answered.
            reply = match.CheckUpload(check, metadata=bearer(operator), timeout=10)
            assert reply.decision == pb.DECISION_ALLOW
            photo = pb.CheckUploadRequest(image=UPLOAD, content_ref="photo")
            assert match.CheckUpload(photo, metadata=bearer(operator), timeout=30).computed_hashes
            replies = list(match.CheckUploads(iter([check]), metadata=bearer(operator), timeout=10))
            assert [r.decision for r in replies] == [pb.DECISION_ALLOW]

            third_close = threading.Event()

            def third() -> Iterator[pb.CheckUploadRequest]:
                yield check
                third_close.wait(60)

            stream = match.CheckUploads(third(), metadata=bearer(operator))
            assert next(stream).decision == pb.DECISION_ALLOW
            closers.append(third_close)
            streams.append(stream)

            with pytest.raises(grpc.RpcError) as refused:
                list(match.CheckUploads(iter([check]), metadata=bearer(operator), timeout=10))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "already has 3 CheckUploads streams open (--max-streams)" in (
                details(refused.value)
            )
            assert match.CheckUpload(check, metadata=bearer(operator), timeout=10).decision

            closers[0].set()
            assert list(streams[0]) == []  # the server saw the end and closed its side
            replies = list(match.CheckUploads(iter([check]), metadata=bearer(operator), timeout=10))
            assert [r.decision for r in replies] == [pb.DECISION_ALLOW]
            for close, stream in zip(closers[1:], streams[1:], strict=True):
                close.set()
                assert list(stream) == []
        assert rate_limited_counts(server)[("operator", "open_streams")] == 1
    finally:
        assert server.stop() == 0


def test_max_streams_must_be_positive(tmp_path) -> None:
    result = run_cli("serve", "--data-dir", str(tmp_path), "--max-streams", "0", check=False)
    assert result.returncode != 0
    assert "max_streams must be at least 1" in result.stderr


def test_a_client_cancelling_its_stream_is_not_an_internal_error(tmp_path) -> None:
    """A client that hangs up while the server waits for its next request is not logged
    as an internal error (grpc.aio just ends its request stream), and its slot is freed."""
    operator = add_key(tmp_path, "operator", "op")
    server = ServerProcess(tmp_path, extra_args=["--workers", "2", "--max-streams", "1"]).start()
    check = pb.CheckUploadRequest(
        hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=bytes(32))]
    )
    hang_up = threading.Event()

    def requests() -> Iterator[pb.CheckUploadRequest]:
        yield check
        hang_up.wait(60)

    try:
        with server.channel() as channel:
            match = Stubs(channel).match
            stream = match.CheckUploads(requests(), metadata=bearer(operator))
            assert next(stream).decision == pb.DECISION_ALLOW
            stream.cancel()
            hang_up.set()
            deadline = time.monotonic() + 10
            while True:  # the slot comes back once the server has seen the hang-up
                try:
                    list(match.CheckUploads(iter([check]), metadata=bearer(operator)))
                    break
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
    finally:
        assert server.stop() == 0
    assert "internal error" not in server.log()


def requests_counted(server: ServerProcess, method: str, code: str) -> float:
    """hashguard_requests_total for one method and status code, from /metrics."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    found = re.search(rf'hashguard_requests_total\{{code="{code}",method="{method}"\}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_an_unexpected_failure_is_internal_with_a_reference_and_logged_without_the_upload(
    tmp_path,
) -> None:
    """A store that breaks in a way nobody planned for (here its hits table vanished)
    answers INTERNAL with a reference to the server log, which has the traceback but
    never the uploaded bytes; the server goes on answering."""
    keys = {r: add_key(tmp_path, r, r) for r in ("operator", "submitter")}
    server = ServerProcess(tmp_path).start()
    try:
        with server.channel() as channel:
            stubs = Stubs(channel)
            stubs.submission.SubmitCase(pdq_case(PHOTO), metadata=bearer(keys["submitter"]))
            with sqlite3.connect(tmp_path / DB_FILENAME) as db:
                db.execute("ALTER TABLE hits RENAME TO hits_gone")
            upload = pb.CheckUploadRequest(image=UPLOAD, content_ref="secret-ref")
            with pytest.raises(grpc.RpcError) as failed:
                stubs.match.CheckUpload(upload, metadata=bearer(keys["operator"]), timeout=30)
            assert failed.value.code() == grpc.StatusCode.INTERNAL
            found = re.fullmatch(
                r"internal error \(reference (\w{12})\); see the server log",
                details(failed.value),
            )
            assert found, details(failed.value)
            assert "hits" not in details(failed.value)
            stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types miss Check
            health = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            assert requests_counted(server, "CheckUpload", "INTERNAL") == 1
    finally:
        assert server.stop() == 0
    log = server.log()
    assert f"internal error ref={found.group(1)}" in log and "Traceback" in log
    assert "no such table" in log  # the cause, for whoever reads the log
    assert UPLOAD[:64].hex() not in log and repr(UPLOAD[:32])[2:-1] not in log
