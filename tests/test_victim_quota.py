"""Victims are not locked out of the public page (issue 15, item 3), through a real
server and a real `hashguard web`: visitors are counted by network (IPv4 /24, IPv6 /64),
the web tier's key has its own quota (`keys add --cases-per-hour`), a key's hashes are
quota'd as well as its cases, and a refused victim is told in plain words what happened
and when to retry."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from hashguard.v1 import hashguard_pb2 as pb

from service.web.visitors import network_of
from tests.support import Browser, ServerProcess, Stubs, WebTier, bearer, run_cli

pytestmark = pytest.mark.slow  # starts real servers


@dataclass
class Stack:
    server: ServerProcess
    web: WebTier
    keys: dict[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("victim-quota")
    keys = {}
    for name, quota in (("web", ["--cases-per-hour", "40"]), ("ngo", ["--hashes-per-hour", "5"])):
        out = run_cli(
            "keys", "add", "--data-dir", str(data), "--role", "submitter", "--name", name, *quota
        )
        keys[name] = out.stdout.strip().splitlines()[-1]
    listed = run_cli("keys", "list", "--data-dir", str(data)).stdout
    assert "40/h cases" in listed and "5/h hashes" in listed
    # The server's own quota (3 cases an hour per key) would lock the page out at once;
    # the web tier's key has its own, 40.
    server = ServerProcess(data, extra_args=["--max-cases-per-hour", "3"]).start()
    web = WebTier(
        server.target,
        env={
            "HASHGUARD_WEB_SUBMITTER_KEY": keys["web"],
            "HASHGUARD_WEB_CASES_PER_VISITOR_HOUR": "10",
            "HASHGUARD_WEB_CLIENT_IP_HEADER": "X-Forwarded-For",
        },
    ).start()
    try:
        yield Stack(server, web, keys)
    finally:
        web.stop()
        server.stop()


def submit(browser: Browser, csrf: str, address: str) -> tuple[int, dict[str, str], dict[str, str]]:
    one = {"hashes": [{"algorithm": "sha256", "hex": secrets.token_hex(32)}]}
    status, body, headers = browser.request(
        "/api/cases",
        body=json.dumps(one).encode(),
        headers={
            "Content-Type": "application/json",
            "X-CSRF-Token": csrf,
            "X-Forwarded-For": address,
        },
    )
    return status, json.loads(body), headers


def test_visitors_are_networks() -> None:
    assert network_of("198.51.100.77") == "198.51.100.0/24"
    assert network_of("::ffff:198.51.100.77") == "198.51.100.0/24"
    assert network_of("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert network_of("[2001:db8:1:2::9]") == "2001:db8:1:2::/64"
    assert network_of("not an address") == "not an address"


def test_a_hundred_addresses_of_one_network_cannot_lock_victims_out(stack: Stack) -> None:
    browser = stack.web.browser()
    csrf = browser.csrf("/")
    answers = [submit(browser, csrf, f"203.0.113.{n}") for n in range(1, 101)]
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 10 and statuses.count(429) == 90
    _, refused, headers = answers[-1]
    assert refused["error"].startswith("Many cases have been sent from your network")
    assert "Nothing was sent this time. Please try again in" in refused["error"]
    assert 0 < int(headers["retry-after"]) <= 3600
    # A victim elsewhere still gets through: the web key's quota (40) was not spent.
    status, case, _ = submit(browser, csrf, "192.0.2.10")
    assert status == 200 and case["case_id"]


def test_a_victim_refused_by_the_shared_quota_is_told_why_and_when(stack: Stack) -> None:
    browser = stack.web.browser()
    csrf = browser.csrf("/")
    sent = [submit(browser, csrf, f"10.{n}.0.1") for n in range(40)]
    refused = [(body, headers) for status, body, headers in sent if status == 429]
    assert refused, [s for s, _, _ in sent]
    body, headers = refused[0]
    assert "as many cases as it may in the last hour, from everyone using it" in body["error"]
    assert "not because of anything you did" in body["error"]
    assert "Please try again in" in body["error"] and "minute" in body["error"]
    assert 0 < int(headers["retry-after"]) <= 3600
    assert "too much at once" not in body["error"]


def test_a_keys_hashes_are_quotad_not_only_its_cases(stack: Stack) -> None:
    with stack.server.channel() as channel:
        stubs = Stubs(channel)

        def case(count: int) -> pb.SubmitCaseResponse:
            hashes = [
                pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=secrets.token_bytes(32))
                for _ in range(count)
            ]
            return stubs.submission.SubmitCase(
                pb.SubmitCaseRequest(hashes=hashes), metadata=bearer(stack.keys["ngo"])
            )

        assert case(3).entry_count == 3
        with pytest.raises(grpc.RpcError) as refused:
            case(3)  # 6 > 5 an hour
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = refused.value.details() or ""
        assert "submitted 3 hashes in the last hour" in details
        assert "max_hashes_per_hour" in details
        metadata: Any = refused.value.trailing_metadata()  # (key, value) pairs
        trailers = {str(k): str(v) for k, v in metadata or ()}
        assert 0 < int(trailers["retry-after-ms"]) <= 3_600_000
        assert case(2).entry_count == 2  # what is left of the hour's quota still goes in
