"""Restarts and shutdown: acknowledged data survives, SIGTERM drains in-flight calls."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.hashing import hash_image_bytes
from tests.support import ServerProcess, Stubs, add_key, bearer, encode

PHOTO = Image.fromarray(skimage.data.astronaut())


def test_vetted_state_and_hits_survive_restart(tmp_path) -> None:
    keys = {r: add_key(tmp_path, r, r) for r in ("operator", "moderator", "submitter")}
    hashed = hash_image_bytes(encode(PHOTO, "PNG"))
    upload = encode(PHOTO, "JPEG", quality=50)

    first = ServerProcess(tmp_path).start()
    with first.channel() as channel:
        stubs = Stubs(channel)
        case = stubs.submission.SubmitCase(
            pb.SubmitCaseRequest(
                hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=hashed.pdq.value)]
            ),
            metadata=bearer(keys["submitter"]),
        )
        hit = stubs.match.CheckUpload(
            pb.CheckUploadRequest(image=upload), metadata=bearer(keys["operator"])
        ).hit_id
        stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=hit, verdict=pb.VERDICT_CONFIRMED),
            metadata=bearer(keys["moderator"]),
        )
    assert first.stop() == 0

    second = ServerProcess(tmp_path).start()
    try:
        with second.channel() as channel:
            stubs = Stubs(channel)
            reply = stubs.match.CheckUpload(
                pb.CheckUploadRequest(image=upload), metadata=bearer(keys["operator"])
            )
            assert reply.decision == pb.DECISION_BLOCK
            hits = stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(keys["moderator"]))
            assert [h.state for h in hits.hits] == [pb.HIT_STATE_CONFIRMED]
            status = stubs.submission.GetCase(
                pb.GetCaseRequest(case_id=case.case_id, case_token=case.case_token)
            )
            assert status.entries_vetted == 1
    finally:
        assert second.stop() == 0
    assert "loaded the list" in second.log() and "pdq 1" in second.log()


def test_sigterm_lets_in_flight_stream_finish(tmp_path) -> None:
    operator = add_key(tmp_path, "operator", "op")
    server = ServerProcess(tmp_path).start()
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
