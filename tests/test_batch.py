"""MatchService.CheckUploadBatch through the real server: the same answers as one
CheckUpload per upload, in order; per-upload errors; the batch cap and the rate limit
refuse a batch whole."""

from __future__ import annotations

import io
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.hashes import hash_image_bytes
from tests.support import ServerProcess, Stubs, add_key, bearer, details, encode, run_cli, trailers

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

PENDING_PHOTO = Image.fromarray(skimage.data.astronaut())
VETTED_PHOTO = Image.fromarray(skimage.data.coffee())
UNRELATED_PHOTO = Image.fromarray(skimage.data.rocket())
BATCH_CAP = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict]]:
    data_dir = tmp_path_factory.mktemp("data")
    keys = {role: add_key(data_dir, role, f"{role}-1") for role in ("operator", "moderator")}
    keys["submitter"] = add_key(data_dir, "submitter", "submitter-1")
    keys["limited"] = add_key(data_dir, "operator", "limited-1")
    proc = ServerProcess(data_dir, ["--max-batch-items", str(BATCH_CAP)]).start()
    yield proc, keys
    assert proc.stop() == 0, proc.log()


def victim_hashes(photo: Image.Image) -> list[pb.Hash]:
    hashed = hash_image_bytes(encode(photo, "PNG"))
    return [
        pb.Hash(
            algorithm=pb.HASH_ALGORITHM_PDQ, value=hashed.pdq.value, quality=hashed.pdq.quality
        ),
        pb.Hash(algorithm=pb.HASH_ALGORITHM_PHASH, value=hashed.phash.value),
    ]


def uploaded_hashes(photo: Image.Image) -> list[pb.Hash]:
    """What an operator's own pipeline would send for a recompressed re-upload."""
    return victim_hashes(Image.open(io.BytesIO(encode(photo, "JPEG", quality=50))))


def decisions_metric(server: ServerProcess) -> dict[str, float]:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    pattern = r'hashguard_decisions_total\{decision="(\w+)"\} (\S+)'
    return {decision: float(n) for decision, n in re.findall(pattern, text)}


def test_batch_answers_like_single_calls_in_order(server) -> None:
    proc, keys = server
    with proc.channel() as channel:
        stubs = Stubs(channel)
        operator, moderator = bearer(keys["operator"]), bearer(keys["moderator"])
        for photo in (PENDING_PHOTO, VETTED_PHOTO):
            stubs.submission.SubmitCase(
                pb.SubmitCaseRequest(hashes=victim_hashes(photo)),
                metadata=bearer(keys["submitter"]),
            )
        # Vet the second photo's entries: a moderator confirms a hit on it.
        first = stubs.match.CheckUpload(
            pb.CheckUploadRequest(hashes=uploaded_hashes(VETTED_PHOTO), content_ref="vet-me"),
            metadata=operator,
        )
        assert first.decision == pb.DECISION_REVIEW
        stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=first.hit_id, verdict=pb.VERDICT_CONFIRMED),
            metadata=moderator,
        )
        uploads = [
            pb.CheckUploadRequest(hashes=uploaded_hashes(UNRELATED_PHOTO), content_ref="allow"),
            pb.CheckUploadRequest(hashes=uploaded_hashes(PENDING_PHOTO), content_ref="review"),
            pb.CheckUploadRequest(
                hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=b"\1" * 31)],
                content_ref="short-hash",
            ),
            pb.CheckUploadRequest(hashes=uploaded_hashes(VETTED_PHOTO), content_ref="block"),
            pb.CheckUploadRequest(image=encode(PENDING_PHOTO, "JPEG"), content_ref="image"),
            pb.CheckUploadRequest(content_ref="empty"),
            pb.CheckUploadRequest(image=b"not an image at all", content_ref="garbage"),
        ]
        before = decisions_metric(proc)
        batch = stubs.match.CheckUploadBatch(
            pb.CheckUploadBatchRequest(uploads=uploads), metadata=operator
        )
        after = decisions_metric(proc)
        results = list(batch.results)
        assert [r.content_ref for r in results] == [u.content_ref for u in uploads]
        expected = [
            pb.DECISION_ALLOW, pb.DECISION_REVIEW, None, pb.DECISION_BLOCK,
            pb.DECISION_REVIEW, None, None,
        ]  # fmt: skip
        assert [None if r.HasField("error") else r.decision for r in results] == expected
        invalid = {r.content_ref: r.error for r in results if r.HasField("error")}
        assert {e.code for e in invalid.values()} == {grpc.StatusCode.INVALID_ARGUMENT.value[0]}
        assert "32 bytes" in invalid["short-hash"].message
        assert "exactly one" in invalid["empty"].message
        assert "not an image" in invalid["garbage"].message
        # Decisions are counted per upload, as for single checks.
        counted = {d: after.get(d, 0) - before.get(d, 0) for d in after}
        assert counted == {"allow": 1, "review": 2, "block": 1}
        # The image item was decoded and hashed by the server.
        assert {h.algorithm for h in results[4].computed_hashes} >= {pb.HASH_ALGORITHM_PDQ}

        # REVIEW items queued their hits, visible to moderators with the batch's refs.
        pending = stubs.review.ListHits(
            pb.ListHitsRequest(state=pb.HIT_STATE_PENDING), metadata=moderator
        )
        hits = {h.hit_id: h for h in pending.hits}
        assert results[1].hit_id in hits and hits[results[1].hit_id].content_ref == "review"
        assert results[4].hit_id == results[1].hit_id  # same entries: one hit, not two

        # One CheckUpload per upload answers the same, match for match.
        for upload, result in zip(uploads, results, strict=True):
            if result.HasField("error"):
                with pytest.raises(grpc.RpcError) as err:
                    stubs.match.CheckUpload(upload, metadata=operator)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                continue
            single = stubs.match.CheckUpload(upload, metadata=operator)
            assert single.decision == result.decision
            assert single.hit_id == result.hit_id
            assert sorted((m.entry_id, m.algorithm, m.distance) for m in single.matches) == sorted(
                (m.entry_id, m.algorithm, m.distance) for m in result.matches
            )


def test_batch_cap_refuses_the_whole_batch(server) -> None:
    proc, keys = server
    uploads = [
        pb.CheckUploadRequest(hashes=uploaded_hashes(PENDING_PHOTO), content_ref=f"c{i}")
        for i in range(BATCH_CAP + 1)
    ]
    with proc.channel() as channel:
        match = Stubs(channel).match
        with pytest.raises(grpc.RpcError) as err:
            match.CheckUploadBatch(
                pb.CheckUploadBatchRequest(uploads=uploads), metadata=bearer(keys["operator"])
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert f"at most {BATCH_CAP} uploads" in details(err.value)
        assert "max_batch_items" in details(err.value)
        ok = match.CheckUploadBatch(
            pb.CheckUploadBatchRequest(uploads=uploads[:BATCH_CAP]),
            metadata=bearer(keys["operator"]),
        )
        assert len(ok.results) == BATCH_CAP
        empty = match.CheckUploadBatch(
            pb.CheckUploadBatchRequest(), metadata=bearer(keys["operator"])
        )
        assert list(empty.results) == []
    # The refused batch queued nothing.
    with proc.channel() as channel:
        hits = Stubs(channel).review.ListHits(
            pb.ListHitsRequest(page_size=100), metadata=bearer(keys["moderator"])
        )
    assert not {f"c{BATCH_CAP}"} & {h.content_ref for h in hits.hits}


def test_batch_needs_an_operator_key(server) -> None:
    proc, keys = server
    request = pb.CheckUploadBatchRequest(
        uploads=[pb.CheckUploadRequest(hashes=uploaded_hashes(UNRELATED_PHOTO))]
    )
    cases = [
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (bearer("hg_000000000000_nope"), grpc.StatusCode.UNAUTHENTICATED),
        (bearer(keys["moderator"]), grpc.StatusCode.PERMISSION_DENIED),
        (bearer(keys["submitter"]), grpc.StatusCode.PERMISSION_DENIED),
    ]
    with proc.channel() as channel:
        for metadata, code in cases:
            with pytest.raises(grpc.RpcError) as err:
                Stubs(channel).match.CheckUploadBatch(request, metadata=metadata)
            assert err.value.code() == code, metadata
            assert details(err.value)


def test_malformed_batch_bytes_are_invalid_argument(server) -> None:
    proc, keys = server
    with proc.channel() as channel:
        call = channel.unary_unary("/hashguard.v1.MatchService/CheckUploadBatch")
        with pytest.raises(grpc.RpcError) as err:
            call(b"\x0a\xff\xff\xff\xff", metadata=bearer(keys["operator"]), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Traceback" not in (details(err.value) or "")


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[ServerProcess, str]]:
    operator = add_key(tmp_path, "operator", "batcher")
    flags = ("--rate-limits", "operator=0.001:10")  # ten uploads, then one per 1000 s
    proc = ServerProcess(tmp_path, flags).start()
    try:
        yield proc, operator
    finally:
        proc.stop()


def test_rate_limit_takes_one_token_per_upload_all_or_none(limited) -> None:
    proc, operator = limited

    def batch(size: int) -> pb.CheckUploadBatchResponse:
        uploads = [
            pb.CheckUploadRequest(hashes=uploaded_hashes(UNRELATED_PHOTO)) for _ in range(size)
        ]
        return match.CheckUploadBatch(
            pb.CheckUploadBatchRequest(uploads=uploads), metadata=bearer(operator)
        )

    with proc.channel() as channel:
        match = Stubs(channel).match
        with pytest.raises(grpc.RpcError) as err:
            batch(11)  # more than the burst: can never pass
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "burst of 10" in details(err.value) and "at most 10" in details(err.value)
        assert len(batch(6).results) == 6
        with pytest.raises(grpc.RpcError) as err:
            batch(6)  # 4 tokens left: refused whole, none taken
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "needs 6 tokens" in details(err.value)
        assert int(trailers(err.value)["retry-after-ms"]) > 1_000_000
        assert len(batch(4).results) == 4
        with pytest.raises(grpc.RpcError) as err:
            match.CheckUpload(
                pb.CheckUploadRequest(hashes=uploaded_hashes(UNRELATED_PHOTO)),
                metadata=bearer(operator),
            )
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_store_outage_fails_only_the_uploads_that_must_be_recorded(tmp_path: Path) -> None:
    """PostgreSQL goes away (the server's database user locked out, its connections
    ended): in a batch, an ALLOW or BLOCK is still answered from memory, while a REVIEW,
    which must queue a hit, gets its own UNAVAILABLE error instead of failing the call."""
    from tests.postgres import admin_connection, fresh_schema, terminate_connections

    with fresh_schema() as (url, schema):
        role = f"{schema}_user"
        admin = admin_connection()
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"GRANT ALL ON SCHEMA {schema} TO {role}")
        store = url.replace("postgres@", f"{role}@")
        keys = {
            r: run_cli("keys", "add", "--store", store, "--role", r, "--name", r)
            .stdout.strip()
            .splitlines()[-1]
            for r in ("operator", "submitter")
        }
        proc = ServerProcess(tmp_path, ["--store", store]).start()
        try:
            with proc.channel() as channel:
                stubs = Stubs(channel)
                stubs.submission.SubmitCase(
                    pb.SubmitCaseRequest(hashes=victim_hashes(PENDING_PHOTO)),
                    metadata=bearer(keys["submitter"]),
                )
                operator = bearer(keys["operator"])
                uploads = [
                    pb.CheckUploadRequest(hashes=uploaded_hashes(PENDING_PHOTO), content_ref="r"),
                    pb.CheckUploadRequest(hashes=uploaded_hashes(UNRELATED_PHOTO), content_ref="a"),
                ]
                warm = pb.CheckUploadBatchRequest(uploads=uploads[1:])
                stubs.match.CheckUploadBatch(warm, metadata=operator)  # the key is read
                admin.execute(f"ALTER ROLE {role} CONNECTION LIMIT 0")
                terminate_connections(schema)
                batch = stubs.match.CheckUploadBatch(
                    pb.CheckUploadBatchRequest(uploads=uploads), metadata=operator, timeout=60
                )
            review, allow = batch.results
            assert review.error.code == grpc.StatusCode.UNAVAILABLE.value[0], review
            assert "retry" in review.error.message
            assert not allow.HasField("error") and allow.decision == pb.DECISION_ALLOW
        finally:
            proc.stop()
            admin.execute(f"DROP OWNED BY {role} CASCADE")
            admin.execute(f"DROP ROLE {role}")
            admin.close()
