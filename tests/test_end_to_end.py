"""The whole story through the real server process, driven by the client generated from
proto/: a victim submits, operators check, a moderator confirms, re-uploads are blocked,
the victim withdraws."""

from __future__ import annotations

import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import skimage.data
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.hashes import hash_image_bytes
from tests.support import ServerProcess, Stubs, add_key, bearer, details, encode

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

PHOTO = Image.fromarray(skimage.data.astronaut())
OTHER_PHOTO = Image.fromarray(skimage.data.coffee())
UNRELATED_PHOTO = Image.fromarray(skimage.data.rocket())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("data")
    keys = {
        role: add_key(data_dir, role, f"{role}-1")
        for role in ("operator", "moderator", "submitter", "admin")
    }
    proc = ServerProcess(data_dir, extra_args=["--max-message-bytes", str(3 * 1024 * 1024)])
    proc.start()
    proc.keys = keys  # type: ignore[attr-defined]
    yield proc
    assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module")
def stubs(server: ServerProcess) -> Iterator[Stubs]:
    with server.channel() as channel:
        yield Stubs(channel)


def key(server: ServerProcess, role: str) -> tuple[tuple[str, str], ...]:
    return bearer(server.keys[role])  # type: ignore[attr-defined]


def victim_hashes(photo: Image.Image) -> list[pb.Hash]:
    """What `hashguard hash` computes on the victim's own machine: PDQ and pHash."""
    hashed = hash_image_bytes(encode(photo, "PNG"))
    return [
        pb.Hash(
            algorithm=pb.HASH_ALGORITHM_PDQ, value=hashed.pdq.value, quality=hashed.pdq.quality or 0
        ),
        pb.Hash(algorithm=pb.HASH_ALGORITHM_PHASH, value=hashed.phash.value),
    ]


def check(stubs: Stubs, server: ServerProcess, image: bytes, ref: str) -> pb.CheckUploadResponse:
    return stubs.match.CheckUpload(
        pb.CheckUploadRequest(image=image, content_ref=ref), metadata=key(server, "operator")
    )


def test_submit_review_confirm_block_withdraw(server: ServerProcess, stubs: Stubs) -> None:
    case = stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=victim_hashes(PHOTO)), metadata=key(server, "submitter")
    )
    assert case.case_id and len(case.case_token) >= 32 and case.entry_count == 2

    recompressed = encode(PHOTO, "JPEG", quality=40)
    first = check(stubs, server, recompressed, "post-1")
    assert first.decision == pb.DECISION_REVIEW
    assert first.hit_id
    assert {m.algorithm for m in first.matches} >= {pb.HASH_ALGORITHM_PDQ}
    assert all(m.entry_state == pb.ENTRY_STATE_PENDING for m in first.matches)
    computed = {h.algorithm: h for h in first.computed_hashes}
    assert set(computed) == {
        pb.HASH_ALGORITHM_PDQ,
        pb.HASH_ALGORITHM_PHASH,
        pb.HASH_ALGORITHM_SHA256,
        pb.HASH_ALGORITHM_MD5,
    }
    assert len(computed[pb.HASH_ALGORITHM_PDQ].value) == 32
    assert computed[pb.HASH_ALGORITHM_PDQ].quality >= 50

    mirrored = check(
        stubs, server, encode(PHOTO.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), "post-2"
    )
    assert mirrored.decision == pb.DECISION_REVIEW
    assert mirrored.hit_id and mirrored.hit_id != first.hit_id

    # The same upload again does not queue a second hit for moderators.
    again = check(stubs, server, recompressed, "post-1-again")
    assert again.decision == pb.DECISION_REVIEW and again.hit_id == first.hit_id

    pending = stubs.review.ListHits(
        pb.ListHitsRequest(state=pb.HIT_STATE_PENDING), metadata=key(server, "moderator")
    )
    listed = {h.hit_id: h for h in pending.hits}
    assert {first.hit_id, mirrored.hit_id} <= set(listed)
    assert listed[first.hit_id].content_ref == "post-1"
    assert listed[first.hit_id].operator == "operator-1"

    resolved = stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=first.hit_id, verdict=pb.VERDICT_CONFIRMED, note="same"),
        metadata=key(server, "moderator"),
    )
    assert resolved.hit.state == pb.HIT_STATE_CONFIRMED
    assert resolved.hit.resolved_by == "moderator-1" and resolved.hit.note == "same"
    assert resolved.vetted_entry_ids

    blocked = check(stubs, server, encode(PHOTO, "JPEG", quality=60), "post-3")
    assert blocked.decision == pb.DECISION_BLOCK
    assert not blocked.hit_id
    assert any(m.entry_state == pb.ENTRY_STATE_VETTED for m in blocked.matches)
    rotated = encode(PHOTO.transpose(Image.Transpose.ROTATE_90))
    assert check(stubs, server, rotated, "post-4").decision == pb.DECISION_BLOCK

    unrelated = check(stubs, server, encode(UNRELATED_PHOTO), "post-5")
    assert unrelated.decision == pb.DECISION_ALLOW and not unrelated.matches

    status = stubs.submission.GetCase(
        pb.GetCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    assert status.state == pb.CASE_STATE_ACTIVE
    assert status.entries_vetted >= 1 and status.hits_confirmed == 1

    withdrawn = stubs.submission.WithdrawCase(
        pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    assert withdrawn.state == pb.CASE_STATE_WITHDRAWN and withdrawn.entries_withdrawn == 2
    after = check(stubs, server, recompressed, "post-6")
    assert after.decision == pb.DECISION_ALLOW and not after.matches
    status = stubs.submission.GetCase(
        pb.GetCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    assert status.state == pb.CASE_STATE_WITHDRAWN and status.entries_withdrawn == 2

    # Withdrawal erased the hash values; tombstones remain.
    with sqlite3.connect(server.data_dir / "hashguard.sqlite3") as db:
        rows = db.execute(
            "SELECT state, value FROM entries WHERE case_id = ?", (case.case_id,)
        ).fetchall()
    assert rows and all(state == "withdrawn" and value is None for state, value in rows)
    # The mirrored hit matched only withdrawn entries: it leaves the review queue.
    still_pending = stubs.review.ListHits(
        pb.ListHitsRequest(state=pb.HIT_STATE_PENDING), metadata=key(server, "moderator")
    )
    assert mirrored.hit_id not in {h.hit_id for h in still_pending.hits}


def test_rejected_upload_does_not_requeue(server: ServerProcess, stubs: Stubs) -> None:
    stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=victim_hashes(OTHER_PHOTO)), metadata=key(server, "submitter")
    )
    upload = encode(OTHER_PHOTO, "JPEG", quality=80)
    first = check(stubs, server, upload, "innocent-1")
    assert first.decision == pb.DECISION_REVIEW
    stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=first.hit_id, verdict=pb.VERDICT_REJECTED, note="not it"),
        metadata=key(server, "moderator"),
    )
    again = check(stubs, server, upload, "innocent-2")
    assert again.decision == pb.DECISION_ALLOW
    assert not again.hit_id and again.matches and again.notes
    rejected = stubs.review.ListHits(
        pb.ListHitsRequest(state=pb.HIT_STATE_REJECTED), metadata=key(server, "moderator")
    )
    assert [h.hit_id for h in rejected.hits] == [first.hit_id]
    # Resolving twice is refused, not silently re-done.
    with pytest.raises(grpc.RpcError) as err:
        stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=first.hit_id, verdict=pb.VERDICT_CONFIRMED),
            metadata=key(server, "moderator"),
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_precomputed_hashes_and_low_quality_pdq(server: ServerProcess, stubs: Stubs) -> None:
    photo = Image.fromarray(skimage.data.chelsea())
    hashes = victim_hashes(photo)
    stubs.submission.SubmitCase(pb.SubmitCaseRequest(hashes=hashes), metadata=key(server, "admin"))
    reply = stubs.match.CheckUpload(
        pb.CheckUploadRequest(hashes=hashes[:1], content_ref="h-1"),
        metadata=key(server, "operator"),
    )
    assert reply.decision == pb.DECISION_REVIEW and not reply.computed_hashes
    low = pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=hashes[0].value, quality=20)
    ignored = stubs.match.CheckUpload(
        pb.CheckUploadRequest(hashes=[low]), metadata=key(server, "operator")
    )
    assert ignored.decision == pb.DECISION_ALLOW
    assert any("quality 20" in note for note in ignored.notes)


def test_flat_image_pdq_is_not_matched(server: ServerProcess, stubs: Stubs) -> None:
    """A near-uniform upload has PDQ quality < 50: its PDQ is reported, not matched."""
    flat = encode(Image.new("RGB", (300, 200), (120, 120, 120)), "PNG")
    reply = check(stubs, server, flat, "flat")
    pdq = next(h for h in reply.computed_hashes if h.algorithm == pb.HASH_ALGORITHM_PDQ)
    assert pdq.quality < 50
    assert any("PDQ was not matched" in note for note in reply.notes)


def test_auth_errors(server: ServerProcess, stubs: Stubs) -> None:
    request = pb.CheckUploadRequest(image=encode(PHOTO))
    cases = [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (bearer("hg_000000000000_nope"), grpc.StatusCode.UNAUTHENTICATED),
        ((("authorization", "Basic abc"),), grpc.StatusCode.UNAUTHENTICATED),
        (key(server, "moderator"), grpc.StatusCode.PERMISSION_DENIED),
        (key(server, "submitter"), grpc.StatusCode.PERMISSION_DENIED),
    ]
    for metadata, code in cases:
        with pytest.raises(grpc.RpcError) as err:
            stubs.match.CheckUpload(request, metadata=metadata)
        assert err.value.code() == code, metadata
        assert details(err.value)
    # A stolen operator key cannot read the review queue or submit cases.
    with pytest.raises(grpc.RpcError) as err:
        stubs.review.ListHits(pb.ListHitsRequest(), metadata=key(server, "operator"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        stubs.submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=victim_hashes(PHOTO)), metadata=key(server, "operator")
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A real key with its secret altered is refused.
    real = server.keys["operator"]  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as err:
        stubs.match.CheckUpload(request, metadata=bearer(real[:-2] + "xx"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Case calls need the right token; a wrong one looks like an unknown case.
    case = stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=victim_hashes(UNRELATED_PHOTO)),
        metadata=key(server, "submitter"),
    )
    for case_id, token in ((case.case_id, "wrong"), ("no-such-case", case.case_token)):
        with pytest.raises(grpc.RpcError) as err:
            stubs.submission.WithdrawCase(pb.WithdrawCaseRequest(case_id=case_id, case_token=token))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    stubs.submission.WithdrawCase(
        pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (pb.CheckUploadRequest(image=b"this is not an image"), "not an image"),
        (pb.CheckUploadRequest(image=encode(PHOTO)[:2000]), "could not be decoded"),
        (pb.CheckUploadRequest(), "exactly one"),
        (
            pb.CheckUploadRequest(
                image=b"x", hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_MD5, value=b"1" * 16)]
            ),
            "exactly one",
        ),
        (
            pb.CheckUploadRequest(
                hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=b"\1" * 31)]
            ),
            "32 bytes",
        ),
        (
            pb.CheckUploadRequest(
                hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_MD5, value=b"\1" * 32)]
            ),
            "16 bytes",
        ),
        (pb.CheckUploadRequest(hashes=[pb.Hash(value=b"\1" * 32)]), "algorithm must be set"),
    ],
)
def test_invalid_check_input(
    server: ServerProcess, stubs: Stubs, request_: pb.CheckUploadRequest, fragment: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stubs.match.CheckUpload(request_, metadata=key(server, "operator"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in details(err.value)
    assert "Traceback" not in details(err.value)


def test_invalid_submissions(server: ServerProcess, stubs: Stubs) -> None:
    bad = [
        pb.SubmitCaseRequest(),
        pb.SubmitCaseRequest(hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PHASH, value=b"\1" * 9)]),
        pb.SubmitCaseRequest(hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=b"")]),
    ]
    for request in bad:
        with pytest.raises(grpc.RpcError) as err:
            stubs.submission.SubmitCase(request, metadata=key(server, "submitter"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
    with pytest.raises(grpc.RpcError) as err:
        stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id="nope", verdict=pb.VERDICT_CONFIRMED),
            metadata=key(server, "moderator"),
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stubs.review.ListHits(
            pb.ListHitsRequest(page_token="garbage"), metadata=key(server, "moderator")
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_image_is_refused(server: ServerProcess, stubs: Stubs) -> None:
    with pytest.raises(grpc.RpcError) as err:
        check(stubs, server, b"\xff" * (4 * 1024 * 1024), "big")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_stream_checks_answer_in_order_and_survive_bad_items(
    server: ServerProcess, stubs: Stubs
) -> None:
    images = [encode(UNRELATED_PHOTO), b"garbage", encode(Image.fromarray(skimage.data.camera()))]
    requests = [
        pb.CheckUploadRequest(image=img, content_ref=f"r{i}") for i, img in enumerate(images)
    ]
    replies = list(stubs.match.CheckUploads(iter(requests), metadata=key(server, "operator")))
    assert [r.content_ref for r in replies] == ["r0", "r1", "r2"]
    assert replies[0].decision == pb.DECISION_ALLOW and not replies[0].HasField("error")
    assert replies[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "not an image" in replies[1].error.message
    assert replies[2].decision == pb.DECISION_ALLOW
    with pytest.raises(grpc.RpcError) as err:
        list(stubs.match.CheckUploads(iter(requests), metadata=key(server, "moderator")))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _reflect(channel: grpc.Channel, version: str, request: Any) -> Any:
    """One reflection request under `version` (v1 or v1alpha: the same messages)."""
    call = channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    (reply,) = list(call(iter([request]), timeout=10))
    return reply


def test_health_reflection_and_metrics(server: ServerProcess, stubs: Stubs) -> None:
    services = {
        "hashguard.v1.MatchService",
        "hashguard.v1.SubmissionService",
        "hashguard.v1.ReviewService",
    }
    with server.channel() as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types miss Check, List
        for service in ("", "hashguard.v1.MatchService", "hashguard.v1.ReviewService"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        request = health_pb2.HealthListRequest()  # type: ignore[attr-defined]  # newer than the stubs
        listed = health.List(request, timeout=10).statuses
        assert set(listed) == {"", *services}
        assert {s.status for s in listed.values()} == {health_pb2.HealthCheckResponse.SERVING}
        for version in ("v1", "v1alpha"):
            reply = _reflect(
                channel, version, reflection_pb2.ServerReflectionRequest(list_services="")
            )
            names = {s.name for s in reply.list_services_response.service}
            assert (
                services
                | {
                    "grpc.health.v1.Health",
                    "grpc.reflection.v1.ServerReflection",
                    "grpc.reflection.v1alpha.ServerReflection",
                }
                == names
            ), version
            # Every listed service can be described (what grpcurl does next).
            for name in names:
                found = _reflect(
                    channel,
                    version,
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol=name),
                )
                assert found.file_descriptor_response.file_descriptor_proto, (version, name)

    check(stubs, server, encode(UNRELATED_PHOTO), "metrics")
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    for needle in (
        'hashguard_requests_total{code="OK",method="CheckUpload"}',
        'hashguard_requests_total{code="UNAUTHENTICATED",method="CheckUpload"}',
        "hashguard_request_duration_seconds_bucket",
        'hashguard_decisions_total{decision="allow"}',
        'hashguard_index_entries{algorithm="pdq"}',
        'hashguard_index_searches_total{algorithm="pdq",plan="multi_index"}',
        'hashguard_index_buffered_rows{algorithm="phash"}',
        "hashguard_pending_hits",
    ):
        assert needle in text, needle
    # Without TLS there is no certificate, so no expiry series for the alert to fire on.
    assert "hashguard_tls_certificate_expiry_timestamp_seconds" not in text


def test_uploads_are_never_stored_or_logged(server: ServerProcess, stubs: Stubs) -> None:
    upload = encode(Image.fromarray(skimage.data.hubble_deep_field()), "PNG")
    check(stubs, server, upload, "privacy")
    chunks = [upload[i : i + 48] for i in range(1000, len(upload) - 48, len(upload) // 8)]
    stored = b"".join(p.read_bytes() for p in Path(server.data_dir).iterdir() if p.is_file())
    logged = server.log().encode()
    for chunk in chunks:
        assert chunk not in stored and chunk not in logged
