"""Hostile input: property-based tests over image decoding and request validation, and a
short run of the fuzz harness (loadtests/fuzz_inputs.py) against a real server. Every
input must end in a precise refusal or a normal answer, the server keeps serving and
nothing stored changes. The long harness run is recorded in docs/SECURITY.md."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import grpc
import numpy as np
import pytest
from hashguard.v1 import hashguard_pb2 as pb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadtests.fuzz_inputs import EXPECTED, run, table
from loadtests.hostile_inputs import IMAGE_MUTATIONS, png_bomb, seeds, web_probes
from service.access.limits import Limits
from service.api.convert import hashes_from_pb
from service.domain import Principal, Role
from service.errors import InvalidInput, LimitExceeded, QuotaExceeded
from service.media.decode import DEFAULT_DRAFT_SIDE
from service.media.decode_cost import HASH_BYTES_PER_PIXEL, decode_cost
from service.media.hashes import hash_image_bytes
from tests.postgres import fresh_schema
from tests.support import ServerProcess, Stubs, WebTier, add_key, bearer
from tests.test_hashing import png_header_only

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL_CAP = 250_000  # pixels: keeps every decode in these tests small


def hashes_or_refuses(data: bytes) -> None:
    """The property: hashes come out, or InvalidInput says why; nothing else escapes."""
    try:
        cost = decode_cost(data, SMALL_CAP, DEFAULT_DRAFT_SIDE)
        hashed = hash_image_bytes(data, SMALL_CAP)
    except InvalidInput as exc:
        assert str(exc)
        return
    assert HASH_BYTES_PER_PIXEL <= cost <= SMALL_CAP * 64
    assert len(hashed.pdq.value) == 32 and len(hashed.pdq_dihedral) == 8


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@PROPERTY
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_hash_or_are_refused(data: bytes) -> None:
    hashes_or_refuses(data)


@pytest.mark.slow  # the heaviest of the quick loop: seconds of CPU
@PROPERTY
@given(
    fmt=st.sampled_from(sorted(seeds())),
    mutation=st.sampled_from(sorted(IMAGE_MUTATIONS)),
    seed=st.integers(0, 2**32 - 1),
)
def test_mutated_images_of_every_format_hash_or_are_refused(
    fmt: str, mutation: str, seed: int
) -> None:
    hashes_or_refuses(IMAGE_MUTATIONS[mutation](seeds()[fmt], np.random.default_rng(seed)))


@PROPERTY
@given(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_declared_size_is_refused_before_decoding(width: int, height: int) -> None:
    """A header-only PNG declaring any size: refused for its size when over the cap (the
    message names the limit), else refused for its missing pixel data or decoded."""
    data = png_header_only(width, height)
    if width * height > SMALL_CAP:
        with pytest.raises(InvalidInput, match=r"limit|decompression bomb"):
            decode_cost(data, SMALL_CAP, DEFAULT_DRAFT_SIDE)
    hashes_or_refuses(data)


def test_bomb_over_the_cap_is_a_limit_with_its_name() -> None:
    with pytest.raises(LimitExceeded) as refused:
        decode_cost(png_bomb(600, 600), SMALL_CAP, DEFAULT_DRAFT_SIDE)
    assert refused.value.limit == "image_pixels"
    assert decode_cost(png_bomb(500, 500), SMALL_CAP, DEFAULT_DRAFT_SIDE) >= 250_000 * 30


@PROPERTY
@given(
    st.lists(
        st.builds(
            pb.Hash,
            algorithm=st.integers(-(2**31), 2**31 - 1),
            value=st.binary(max_size=64),
            quality=st.integers(-(2**31), 2**31 - 1),
        ),
        max_size=5,
    )
)
def test_hash_messages_convert_or_are_refused(hashes: list[pb.Hash]) -> None:
    try:
        values = hashes_from_pb(hashes)
    except InvalidInput as exc:
        assert "hashes[" in str(exc)
        return
    assert all(0 <= (v.quality or 0) <= 100 for v in values)


def test_decode_budget_makes_large_decodes_wait_their_turn() -> None:
    limits = Limits({}, max_stream_items=1, decode_budget_bytes=100, decode_wait=0.2)
    forum = Principal("forum", Role.OPERATOR)
    entered, release, order = threading.Event(), threading.Event(), []

    def first() -> None:
        with limits.decoding(forum, 80):
            entered.set()
            release.wait(30)
            order.append("first done")

    holder = threading.Thread(target=first)
    holder.start()
    entered.wait(30)
    with pytest.raises(QuotaExceeded, match="busy decoding") as refused, limits.decoding(forum, 50):
        pass
    assert refused.value.limit == "decode_budget" and refused.value.retry_after == 1.0
    with limits.decoding(forum, 20):  # fits beside the first
        order.append("small")
    release.set()
    holder.join(30)
    with limits.decoding(forum, 10**9):  # more than the budget: takes all of it, when free
        order.append("huge")
    assert order == ["small", "first done", "huge"]


# --- against a real server -------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    data_dir = tmp_path_factory.mktemp("hostile")
    operator = add_key(data_dir, "operator", "op")
    process = ServerProcess(data_dir, ("--rate-limits", "")).start()
    try:
        yield process, operator
    finally:
        process.stop()


@pytest.mark.slow
@settings(PROPERTY, max_examples=60)
@given(
    image=st.binary(max_size=512),
    hashes=st.lists(
        st.builds(
            pb.Hash,
            algorithm=st.integers(-5, 8),
            value=st.binary(max_size=40),
            quality=st.integers(-200, 200),
        ),
        max_size=3,
    ),
    content_ref=st.text(max_size=1100),
)
def test_any_check_request_gets_a_precise_status(
    server: tuple[ServerProcess, str], image: bytes, hashes: list[pb.Hash], content_ref: str
) -> None:
    process, operator = server
    request = pb.CheckUploadRequest(image=image, hashes=hashes, content_ref=content_ref)
    with process.channel() as channel:
        try:
            Stubs(channel).match.CheckUpload(request, metadata=bearer(operator), timeout=30)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()


@pytest.mark.slow
def test_fuzz_harness_short_run() -> None:
    """Every family of the harness, a few hundred random inputs, one moderate bomb."""
    report = run(inputs=150, seed=3, bomb_side=1000)
    print(table(report))
    assert report.ok, table(report)
    assert report.inputs >= 150
    for family in ("truncated", "bit flips", "huge dimensions"):
        for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP"):
            assert f"{family} {fmt}" in report.families, f"{family} {fmt}"
    malformed = report.families["malformed protobuf"].codes
    assert malformed == {"INVALID_ARGUMENT": sum(malformed.values())}
    assert report.families["bomb 20000x20000 PNG"].codes == {"INVALID_ARGUMENT": 1}
    assert report.families["3000-frame GIF"].codes == {"OK": 1}
    # A malformed item ends its stream as INVALID_ARGUMENT; a merely invalid one is
    # answered in the stream with `error` set.
    assert report.families["stream"].codes == {"INVALID_ARGUMENT": 1, "OK": 1}
    codes = {code for f in report.families.values() for code in f.codes}
    assert codes <= {c.name for c in EXPECTED}


@pytest.mark.slow  # a real server per store, every field of every request
@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_every_field_of_every_request_gets_a_precise_status(store: str) -> None:
    """Each string and number field of every RPC set to hostile values (NUL bytes, page
    tokens past 2^63, huge numbers...), on both stores: never INTERNAL, nothing stored
    changes, and a REVIEW with a NUL in its content_ref is refused before the store."""
    with fresh_schema() if store == "postgresql" else nullcontext(("sqlite", "")) as (url, _):
        report = run(0, store_url=url, families_run=("fields",))
    print(table(report))
    assert report.ok, table(report)
    assert report.inputs >= 190
    for family in (
        "field CheckUpload.content_ref",
        "field CheckUploadBatch.uploads.content_ref",
        "field GetCase.case_id",
        "field ResolveHit.hit_id",
        "field ResolveHit.note",
        "field ListHits.page_token",
        "field ListDisputedEntries.page_size",
        "field SubmitCase.hashes.quality",
    ):
        assert family in report.families, family
    # Two with a NUL, and two over 1024 characters (100,000 x, a 6,700-character page
    # token) are refused; the other eight are checked.
    assert report.families["field CheckUpload.content_ref"].codes["INVALID_ARGUMENT"] == 4
    assert report.families["field ListHits.page_token"].codes["INVALID_ARGUMENT"] >= 9


@pytest.mark.slow  # a real server and web tier, every field of every form
def test_every_web_form_answers_without_a_server_error(tmp_path: Path) -> None:
    """Every field of every form and of the victim page's JSON, hostile, through a real
    `hashguard web` in front of a real server: a page that says what was wrong (4xx) or a
    normal answer, never HTTP 500; both stay up."""
    keys = {role: add_key(tmp_path, role, f"{role}-1") for role in ("submitter", "operator")}
    keys["moderator"] = add_key(tmp_path, "moderator", "moderator-1")
    process = ServerProcess(tmp_path).start()
    web = WebTier(process.target, env={"HASHGUARD_WEB_SUBMITTER_KEY": keys["submitter"]}).start()
    try:
        with process.channel() as channel:
            stubs = Stubs(channel)
            listed = pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=bytes(range(32)))
            stubs.submission.SubmitCase(
                pb.SubmitCaseRequest(hashes=[listed]), metadata=bearer(keys["submitter"])
            )
            hit_id = stubs.match.CheckUpload(
                pb.CheckUploadRequest(hashes=[listed], content_ref="c"),
                metadata=bearer(keys["operator"]),
            ).hit_id
        visitor, moderator = web.browser(), web.browser()
        public = visitor.csrf("/")
        moderator.sign_in(keys["moderator"])
        session = moderator.csrf("/console")
        failures = []
        for probe in web_probes(public, hit_id):
            browser = moderator if probe.as_moderator else visitor
            body = (
                probe.body.replace(public.encode(), session.encode())
                if probe.as_moderator
                else probe.body
            )
            status, text, _ = browser.request(
                probe.path,
                body=body,
                headers={"Content-Type": probe.content_type, "X-CSRF-Token": public},
            )
            if status >= 500:
                failures.append(f"{probe.family} {probe.body[:80]!r}: {status} {text[:200]}")
        assert not failures, "\n".join(failures)
        assert visitor.request("/healthz")[0] == 200
    finally:
        web.stop()
        assert process.stop() == 0
