"""Three `hashguard serve` processes on one PostgreSQL database (a schema of its own):
changes on any replica reach the others within a second, hits are shared, and the
cluster survives a killed replica and dropped database connections without losing
anything it acknowledged."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from tests.postgres import connection_count, fresh_schema, terminate_connections
from tests.support import ServerProcess, Stubs, bearer, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

CONVERGE_SECONDS = 1.0  # the promise: every replica within one second
ROLES = ("operator", "moderator", "submitter")
_rng = np.random.default_rng(7)


class Cluster:
    """Replicas A, B, C on one store, with a client for each and the role keys."""

    def __init__(self, url: str, schema: str, root: Path) -> None:
        self.url, self.schema = url, schema
        self.keys = {
            role: run_cli("keys", "add", "--store", url, "--role", role, "--name", role)
            .stdout.strip()
            .splitlines()[-1]
            for role in ROLES
        }
        self.servers = [
            # A 5 s catch-up poll: convergence within a second must come from NOTIFY.
            ServerProcess(
                root / name,
                # Submits as fast as it can: per-key limits (tests/test_limits.py) are off.
                extra_args=[
                    *("--store", url, "--pool-size", "4", "--follow-interval", "5"),
                    *(
                        "--rate-limits",
                        "",
                        "--max-cases-per-hour",
                        "0",
                        "--max-hashes-per-hour",
                        "0",
                    ),
                ],
            )
            for name in "abc"
        ]
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: s.start(), self.servers))
        self.channels = [s.channel() for s in self.servers]
        self.stubs = [Stubs(c) for c in self.channels]

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        for server in self.servers:
            if server.process is not None and server.process.poll() is None:
                assert server.stop() == 0, server.log()

    # -- calls ------------------------------------------------------------------------

    def submit(self, replica: int, value: bytes) -> pb.SubmitCaseResponse:
        request = pb.SubmitCaseRequest(
            hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=value)]
        )
        return self.stubs[replica].submission.SubmitCase(
            request, metadata=bearer(self.keys["submitter"]), timeout=10
        )

    def check(self, replica: int, value: bytes) -> pb.CheckUploadResponse:
        request = pb.CheckUploadRequest(
            hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=value, quality=100)]
        )
        return self.stubs[replica].match.CheckUpload(
            request, metadata=bearer(self.keys["operator"]), timeout=10
        )

    def decision_within(
        self, replica: int, value: bytes, wanted: int, seconds: float = CONVERGE_SECONDS
    ) -> float:
        """Poll until `replica` answers `wanted` for `value`; returns the time it took
        and fails if that is more than `seconds`."""
        return wait_for(lambda: self.check(replica, value).decision == wanted, seconds)

    def metric(self, replica: int, name: str) -> float:
        port = self.servers[replica].metrics_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            for line in reply.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not exported")


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        if elapsed > seconds:
            raise AssertionError(f"not true within {seconds}s")
        time.sleep(0.01)


def new_hash() -> bytes:
    return _rng.integers(0, 256, 32, dtype=np.uint8).tobytes()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fresh_schema() as (url, schema):
        running = Cluster(url, schema, tmp_path_factory.mktemp("replicas"))
        try:
            yield running
        finally:
            running.close()


A, B, C = 0, 1, 2


def test_a_case_submitted_on_a_matches_on_b_and_c_within_a_second(cluster: Cluster) -> None:
    value = new_hash()
    assert cluster.check(B, value).decision == pb.DECISION_ALLOW
    cluster.submit(A, value)
    assert cluster.check(A, value).decision == pb.DECISION_REVIEW  # reads its own write
    for replica in (B, C):
        cluster.decision_within(replica, value, pb.DECISION_REVIEW)


def test_hits_from_every_replica_reach_every_moderator(cluster: Cluster) -> None:
    value = new_hash()
    cluster.submit(A, value)
    cluster.decision_within(B, value, pb.DECISION_REVIEW)
    cluster.decision_within(C, value, pb.DECISION_REVIEW)
    hit_on_b = cluster.check(B, value).hit_id
    assert hit_on_b and cluster.check(C, value).hit_id == hit_on_b  # one hit, not two
    listed = cluster.stubs[A].review.ListHits(
        pb.ListHitsRequest(), metadata=bearer(cluster.keys["moderator"])
    )
    assert hit_on_b in [h.hit_id for h in listed.hits]


def test_a_confirmation_on_b_turns_review_into_block_on_a(cluster: Cluster) -> None:
    value = new_hash()
    cluster.submit(C, value)
    cluster.decision_within(B, value, pb.DECISION_REVIEW)
    hit_id = cluster.check(B, value).hit_id
    cluster.stubs[B].review.ResolveHit(
        pb.ResolveHitRequest(hit_id=hit_id, verdict=pb.VERDICT_CONFIRMED),
        metadata=bearer(cluster.keys["moderator"]),
    )
    assert cluster.check(B, value).decision == pb.DECISION_BLOCK
    cluster.decision_within(A, value, pb.DECISION_BLOCK)
    cluster.decision_within(C, value, pb.DECISION_BLOCK)


def test_a_withdrawal_on_c_stops_matches_on_a_within_a_second(cluster: Cluster) -> None:
    value = new_hash()
    case = cluster.submit(B, value)
    cluster.decision_within(A, value, pb.DECISION_REVIEW)
    cluster.decision_within(C, value, pb.DECISION_REVIEW)
    cluster.stubs[C].submission.WithdrawCase(
        pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    assert cluster.check(C, value).decision == pb.DECISION_ALLOW
    cluster.decision_within(A, value, pb.DECISION_ALLOW)
    cluster.decision_within(B, value, pb.DECISION_ALLOW)


def test_an_import_reaches_every_replica_within_a_second(cluster: Cluster, tmp_path: Path) -> None:
    values = [new_hash() for _ in range(3)]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"pdq {v.hex()}\n" for v in values))
    run_cli("import", str(listing), "--store", cluster.url, "--vetted")
    for replica in (A, B, C):
        for value in values:
            cluster.decision_within(replica, value, pb.DECISION_BLOCK)


def test_dropped_database_connections_lose_nothing(cluster: Cluster) -> None:
    """Terminate every connection the replicas hold (as a database restart does) while
    cases are being submitted: afterwards every acknowledged case matches everywhere,
    and each replica reports no lag."""
    acknowledged: list[bytes] = []
    refused: list[grpc.StatusCode] = []
    stop = threading.Event()

    def submit_continuously() -> None:
        while not stop.is_set():
            value = new_hash()
            try:
                cluster.submit(A, value)
            except grpc.RpcError as exc:
                refused.append(exc.code())  # not acknowledged: the client would retry
                continue
            acknowledged.append(value)

    writer = threading.Thread(target=submit_continuously)
    writer.start()
    try:
        for _ in range(3):
            time.sleep(0.3)
            # Replicas reconnect lazily (the pool on the next call, the listener after a
            # short back-off): wait until they have, so each round really cuts something.
            deadline = time.monotonic() + 10
            while connection_count(cluster.schema) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert terminate_connections(cluster.schema) > 0
        time.sleep(0.3)
    finally:
        stop.set()
        writer.join(30)
    # Made while B's and C's listening connections were gone: only the catch-up by
    # sequence number can bring it.
    terminate_connections(cluster.schema)
    last = new_hash()
    cluster.submit(A, last)
    acknowledged.append(last)
    assert len(acknowledged) > 5
    assert set(refused) <= {grpc.StatusCode.UNAVAILABLE}, refused
    for replica in (A, B, C):

        def reviewed(r: int = replica) -> bool:
            return bool(cluster.check(r, last).decision == pb.DECISION_REVIEW)

        def caught_up(r: int = replica) -> bool:
            return cluster.metric(r, "hashguard_replica_lag_changes") == 0

        wait_for(reviewed, 10)
        for value in acknowledged:
            assert cluster.check(replica, value).decision == pb.DECISION_REVIEW
        wait_for(caught_up, 5)
        assert cluster.metric(replica, "hashguard_replica_lag_seconds") < 5


def test_killing_a_replica_under_load_leaves_the_others_serving(tmp_path: Path) -> None:
    with fresh_schema() as (url, schema):
        cluster = Cluster(url, schema, tmp_path)
        try:
            value = new_hash()
            cluster.submit(A, value)  # acknowledged by A just before it dies
            errors: list[BaseException] = []
            answers: list[int] = []
            stop = threading.Event()

            def check_continuously(replica: int) -> None:
                try:
                    while not stop.is_set():
                        answers.append(cluster.check(replica, value).decision)
                except BaseException as exc:  # surfaced below
                    errors.append(exc)

            cluster.decision_within(B, value, pb.DECISION_REVIEW)
            cluster.decision_within(C, value, pb.DECISION_REVIEW)
            checkers = [
                threading.Thread(target=check_continuously, args=(r,)) for r in (B, C, B, C)
            ]
            for thread in checkers:
                thread.start()
            time.sleep(0.3)
            process = cluster.servers[A].process
            assert process is not None
            process.kill()
            process.wait(30)
            served_before = len(answers)
            time.sleep(0.5)
            after_kill = cluster.submit(B, new_value := new_hash())
            assert after_kill.case_id
            cluster.decision_within(C, new_value, pb.DECISION_REVIEW)
            stop.set()
            for thread in checkers:
                thread.join(30)
            assert not errors, errors[:3]
            assert len(answers) > served_before  # kept answering after A died
            assert set(answers) == {pb.DECISION_REVIEW}
        finally:
            cluster.close()
