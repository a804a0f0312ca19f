"""Rate limits and quotas: token buckets per key, the hourly case quota (kept across
restarts), the stream cap and the per-request size caps, each with its metric."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from service.access.limits import Limits
from service.config import Rate, parse_rate_limits
from service.domain import Principal, Role
from service.errors import LimitExceeded, QuotaExceeded
from tests.support import ServerProcess, Stubs, add_key, bearer, details, encode, run_cli, trailers

_rng = np.random.default_rng(5)


def pdq(quality: int = 100) -> pb.Hash:
    value = _rng.integers(0, 256, 32, dtype=np.uint8).tobytes()
    return pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=value, quality=quality)


class Clock:
    """A clock the test moves by hand, so no assertion depends on how fast this runs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refuses_with_the_time_to_wait() -> None:
    clock = Clock()
    limits = Limits({Role.OPERATOR: Rate(2, 3)}, max_stream_items=10, clock=clock)
    forum, other = Principal("forum", Role.OPERATOR), Principal("other", Role.OPERATOR)
    for _ in range(3):
        limits.charge(forum)
    with pytest.raises(QuotaExceeded) as refused:
        limits.charge(forum)
    assert refused.value.retry_after == pytest.approx(0.5)
    assert refused.value.trailers() == (("retry-after-ms", "500"),)
    assert "retry in 0.500 s" in str(refused.value)
    limits.charge(other)  # buckets are per key
    clock.now += 0.5  # one token back, not two
    limits.charge(forum)
    with pytest.raises(QuotaExceeded):
        limits.charge(forum)
    clock.now += 100  # refills only up to the burst
    for _ in range(3):
        limits.charge(forum)
    with pytest.raises(QuotaExceeded):
        limits.charge(forum)
    for _ in range(1000):  # roles without a rate are not limited
        limits.charge(Principal("mod", Role.MODERATOR))


def test_a_batch_takes_its_tokens_all_or_none() -> None:
    clock = Clock()
    limits = Limits({Role.OPERATOR: Rate(2, 10)}, max_stream_items=10, clock=clock)
    forum = Principal("forum", Role.OPERATOR)
    with pytest.raises(LimitExceeded, match="at most 10 per call"):
        limits.charge(forum, 11)  # more than a full bucket: no wait would help
    limits.charge(forum, 6)
    with pytest.raises(QuotaExceeded) as refused:
        limits.charge(forum, 6)  # 4 left: none taken
    assert refused.value.retry_after == pytest.approx(1.0)  # 2 tokens at 2 per second
    assert "needs 6 tokens" in str(refused.value)
    limits.charge(forum, 4)
    with pytest.raises(QuotaExceeded):
        limits.charge(forum)


@pytest.mark.slow
def test_a_decode_share_grows_within_the_budget_and_is_handed_back() -> None:
    """A video's share grows as its bytes arrive and its header is read; past the budget
    `try_take` answers at once (the event loop never waits) and `take` is refused after
    the decode wait; leaving the block hands everything back."""
    limits = Limits({}, max_stream_items=10, decode_budget_bytes=1000, decode_wait=0.01)
    operator = Principal("op", Role.OPERATOR)
    with limits.decode_share(operator, "video") as first:
        assert first.try_take(600) and first.held == 600
        with limits.decode_share(operator, "video") as second:
            assert second.try_take(300)
            assert not second.try_take(200) and second.held == 300
            with pytest.raises(QuotaExceeded, match="this video needs 0 MiB"):
                second.take(200)
        first.take(400)  # the second share's 300 came back
        assert first.held == 1000
    with limits.decode_share(operator) as again:
        again.take(5000)  # one call holds at most the whole budget
        assert again.held == 1000


def test_rate_limit_syntax() -> None:
    assert parse_rate_limits("operator=500:1000, submitter=0.5:5") == {
        Role.OPERATOR: Rate(500, 1000),
        Role.SUBMITTER: Rate(0.5, 5),
    }
    assert parse_rate_limits("") == {}
    for bad in ("operator=5", "robot=1:2", "operator=-1:5", "operator=5:0"):
        with pytest.raises(ValueError, match="rate_limits item"):
            parse_rate_limits(bad)
    refused = run_cli("serve", "--rate-limits", "operator=fast", check=False)
    assert refused.returncode != 0 and "ROLE=PER_SECOND:BURST" in refused.stderr


def rate_limited_counts(server: ServerProcess) -> dict[tuple[str, str], float]:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    pattern = r'hashguard_rate_limited_total\{limit="(\w+)",role="(\w+)"\} (\S+)'
    return {(role, limit): float(n) for limit, role, n in re.findall(pattern, text)}


@pytest.fixture
def limited(tmp_path) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """One server with small limits; each test scenario uses keys of its own."""
    names = {"operator": ("fast", "stream", "sizes"), "submitter": ("victims", "helpline")}
    keys = {name: add_key(tmp_path, role, name) for role, group in names.items() for name in group}
    flags = (
        *("--rate-limits", "operator=0.001:3"),  # three calls, then one per 1000 s
        *("--max-cases-per-hour", "2", "--max-hashes-per-case", "2"),
        *("--max-stream-items", "2", "--max-message-bytes", "2048", "--max-image-pixels", "400"),
    )
    server = ServerProcess(tmp_path, flags).start()
    try:
        yield server, keys
    finally:
        server.stop()


@pytest.mark.slow
def test_rate_limit_answers_resource_exhausted_with_a_retry_hint(limited) -> None:
    server, keys = limited
    with server.channel() as channel:
        match = Stubs(channel).match
        for _ in range(3):
            match.CheckUpload(pb.CheckUploadRequest(hashes=[pdq()]), metadata=bearer(keys["fast"]))
        with pytest.raises(grpc.RpcError) as err:
            match.CheckUpload(pb.CheckUploadRequest(hashes=[pdq()]), metadata=bearer(keys["fast"]))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "rate limit" in details(err.value) and "retry in" in details(err.value)
    metadata = trailers(err.value)
    assert 990_000 <= int(metadata["retry-after-ms"]) <= 1_000_000
    assert rate_limited_counts(server)[("operator", "rate")] == 1


@pytest.mark.slow
def test_stream_length_is_capped(limited) -> None:
    server, keys = limited
    requests = [pb.CheckUploadRequest(hashes=[pdq()], content_ref=str(i)) for i in range(5)]
    answered = []
    with server.channel() as channel, pytest.raises(grpc.RpcError) as err:
        for reply in Stubs(channel).match.CheckUploads(
            iter(requests), metadata=bearer(keys["stream"])
        ):
            answered.append(reply.content_ref)
    assert answered == ["0", "1"]
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most 2 uploads" in details(err.value)
    assert rate_limited_counts(server)[("operator", "stream_items")] == 1


@pytest.mark.slow
def test_image_bytes_and_pixels_are_capped_per_request(limited) -> None:
    server, keys = limited
    pixels = np.indices((24, 24)).sum(axis=0).astype(np.uint8)  # 576 pixels > 400
    padded = encode(pixels[:10, :10]) + bytes(3000)  # 100 pixels, but > 2048 bytes
    with server.channel() as channel:
        match = Stubs(channel).match
        for image, says in ((encode(pixels), "the limit is 400"), (padded, "bytes")):
            with pytest.raises(grpc.RpcError) as err:
                match.CheckUpload(
                    pb.CheckUploadRequest(image=image), metadata=bearer(keys["sizes"])
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert says in details(err.value)
    counts = rate_limited_counts(server)
    assert counts[("operator", "image_pixels")] == counts[("operator", "image_bytes")] == 1


@pytest.mark.slow
def test_case_quota_holds_across_a_restart_and_is_per_key(limited) -> None:
    server, keys = limited
    with server.channel() as channel:
        submission = Stubs(channel).submission
        with pytest.raises(grpc.RpcError) as err:
            submission.SubmitCase(
                pb.SubmitCaseRequest(hashes=[pdq(), pdq(), pdq()]), metadata=bearer(keys["victims"])
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "more than the 2 one case may hold" in details(err.value)
        for _ in range(2):
            submission.SubmitCase(
                pb.SubmitCaseRequest(hashes=[pdq()]), metadata=bearer(keys["victims"])
            )
    server.stop()
    server.start()
    with server.channel() as channel:
        submission = Stubs(channel).submission
        with pytest.raises(grpc.RpcError) as err:
            submission.SubmitCase(
                pb.SubmitCaseRequest(hashes=[pdq()]), metadata=bearer(keys["victims"])
            )
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "opened 2 cases in the last hour" in details(err.value)
        assert 3000 < int(trailers(err.value)["retry-after-ms"]) / 1000 <= 3600
        submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=[pdq()]), metadata=bearer(keys["helpline"])
        )
    assert rate_limited_counts(server)[("submitter", "cases_per_hour")] == 1
    out = run_cli("export", "--data-dir", str(server.data_dir)).stdout
    assert len(out.strip().splitlines()) == 3  # the refused submissions stored nothing
