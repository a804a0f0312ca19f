"""`hashguard serve --processes N`: N serving processes on one port over one list, under a
supervisor. Each check here finds out which process answered from the health check's
`hashguard-pid` trailer, asked on the same connection just before (one connection is
served by one process), so "every process" means every pid, not a number of tries."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc

from service.api.introspection import PID_TRAILER
from tests.support import ServerProcess, add_key, bearer

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

_PIDS = re.compile(r"serving processes, pids ([\d ]+)\)")


def _random_pdq(rng: np.random.Generator) -> bytes:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes()


def _check(pdq: bytes) -> pb.CheckUploadRequest:
    return pb.CheckUploadRequest(
        hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq, quality=100)]
    )


def _submit(pdq: bytes) -> pb.SubmitCaseRequest:
    return pb.SubmitCaseRequest(
        hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=pdq, quality=100)]
    )


def _ask(
    target: str, request: pb.CheckUploadRequest, key: str
) -> tuple[int, pb.CheckUploadResponse]:
    """(pid of the process that answered, its answer), over one new connection."""
    with grpc.insecure_channel(target) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)  # the stubs' types miss Check
        _, call = health.Check.with_call(health_pb2.HealthCheckRequest(), timeout=10)
        pid = int(dict(call.trailing_metadata())[PID_TRAILER])
        answer = pb_grpc.MatchServiceStub(channel).CheckUpload(
            request, metadata=bearer(key), timeout=10
        )
    return pid, answer


def _until_every_process(
    target: str, pids: set[int], request: pb.CheckUploadRequest, key: str, decision: int
) -> tuple[float, pb.CheckUploadResponse]:
    """Seconds until every pid answered `decision`, and one such answer."""
    started = time.monotonic()
    agreed: set[int] = set()
    answer = pb.CheckUploadResponse()
    while agreed != pids:
        assert time.monotonic() - started < 30, f"only {agreed} of {pids} answered {decision}"
        pid, answer = _ask(target, request, key)
        assert pid in pids, f"pid {pid} is not one of the serving processes {pids}"
        if answer.decision == decision:
            agreed.add(pid)
    return time.monotonic() - started, answer


def _serving_pids(server: ServerProcess) -> set[int]:
    found = _PIDS.search(server.log())
    assert found, server.log()
    return {int(p) for p in found.group(1).split()}


def _children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _metrics(server: ServerProcess) -> str:
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        named = line.startswith(name + "{") or line.startswith(name + " ")
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    data_dir = tmp_path / "data"
    keys = {
        role: add_key(data_dir, role, role, "--tenant", "forum")
        for role in ("operator", "submitter", "moderator")
    }
    server = ServerProcess(data_dir, ["--processes", "2", "--snapshot-interval", "0"]).start()
    try:
        yield server, keys
    finally:
        server.stop()


def test_a_submission_a_confirmation_and_a_withdrawal_reach_every_process_within_a_second(
    stack: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, keys = stack
    pids = _serving_pids(server)
    assert len(pids) == 2 and pids == _children(server.process.pid)  # type: ignore[union-attr]
    pdq = _random_pdq(np.random.default_rng(3))
    with grpc.insecure_channel(server.target) as channel:
        case = pb_grpc.SubmissionServiceStub(channel).SubmitCase(
            _submit(pdq), metadata=bearer(keys["submitter"])
        )
    took, answer = _until_every_process(
        server.target, pids, _check(pdq), keys["operator"], pb.DECISION_REVIEW
    )
    assert took < 1.0, f"the submission took {took:.2f}s to reach every process"
    with grpc.insecure_channel(server.target) as channel:
        resolved = pb_grpc.ReviewServiceStub(channel).ResolveHit(
            pb.ResolveHitRequest(hit_id=answer.hit_id, verdict=pb.VERDICT_CONFIRMED),
            metadata=bearer(keys["moderator"]),
        )
    assert resolved.vetted_entry_ids
    took, _ = _until_every_process(
        server.target, pids, _check(pdq), keys["operator"], pb.DECISION_BLOCK
    )
    assert took < 1.0, f"the confirmation took {took:.2f}s to reach every process"
    with grpc.insecure_channel(server.target) as channel:
        withdrawn = pb_grpc.SubmissionServiceStub(channel).WithdrawCase(
            pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
        )
    assert withdrawn.entries_withdrawn == 1
    took, _ = _until_every_process(
        server.target, pids, _check(pdq), keys["operator"], pb.DECISION_ALLOW
    )
    assert took < 1.0, f"the withdrawal took {took:.2f}s to reach every process"


def test_a_killed_process_loses_no_acknowledged_write_and_is_replaced(
    stack: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, keys = stack
    assert server.process is not None
    pids = _serving_pids(server)
    rng = np.random.default_rng(7)
    acknowledged: list[bytes] = []
    stop = threading.Event()

    def submit_until_stopped() -> None:
        while not stop.is_set():
            pdq = _random_pdq(rng)
            try:  # a new connection each time, so both processes take submissions
                with grpc.insecure_channel(server.target) as channel:
                    pb_grpc.SubmissionServiceStub(channel).SubmitCase(
                        _submit(pdq), metadata=bearer(keys["submitter"]), timeout=10
                    )
            except grpc.RpcError:
                continue  # refused or cut off by the kill: not acknowledged, not counted
            acknowledged.append(pdq)

    writer = threading.Thread(target=submit_until_stopped)
    writer.start()
    try:
        while len(acknowledged) < 10:
            time.sleep(0.05)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        before = len(acknowledged)
        while len(acknowledged) < before + 10:
            time.sleep(0.05)
    finally:
        stop.set()
        writer.join()
    deadline = time.monotonic() + 30
    while len(_children(server.process.pid)) < 2 or victim in _children(server.process.pid):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    now = _children(server.process.pid)
    assert victim not in now and len(now - pids) == 1, (pids, now)
    for pdq in acknowledged:  # every acknowledged case, in every process (the new one too)
        _until_every_process(server.target, now, _check(pdq), keys["operator"], pb.DECISION_REVIEW)
    text = _metrics(server)
    assert _sample(text, "hashguard_process_restarts_total") == 1
    assert _sample(text, "hashguard_serving_processes") == 2
    assert "died (signal SIGKILL); starting another" in server.log() or server.stop() == 0


def test_the_metrics_endpoint_sums_the_processes_counters(
    stack: tuple[ServerProcess, dict[str, str]],
) -> None:
    server, keys = stack
    pids = _serving_pids(server)
    answered: dict[int, int] = {}
    calls = 0
    request = _check(_random_pdq(np.random.default_rng(11)))
    while set(answered) != pids or calls < 10:
        assert calls < 500, answered
        pid, _ = _ask(server.target, request, keys["operator"])
        answered[pid] = answered.get(pid, 0) + 1
        calls += 1
    text = _metrics(server)
    assert _sample(text, "hashguard_requests_total", method="CheckUpload", code="OK") == calls
    assert _sample(text, "hashguard_decisions_total", decision="allow") == calls
    assert _sample(text, "hashguard_serving_processes") == 2


def test_processes_1_serves_from_the_process_itself(tmp_path: Path) -> None:
    """No supervisor: the process started is the one that answers, as before the flag."""
    data_dir = tmp_path / "data"
    operator = add_key(data_dir, "operator", "op")
    server = ServerProcess(data_dir).start()  # tests/support.py passes --processes 1
    try:
        assert server.process is not None
        assert "serving processes" not in server.log()
        pid, answer = _ask(server.target, _check(bytes(range(32))), operator)
        assert pid == server.process.pid and answer.decision == pb.DECISION_ALLOW
        assert not _children(server.process.pid)
    finally:
        assert server.stop() == 0


def test_processes_that_keep_dying_stop_the_supervisor_with_an_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    add_key(data_dir, "operator", "op")
    server = ServerProcess(data_dir, ["--processes", "2", "--snapshot-interval", "0"]).start()
    assert server.process is not None
    killed: set[int] = set()
    deadline = time.monotonic() + 120
    while server.process.poll() is None:
        assert time.monotonic() < deadline, server.log()
        for pid in _children(server.process.pid) - killed:
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.1)
    assert server.stop() == 1
    assert "giving up" in server.log(), server.log()
    assert len(killed) > 5
