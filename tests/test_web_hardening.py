"""Hardening decisions of issue 15, item 7 (docs/SECURITY.md, "Hardening decisions"),
through a real server and a real `hashguard web`: HSTS when the pages are served over
HTTPS, POSTs from other sites refused by their Origin, invisible format characters in
what the console shows made visible, and a warning when one tenant's moderators can vet
for several."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hashguard.v1 import hashguard_pb2 as pb

from tests.support import ServerProcess, Stubs, WebTier, add_key, bearer

pytestmark = pytest.mark.slow  # starts real servers

KEYS = {
    "sub": ("submitter", "ngo"),
    "op-a": ("operator", "forum-a"),
    "mod-a": ("moderator", "forum-a"),
    "mod-b": ("moderator", "forum-b"),
}


@dataclass
class Stack:
    server: ServerProcess
    web: WebTier
    keys: dict[str, str]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("hardening")
    keys = {
        name: add_key(data, role, name, "--tenant", tenant) for name, (role, tenant) in KEYS.items()
    }
    server = ServerProcess(data).start()
    web = WebTier(server.target, env={"HASHGUARD_WEB_SUBMITTER_KEY": keys["sub"]}).start()
    try:
        yield Stack(server, web, keys)
    finally:
        web.stop()
        server.stop()


def test_one_tenants_moderators_vetting_for_several_is_warned_about(stack: Stack) -> None:
    assert "moderator keys of 2 tenants exist and --vet-tenants is 1" in stack.server.log()


def test_hsts_when_the_pages_are_served_over_https(stack: Stack) -> None:
    plain = stack.web.browser().request("/")[2]
    assert "strict-transport-security" not in plain  # --web-cookie-secure 0: plain HTTP
    secure = WebTier(stack.server.target, env={"HASHGUARD_WEB_COOKIE_SECURE": "1"}).start()
    try:
        headers = secure.browser().request("/")[2]
    finally:
        secure.stop()
    assert headers["strict-transport-security"] == "max-age=31536000"


def test_posts_from_another_site_are_refused_by_their_origin(stack: Stack) -> None:
    visitor = stack.web.browser()
    csrf = visitor.csrf("/")
    one = {"hashes": [{"algorithm": "sha256", "hex": secrets.token_hex(32)}]}

    def submit(origin: str | None) -> int:
        headers = {"Content-Type": "application/json", "X-CSRF-Token": csrf}
        if origin is not None:
            headers["Origin"] = origin
        return visitor.request("/api/cases", body=json.dumps(one).encode(), headers=headers)[0]

    assert submit("https://evil.example") == 403
    assert submit("https://evil.example:443") == 403
    assert submit("null") == 200  # a form under no-referrer sends it: the CSRF token decides
    assert submit(stack.web.url) == 200  # the page's own origin
    assert submit(None) == 200  # no Origin: the CSRF token decides
    status, page, _ = visitor.request(
        "/console/sign-in",
        {"csrf": csrf, "key": stack.keys["mod-a"]},
        headers={"Origin": "https://evil.example"},
    )
    assert status == 403 and "sent from another site" in page


def test_the_console_shows_invisible_characters_and_isolates_what_operators_wrote(
    stack: Stack,
) -> None:
    sneaky = "invoice\u202egpj.exe"
    listed = pb.Hash(algorithm=pb.HASH_ALGORITHM_SHA256, value=bytes(range(7, 39)))
    with stack.server.channel() as channel:
        stubs = Stubs(channel)
        stubs.submission.SubmitCase(
            pb.SubmitCaseRequest(hashes=[listed]), metadata=bearer(stack.keys["sub"])
        )
        hit = stubs.match.CheckUpload(
            pb.CheckUploadRequest(hashes=[listed], content_ref=sneaky),
            metadata=bearer(stack.keys["op-a"]),
        )
    assert hit.hit_id
    moderator = stack.web.browser()
    moderator.sign_in(stack.keys["mod-a"])
    _, page, _ = moderator.request("/console")
    assert "\u202e" not in page
    assert re.search(r"<bdi>invoice&lt;U\+202E&gt;gpj\.exe</bdi>", page), page
