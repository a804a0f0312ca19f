"""Tenants, the audit log, key revocation and rotation, disputed entries and degenerate
submissions, through a real server on loopback over SQLite and over PostgreSQL.

The server runs with --vet-tenants 2 and --dispute-tenants 2: two platforms' moderators
must confirm before an entry blocks, and two platforms' rejections dispute it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.hashes import hash_image_bytes
from tests.postgres import fresh_schema
from tests.support import ServerProcess, Stubs, bearer, details, encode, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

ASTRONAUT = Image.fromarray(skimage.data.astronaut())
COFFEE = Image.fromarray(skimage.data.coffee())

# name -> (role, tenant)
KEYS = {
    "op-a": ("operator", "forum-a"),
    "mod-a": ("moderator", "forum-a"),
    "op-b": ("operator", "forum-b"),
    "mod-b": ("moderator", "forum-b"),
    "op-c": ("operator", "forum-c"),
    "sub": ("submitter", "ngo"),
    "root": ("admin", "ops"),
}


@dataclass
class Deployment:
    server: ServerProcess
    store_args: list[str]
    stubs: Stubs
    keys: dict[str, str] = field(default_factory=dict)

    def md(self, name: str) -> tuple[tuple[str, str], ...]:
        return bearer(self.keys[name])

    def cli(self, *args: str, check: bool = True) -> str:
        result = run_cli(*args, *self.store_args, check=check)
        return result.stdout + result.stderr

    def audit(self, *filters: str) -> list[dict[str, object]]:
        out = run_cli("audit", *self.store_args, "--json", "--limit", "1000", *filters).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def metric(self, sample: str) -> float:
        url = f"http://127.0.0.1:{self.server.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        values = [line.split()[-1] for line in text.splitlines() if line.startswith(sample + " ")]
        return float(values[0]) if values else 0.0

    def check(self, name: str, photo: Image.Image, ref: str) -> pb.CheckUploadResponse:
        image = encode(photo, "JPEG", quality=60)
        return self.stubs.match.CheckUpload(
            pb.CheckUploadRequest(image=image, content_ref=ref), metadata=self.md(name)
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("tenants")
    with fresh_schema_if(request.param) as url:
        store_args = ["--data-dir", str(data_dir)] + (["--store", url] if url else [])
        keys = {}
        for name, (role, tenant) in KEYS.items():
            out = run_cli(
                "keys", "add", *store_args, "--role", role, "--tenant", tenant, "--name", name
            )
            keys[name] = out.stdout.strip().splitlines()[-1]
        server = ServerProcess(
            data_dir,
            extra_args=[*store_args[2:], "--vet-tenants", "2", "--dispute-tenants", "2"],
        ).start()
        try:
            with server.channel() as channel:
                yield Deployment(server, store_args, Stubs(channel), keys)
        finally:
            assert server.stop() == 0, server.log()


class fresh_schema_if:
    """A fresh PostgreSQL schema's URL for 'postgresql', None for 'sqlite'."""

    def __init__(self, kind: str) -> None:
        self._context = fresh_schema() if kind == "postgresql" else None

    def __enter__(self) -> str | None:
        return None if self._context is None else self._context.__enter__()[0]

    def __exit__(self, *exc: Any) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)


def victim_hashes(photo: Image.Image) -> list[pb.Hash]:
    hashed = hash_image_bytes(encode(photo, "PNG"))
    return [
        pb.Hash(
            algorithm=pb.HASH_ALGORITHM_PDQ, value=hashed.pdq.value, quality=hashed.pdq.quality
        ),
        pb.Hash(algorithm=pb.HASH_ALGORITHM_PHASH, value=hashed.phash.value),
    ]


def hit_ids(d: Deployment, name: str) -> set[str]:
    reply = d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=d.md(name))
    return {h.hit_id for h in reply.hits}


def test_tenants_are_isolated_and_two_tenants_vet(deployment: Deployment) -> None:
    d = deployment
    case = d.stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=victim_hashes(ASTRONAUT)), metadata=d.md("sub")
    )
    first_a = d.check("op-a", ASTRONAUT, "a-1")
    first_b = d.check("op-b", ASTRONAUT, "b-1")
    assert first_a.decision == first_b.decision == pb.DECISION_REVIEW
    # The same upload hash on two platforms: one hit for each platform's moderators.
    assert first_a.hit_id and first_b.hit_id and first_a.hit_id != first_b.hit_id

    assert first_a.hit_id in hit_ids(d, "mod-a") and first_b.hit_id not in hit_ids(d, "mod-a")
    assert first_b.hit_id in hit_ids(d, "mod-b") and first_a.hit_id not in hit_ids(d, "mod-b")
    every = d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=d.md("root")).hits
    tenants = {h.hit_id: h.tenant for h in every}
    assert tenants[first_a.hit_id] == "forum-a" and tenants[first_b.hit_id] == "forum-b"
    target = ("--target", d.server.target, "--state", "all")
    admin_cli = run_cli("hits", "list", *target, "--key", d.keys["root"]).stdout
    assert "forum-a/op-a" in admin_cli and "forum-b/op-b" in admin_cli
    assert "forum-b" not in run_cli("hits", "list", *target, "--key", d.keys["mod-a"]).stdout

    # Another tenant's hit is indistinguishable from one that does not exist.
    with pytest.raises(grpc.RpcError) as other:
        d.stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id=first_b.hit_id, verdict=pb.VERDICT_CONFIRMED),
            metadata=d.md("mod-a"),
        )
    with pytest.raises(grpc.RpcError) as missing:
        d.stubs.review.ResolveHit(
            pb.ResolveHitRequest(hit_id="no-such-hit", verdict=pb.VERDICT_CONFIRMED),
            metadata=d.md("mod-a"),
        )
    assert other.value.code() == missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(other.value).replace(first_b.hit_id, "X") == details(missing.value).replace(
        "no-such-hit", "X"
    )

    # One platform's confirmation does not vet the entry when two are required.
    one = d.stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=first_a.hit_id, verdict=pb.VERDICT_CONFIRMED),
        metadata=d.md("mod-a"),
    )
    assert one.hit.state == pb.HIT_STATE_CONFIRMED and not one.vetted_entry_ids
    again = d.check("op-a", ASTRONAUT, "a-2")
    assert again.decision == pb.DECISION_REVIEW and again.hit_id == first_a.hit_id
    assert d.check("op-c", ASTRONAUT, "c-1").decision == pb.DECISION_REVIEW

    two = d.stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=first_b.hit_id, verdict=pb.VERDICT_CONFIRMED),
        metadata=d.md("mod-b"),
    )
    assert two.vetted_entry_ids
    blocked = d.check("op-a", ASTRONAUT, "a-3")
    assert blocked.decision == pb.DECISION_BLOCK

    # Operators never learn the case; the victim never learns the platforms.
    for reply in (first_a, blocked):
        assert case.case_id.encode() not in reply.SerializeToString()
    listing = d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=d.md("mod-a"))
    assert case.case_id.encode() not in listing.SerializeToString()
    status = d.stubs.submission.GetCase(
        pb.GetCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    assert status.hits_total == 3 and status.hits_confirmed == 2  # a, b and c's pending hit
    raw = status.SerializeToString()
    assert all(name.encode() not in raw for name in (*KEYS, "forum-a", "forum-b", "forum-c"))

    # Each state change and privileged read is audited, never with a secret in it.
    records = d.audit()
    actions = [(r["actor"], r["action"]) for r in records]
    for expected in [
        ("sub", "case.submitted"),
        ("op-a", "hit.created"),
        ("op-b", "hit.created"),
        ("mod-a", "hits.listed"),
        ("root", "hits.listed"),
        ("mod-a", "hit.resolved"),
        ("mod-b", "hit.resolved"),
        ("mod-b", "entries.vetted"),
        ("case-token", "case.read"),
    ]:
        assert expected in actions, expected
    assert [r["actor"] for r in records if r["action"] == "key.added"].count(
        "cli:" + _user()
    ) == len(KEYS)
    resolved = next(r for r in records if r["action"] == "hit.resolved" and r["actor"] == "mod-b")
    assert resolved == resolved | {
        "role": "moderator",
        "tenant": "forum-b",
        "target": f"hit {first_b.hit_id}",
        "detail": "confirmed",
    }
    # mod-a's failed attempt on forum-b's hit changed nothing and recorded no resolution.
    assert [
        r["target"] for r in records if r["actor"] == "mod-a" and r["action"] == "hit.resolved"
    ] == [f"hit {first_a.hit_id}"]
    dump = json.dumps(records)
    assert case.case_token not in dump
    assert all(key not in dump and key.split("_", 2)[2] not in dump for key in d.keys.values())


def test_audit_filters(deployment: Deployment) -> None:
    d = deployment
    d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=d.md("mod-b"))
    mine = d.audit("--actor", "mod-b")
    assert mine and {r["actor"] for r in mine} == {"mod-b"}
    hits_only = d.audit("--action", "hit.")
    actions = {r["action"] for r in hits_only}
    assert hits_only and actions <= {"hit.created", "hit.resolved", "hit.resolve.denied"}
    newest = d.audit("--action", "hits.listed", "--limit", "1")
    assert len(newest) == 1 and newest[0]["actor"] == "mod-b"  # newest first
    assert d.audit("--since", "2999-01-01") == []
    listing = d.server.data_dir / "list.txt"
    listing.write_text("md5 " + bytes(range(16)).hex() + "\n")
    run_cli("import", str(listing), *d.store_args)
    (imported,) = d.audit("--action", "list.imported")
    assert imported["target"] == "list.txt" and imported["role"] == "local"
    reads = d.audit("--action", "audit.read")
    assert reads and str(reads[0]["actor"]).startswith("cli:")
    bad = run_cli("audit", *d.store_args, "--since", "yesterday", check=False)
    assert bad.returncode != 0 and "--since 'yesterday'" in bad.stderr


def test_degenerate_submissions_are_refused_naming_the_item(deployment: Deployment) -> None:
    d = deployment
    good = victim_hashes(COFFEE)
    cases = {
        "all zero": ([pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=bytes(32))], "hashes[0]"),
        "all one": (
            [*good, pb.Hash(algorithm=pb.HASH_ALGORITHM_MD5, value=b"\xff" * 16)],
            "hashes[2]",
        ),
        "near constant": (
            [good[0], pb.Hash(algorithm=pb.HASH_ALGORITHM_PHASH, value=bytes(7) + b"\x0f")],
            "hashes[1]",
        ),
        "low quality": (
            [good[1], pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=good[0].value, quality=20)],
            "hashes[1]",
        ),
        "duplicate": ([good[0], good[1], good[0]], "hashes[2] "),
    }
    before = len(d.audit("--action", "case.submitted"))
    messages: dict[str, str] = {}
    for label, (hashes, item) in cases.items():
        with pytest.raises(grpc.RpcError) as refused:
            d.stubs.submission.SubmitCase(pb.SubmitCaseRequest(hashes=hashes), metadata=d.md("sub"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, label
        messages[label] = details(refused.value)
        assert messages[label].startswith(item), (label, messages[label])
    assert "PDQ quality 20 is below 50" in messages["low quality"]
    assert "repeats hashes[0]" in messages["duplicate"]
    assert "4 of its 64 bits are set" in messages["near constant"]
    assert "every byte is 0xff" in messages["all one"]
    assert len(d.audit("--action", "case.submitted")) == before  # nothing was stored
    counted = {
        reason: d.metric(f'hashguard_refused_submissions_total{{reason="{reason}"}}')
        for reason in ("constant", "near_constant", "low_quality", "duplicate")
    }
    assert counted == {"constant": 2, "near_constant": 1, "low_quality": 1, "duplicate": 1}


def test_disputed_entries_allow_and_are_listed_for_admins_only(deployment: Deployment) -> None:
    d = deployment
    case = d.stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(hashes=victim_hashes(COFFEE)), metadata=d.md("sub")
    )
    hit_a = d.check("op-a", COFFEE, "coffee-a").hit_id
    hit_b = d.check("op-b", COFFEE, "coffee-b").hit_id
    assert hit_a and hit_b
    d.stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=hit_a, verdict=pb.VERDICT_REJECTED), metadata=d.md("mod-a")
    )
    # One platform's rejection is that platform's verdict only.
    assert d.check("op-b", COFFEE, "coffee-b2").decision == pb.DECISION_REVIEW
    d.stubs.review.ResolveHit(
        pb.ResolveHitRequest(hit_id=hit_b, verdict=pb.VERDICT_REJECTED), metadata=d.md("root")
    )
    # An admin resolved forum-b's hit; it counts for forum-b, the hit's tenant. Two
    # platforms rejected it: a third platform is no longer asked to review it.
    third = d.check("op-c", COFFEE, "coffee-c")
    assert third.decision == pb.DECISION_ALLOW and not third.hit_id
    assert any("disputed" in note for note in third.notes)
    assert d.metric("hashguard_disputed_matches_total") == 1

    listed = d.stubs.review.ListDisputedEntries(
        pb.ListDisputedEntriesRequest(), metadata=d.md("root")
    ).entries
    matched = {m.entry_id for m in third.matches}
    assert matched and matched <= {e.entry_id for e in listed}
    assert all(e.rejecting_tenants == 2 and e.confirming_tenants == 0 for e in listed)
    for name in ("mod-a", "op-a", "sub"):
        with pytest.raises(grpc.RpcError) as denied:
            d.stubs.review.ListDisputedEntries(pb.ListDisputedEntriesRequest(), metadata=d.md(name))
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    out = run_cli("disputed", "--target", d.server.target, "--key", d.keys["root"]).stdout
    assert all(f"entry {e.entry_id} " in out for e in listed)
    d.stubs.submission.WithdrawCase(
        pb.WithdrawCaseRequest(case_id=case.case_id, case_token=case.case_token)
    )
    actions = {(r["actor"], r["action"], r["target"]) for r in d.audit()}
    assert ("case-token", "case.withdrawn", f"case {case.case_id}") in actions
    assert {(a, b) for a, b, _ in actions} >= {
        ("root", "entries.disputed"),
        ("root", "disputed.listed"),
    }


def test_revoke_and_rotate_take_effect_on_the_running_server(deployment: Deployment) -> None:
    d = deployment
    assert d.check("op-b", ASTRONAUT, "before-revoke").decision == pb.DECISION_BLOCK
    assert "revoked operator key 'op-b'" in d.cli("keys", "revoke", "op-b")
    # The server trusts a key it read for --key-cache-seconds (1 s) before reading it again.
    refused = refused_soon(lambda: d.check("op-b", ASTRONAUT, "after-revoke"))
    assert refused.code() == grpc.StatusCode.UNAUTHENTICATED

    old = d.keys["mod-a"]
    assert d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(old)).hits
    new = run_cli("keys", "rotate", "mod-a", *d.store_args).stdout.strip().splitlines()[-1]
    d.keys["mod-a"] = new
    assert new != old and new.split("_")[1] == old.split("_")[1]  # same key id
    # The new secret works at once (a secret the cached record does not match is looked
    # up again), the old one within the cache time.
    assert d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(new)).hits
    stale = refused_soon(
        lambda: d.stubs.review.ListHits(pb.ListHitsRequest(), metadata=bearer(old))
    )
    assert stale.code() == grpc.StatusCode.UNAUTHENTICATED

    listing = d.cli("keys", "list")
    assert d.audit("--action", "keys.listed")
    rows = {line.split("\t")[0]: line.split("\t") for line in listing.splitlines()}
    assert rows["op-b"][1:3] == ["operator", "forum-b"] and rows["op-b"][5].startswith("revoked")
    assert "rotated" in rows["mod-a"][5] and rows["op-a"][5] == "active"
    assert new not in listing and old not in listing
    again = run_cli("keys", "revoke", "op-b", *d.store_args, check=False)
    assert again.returncode != 0 and "already revoked" in again.stderr
    unknown = run_cli("keys", "rotate", "nobody", *d.store_args, check=False)
    assert unknown.returncode != 0 and "no API key named 'nobody'" in unknown.stderr
    actions = {(r["target"], r["action"]) for r in d.audit("--action", "key.")}
    assert {("op-b", "key.revoked"), ("mod-a", "key.rotated")} <= actions


def refused_soon(call: Callable[[], object], within: float = 30.0) -> grpc.RpcError:
    """The error `call` fails with once it fails, retrying while it still succeeds."""
    deadline = time.monotonic() + within
    while True:
        try:
            call()
        except grpc.RpcError as exc:
            return exc
        assert time.monotonic() < deadline, "the call still succeeds"
        time.sleep(0.1)


def _user() -> str:
    import getpass

    return getpass.getuser()
