"""Audit and sessions (issue 15, item 6), through a real server and a real `hashguard
web`: denied privileged calls and `hashguard export` leave audit rows, case look-ups
through the public page are limited per visitor network, and signing out of the console
ends the session on the server, so a replayed cookie resolves nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from tests.support import ServerProcess, Stubs, WebTier, add_key, bearer, run_cli

pytestmark = pytest.mark.slow  # starts real servers

KEYS = {
    "sub": ("submitter", "ngo"),
    "op-a": ("operator", "forum-a"),
    "mod-a": ("moderator", "forum-a"),
    "mod-b": ("moderator", "forum-b"),
}


@dataclass
class Stack:
    data: Path
    server: ServerProcess
    web: WebTier
    stubs: Stubs
    keys: dict[str, str]

    def audit(self, action: str) -> list[dict[str, object]]:
        out = run_cli("audit", "--data-dir", str(self.data), "--json", "--action", action)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]

    def new_hit(self, value: bytes) -> tuple[str, str]:
        """(case id, hit id) of a fresh case and forum-a's pending hit on it."""
        listed = pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=value)
        case = self.stubs.submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=[listed]), metadata=bearer(self.keys["sub"])
        )
        hit = self.stubs.match.CheckUpload(
            pb.CheckUploadRequest(hashes=[listed], content_ref="post"),
            metadata=bearer(self.keys["op-a"]),
        ).hit_id
        return case.case_id, hit


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("audit-sessions")
    keys = {
        name: add_key(data, role, name, "--tenant", tenant) for name, (role, tenant) in KEYS.items()
    }
    server = ServerProcess(data).start()
    web = WebTier(
        server.target,
        env={
            "HASHGUARD_WEB_SUBMITTER_KEY": keys["sub"],
            "HASHGUARD_WEB_CASE_READS_PER_VISITOR_HOUR": "5",
            "HASHGUARD_WEB_CLIENT_IP_HEADER": "X-Forwarded-For",
        },
    ).start()
    try:
        with server.channel() as channel:
            yield Stack(data, server, web, Stubs(channel), keys)
    finally:
        web.stop()
        server.stop()


def test_denied_privileged_calls_are_audited(stack: Stack) -> None:
    _, hit_id = stack.new_hit(bytes(range(1, 33)))
    with pytest.raises(grpc.RpcError) as other_tenant:
        stack.stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=hit_id, verdict=pb.VERDICT_CONFIRMED),
            metadata=bearer(stack.keys["mod-b"]),
        )
    assert other_tenant.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as operator:
        stack.stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(stack.keys["op-a"]))
    assert operator.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as moderator:
        stack.stubs.review.ListDisputedEntries(
            pb.ListDisputedEntriesRequest(), metadata=bearer(stack.keys["mod-a"])
        )
    assert moderator.value.code() == grpc.StatusCode.PERMISSION_DENIED

    (denied,) = stack.audit("hit.resolve.denied")
    assert (denied["actor"], denied["tenant"], denied["target"]) == (
        "mod-b",
        "forum-b",
        f"hit {hit_id}",
    )
    assert denied["detail"] == "tenant forum-a's hit"
    (listed,) = stack.audit("hits.list.denied")
    assert listed["actor"] == "op-a" and "needs moderator" in str(listed["detail"])
    (disputed,) = stack.audit("disputed.list.denied")
    assert disputed["actor"] == "mod-a"


def test_export_is_audited(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "list.txt"
    run_cli("export", "--data-dir", str(stack.data), "--out", str(out), "--state", "all")
    assert out.read_text().strip()
    (exported,) = stack.audit("list.exported")
    assert exported["target"] == "list.txt" and exported["detail"] == "state=all format=plain"
    assert str(exported["actor"]).startswith("cli:")


def test_case_lookups_through_the_page_are_limited_per_network(stack: Stack) -> None:
    case_id, _ = stack.new_hit(bytes(range(2, 34)))
    visitor = stack.web.browser()
    csrf = visitor.csrf("/case")
    reads_before = len(stack.audit("case.read"))

    def look_up(address: str) -> tuple[int, str]:
        status, page, _ = visitor.request(
            "/case",
            {"csrf": csrf, "case_id": case_id, "case_token": "wrong"},
            headers={"X-Forwarded-For": address},
        )
        return status, page

    statuses = [look_up(f"198.51.100.{n}")[0] for n in range(1, 9)]
    assert statuses == [404] * 5 + [429] * 3
    status, page = look_up("198.51.100.200")
    assert status == 429 and "Many cases have been looked up from your network" in page
    assert look_up("203.0.113.9")[0] == 404  # another network
    assert len(stack.audit("case.read")) == reads_before  # wrong tokens read nothing


def test_signing_out_ends_the_session_for_a_replayed_cookie(stack: Stack) -> None:
    _, hit_id = stack.new_hit(bytes(range(3, 35)))
    moderator = stack.web.browser()
    moderator.sign_in(stack.keys["mod-a"])
    _, page, _ = moderator.request("/console")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf and hit_id in page
    stolen = [(c.name, c.value) for c in moderator.jar if "session" in c.name]
    assert stolen
    status, _, _ = moderator.request("/console/sign-out", {"csrf": csrf.group(1)})
    assert status == 303

    replay = stack.web.browser()
    cookie = "; ".join(f"{name}={value}" for name, value in stolen)
    status, _, headers = replay.request("/console", headers={"Cookie": cookie})
    assert status == 303 and headers["location"].endswith("/console/sign-in")
    status, _, headers = replay.request(
        f"/console/hits/{hit_id}",
        {"csrf": csrf.group(1), "verdict": "confirm"},
        headers={"Cookie": cookie},
    )
    assert status == 303 and headers["location"].endswith("/console/sign-in")
    pending = stack.stubs.review.ListHits(
        pb.ListHitsRequest(state=pb.HIT_STATE_PENDING), metadata=bearer(stack.keys["mod-a"])
    )
    assert hit_id in {h.hit_id for h in pending.hits}
