"""Several `hashguard serve` processes on one port (--reuse-port 1): the way to use more
than one core, since one Python process is held to about one by the GIL
(docs/BENCHMARKS.md). Each process keeps its own copy of the list and follows the
store's change log, so a case submitted through one is matched by all of them."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc
from PIL import Image

from service.media.hashes import hash_image_bytes
from tests.support import ServerProcess, add_key, bearer, encode

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _checks_served(server: ServerProcess) -> float:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("hashguard_requests_total{") and "CheckUpload" in line
    )


def test_two_processes_share_a_port_and_both_match_a_new_case(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    operator = add_key(data_dir, "operator", "forum")
    submitter = add_key(data_dir, "submitter", "helpline")
    port = _free_port()
    flags = ["--port", str(port), "--reuse-port", "1", "--snapshot-interval", "0"]
    servers = [ServerProcess(data_dir, flags).start() for _ in range(2)]
    try:
        assert {s.port for s in servers} == {port}
        photo = Image.fromarray(skimage.data.coffee())
        hashed = hash_image_bytes(encode(photo))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            case = pb_grpc.SubmissionServiceStub(channel).SubmitCase(
                pb.SubmitCaseRequest(
                    hashes=[
                        pb.Hash(
                            algorithm=pb.HASH_ALGORITHM_PDQ,
                            value=hashed.pdq.value,
                            quality=hashed.pdq.quality or 0,
                        )
                    ]
                ),
                metadata=bearer(submitter),
            )
        assert case.entry_count == 1
        upload = encode(photo, "JPEG", quality=70)
        deadline = time.monotonic() + 30
        decisions: list[int] = []
        while time.monotonic() < deadline:
            decisions = []
            for _ in range(12):  # a new connection each time: the kernel picks a process
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    answer = pb_grpc.MatchServiceStub(channel).CheckUpload(
                        pb.CheckUploadRequest(image=upload), metadata=bearer(operator)
                    )
                decisions.append(answer.decision)
            if set(decisions) == {pb.DECISION_REVIEW} and all(_checks_served(s) for s in servers):
                break
            time.sleep(0.5)
        assert set(decisions) == {pb.DECISION_REVIEW}, decisions
        assert all(_checks_served(s) > 0 for s in servers), "one process took every call"
    finally:
        for server in servers:
            assert server.stop() == 0, server.log()


def test_without_the_flag_a_second_server_on_the_port_is_refused(tmp_path: Path) -> None:
    """The default stays a loud failure: two servers on one port by accident is a mistake."""
    data_dir = tmp_path / "data"
    add_key(data_dir, "operator", "forum")
    port = _free_port()
    first = ServerProcess(data_dir, ["--port", str(port)]).start()
    try:
        with pytest.raises(AssertionError, match="port is in use"):
            ServerProcess(data_dir, ["--port", str(port)]).start()
    finally:
        assert first.stop() == 0
