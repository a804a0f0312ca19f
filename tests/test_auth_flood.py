"""Unauthenticated calls cost next to nothing, through a real server: a key id the store
said does not exist is refused from memory (one store read, however many calls), and a
peer that keeps failing is refused with RESOURCE_EXHAUSTED before any store read, while a
valid key from the same address still works. Store reads are counted by
`hashguard_key_reads_total` on the metrics endpoint."""

from __future__ import annotations

import re
import secrets
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from tests.support import ServerProcess, Stubs, add_key, bearer

pytestmark = pytest.mark.slow  # starts real servers

CHECK = pb.CheckUploadRequest(
    hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_MD5, value=bytes(16))], content_ref="probe"
)


def key_reads(server: ServerProcess) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics").read()
    found = re.search(rb"^hashguard_key_reads_total (\S+)$", text, re.MULTILINE)
    assert found, "hashguard_key_reads_total is not exported"
    return float(found.group(1))


def code_of(stubs: Stubs, key: str) -> grpc.StatusCode:
    try:
        stubs.match.CheckUpload(CHECK, metadata=bearer(key), timeout=30)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def unknown_key() -> str:
    return f"hg_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


@pytest.fixture
def started(tmp_path) -> Iterator[tuple[ServerProcess, str]]:
    operator = add_key(tmp_path, "operator", "forum")
    server = ServerProcess(
        tmp_path, ("--rate-limits", "", "--auth-failures-per-peer", "2:20")
    ).start()
    try:
        yield server, operator
    finally:
        server.stop()


def test_an_absent_key_id_is_read_from_the_store_once(started) -> None:
    server, _ = started
    absent = unknown_key()
    with server.channel() as channel:
        stubs = Stubs(channel)
        before = key_reads(server)
        codes = [code_of(stubs, absent) for _ in range(15)]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 15
    assert key_reads(server) - before == 1


def test_a_failing_peer_is_refused_before_the_store_and_valid_keys_still_work(
    started,
) -> None:
    """Random key ids (each would be a store read): past the peer's burst of 20
    failures the calls are RESOURCE_EXHAUSTED and read nothing; the operator's key,
    cached, still works from the same address."""
    server, operator = started
    with server.channel() as channel:
        stubs = Stubs(channel)
        assert code_of(stubs, operator) == grpc.StatusCode.OK  # now in the key cache
        before = key_reads(server)
        codes = [code_of(stubs, unknown_key()) for _ in range(60)]
        reads = key_reads(server) - before
        assert code_of(stubs, operator) == grpc.StatusCode.OK
        with pytest.raises(grpc.RpcError) as refused:
            stubs.match.CheckUpload(CHECK, metadata=bearer(unknown_key()), timeout=30)
    assert codes.count(grpc.StatusCode.UNAUTHENTICATED) <= 25  # the burst and its refill
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= 30
    assert reads <= 25
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--auth-failures-per-peer" in str(refused.value.details())
    trailer: Any = refused.value.trailing_metadata() or ()
    retry = dict(trailer).get("retry-after-ms")
    assert retry is not None and int(retry) > 0
