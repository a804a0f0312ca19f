"""The victim channel alone must never block a benign picture (docs/SECURITY.md, "What a
confirmation vets"), through a real server over SQLite and PostgreSQL, and through the
moderators' console of a real `hashguard web`.

The attack: a submitter lists only the bottom strip of a benign photo B (a pdq-window
entry, as `hashguard hash` makes for captions). An abusive upload U made of B with its
top 30 % replaced matches that entry through U's bottom strip alone; a moderator rightly
confirms U. Before parts were recorded, that confirmation vetted the strip entry and B
itself, and other copies of it, were then BLOCKed at every other platform.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.crops import STRIP, Window, window_hashes
from service.media.hashes import hash_image_bytes
from tests.postgres import fresh_schema
from tests.support import ServerProcess, Stubs, WebTier, bearer, encode, run_cli

# Starts servers, browsers or other programs: left out by `pytest -m 'not slow'`.
pytestmark = pytest.mark.slow

BENIGN = Image.fromarray(skimage.data.coffee()).convert("RGB")
STRIP_WINDOW = Window(1.0, STRIP, 0.5, 1.0)  # the bottom 70 %, as hashguard hash lists it


def abusive_variant(photo: Image.Image, seed: int = 0) -> Image.Image:
    """The photo with its top 30 % replaced (a stand-in for abusive content pasted on)."""
    pixels = np.asarray(photo).copy()
    top = int(pixels.shape[0] * 0.3)
    other = np.asarray(Image.fromarray(skimage.data.astronaut()).resize(photo.size))
    pixels[:top] = np.roll(other, seed * 37, axis=1)[:top]
    return Image.fromarray(pixels)


def bottom_strip(photo: Image.Image) -> Image.Image:
    return photo.crop(STRIP_WINDOW.box(*photo.size))


KEYS = {
    "sub": ("submitter", "ngo"),
    **{f"op-{t}": ("operator", f"forum-{t}") for t in "abc"},
    **{f"mod-{t}": ("moderator", f"forum-{t}") for t in "abc"},
}


@dataclass
class Stack:
    server: ServerProcess
    stubs: Stubs
    data_args: list[str]
    keys: dict[str, str] = field(default_factory=dict)

    def md(self, name: str) -> tuple[tuple[str, str], ...]:
        return bearer(self.keys[name])

    def check(self, name: str, photo: Image.Image, ref: str) -> pb.CheckUploadResponse:
        return self.stubs.match.CheckUpload(
            pb.CheckUploadRequest(image=encode(photo, "JPEG", quality=90), content_ref=ref),
            metadata=self.md(name),
            timeout=60,
        )

    def list_strip_of(self, photo: Image.Image) -> int:
        (strip,) = window_hashes(photo, 50, [STRIP_WINDOW])
        case = self.stubs.submission.SubmitCase(
            pb.SubmitCaseRequest(
                hashes=[
                    pb.Hash(
                        algorithm=pb.HASH_ALGORITHM_PDQ_WINDOW,
                        value=strip.value,
                        quality=strip.quality or 0,
                    )
                ]
            ),
            metadata=self.md("sub"),
        )
        assert case.entry_count == 1
        return case.entry_count

    def resolve(self, moderator: str, hit_id: str, vet_partial: bool) -> pb.ResolveHitResponse:
        return self.stubs.review.ResolveHit(
            pb.ResolveHitRequest(
                hit_id=hit_id,
                verdict=pb.VERDICT_CONFIRMED,
                note="abusive",
                vet_partial_matches=vet_partial,
            ),
            metadata=self.md(moderator),
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("victim-channel")
    with fresh_schema() if request.param == "postgresql" else _no_schema() as found:
        args = ["--data-dir", str(data)] + (["--store", found[0]] if found else [])
        keys = {}
        for name, (role, tenant) in KEYS.items():
            out = run_cli("keys", "add", *args, "--role", role, "--tenant", tenant, "--name", name)
            keys[name] = out.stdout.strip().splitlines()[-1]
        # The shipped defaults: one tenant's whole-part confirmation vets, two tenants'
        # confirmations are needed when partial matches count.
        server = ServerProcess(data, extra_args=args[2:]).start()
        try:
            with server.channel() as channel:
                yield Stack(server, Stubs(channel), args, keys)
        finally:
            assert server.stop() == 0, server.log()


class _no_schema:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_strip_confirmation_does_not_block_the_benign_photo_elsewhere(stack: Stack) -> None:
    stack.list_strip_of(BENIGN)
    abusive = abusive_variant(BENIGN)
    flagged = stack.check("op-a", abusive, "post-1")
    assert flagged.decision == pb.DECISION_REVIEW and flagged.hit_id
    (match,) = flagged.matches
    assert match.part == pb.MATCH_PART_STRIP and match.partial
    assert match.algorithm == pb.HASH_ALGORITHM_PDQ_WINDOW and match.distance <= 8

    # The moderator sees the part and the distance, and confirms U without ticking the
    # strip: nothing is vetted.
    (hit,) = stack.stubs.review.ListHits(
        pb.ListHitsRequest(state=pb.HIT_STATE_PENDING), metadata=stack.md("mod-a")
    ).hits
    assert [(m.part, m.partial, m.distance) for m in hit.matches] == [
        (pb.MATCH_PART_STRIP, True, match.distance)
    ]
    resolved = stack.resolve("mod-a", flagged.hit_id, vet_partial=False)
    assert list(resolved.vetted_entry_ids) == []
    assert [m.agreed for m in resolved.hit.matches] == [False]

    # B itself and another copy of it (smaller, re-encoded) at other platforms: reviewed
    # at most, never blocked.
    smaller = BENIGN.resize((BENIGN.width * 3 // 4, BENIGN.height * 3 // 4))
    for operator, photo in (("op-b", BENIGN), ("op-c", smaller), ("op-a", BENIGN)):
        answer = stack.check(operator, photo, f"benign-{operator}")
        assert answer.decision == pb.DECISION_REVIEW, (operator, answer)


def test_strip_entries_vet_only_by_choice_of_enough_tenants_and_never_block_alone(
    stack: Stack,
) -> None:
    photo = Image.fromarray(skimage.data.chelsea()).convert("RGB")
    stack.list_strip_of(photo)
    hits = {}
    for seed, tenant in enumerate("bc", start=1):
        answer = stack.check(f"op-{tenant}", abusive_variant(photo, seed), f"cat-{tenant}")
        assert answer.decision == pb.DECISION_REVIEW and answer.matches[0].partial
        hits[tenant] = answer.hit_id
    # One tenant's explicit choice is not enough for a partial match...
    first = stack.resolve("mod-b", hits["b"], vet_partial=True)
    assert list(first.vetted_entry_ids) == [] and [m.agreed for m in first.hit.matches] == [True]
    # ...a second tenant's is (--vet-partial-tenants 2).
    second = stack.resolve("mod-c", hits["c"], vet_partial=True)
    (entry,) = second.vetted_entry_ids
    assert second.hit.matches[0].entry_state == pb.ENTRY_STATE_VETTED
    # Even vetted, a strip alone asks for review; the strip as a whole picture blocks.
    shared = stack.check("op-a", photo, "cat-photo")
    assert shared.decision == pb.DECISION_REVIEW
    assert [(m.entry_id, m.part) for m in shared.matches] == [(entry, pb.MATCH_PART_STRIP)]
    cropped = stack.check("op-a", bottom_strip(photo), "cat-crop")
    assert cropped.decision == pb.DECISION_BLOCK
    assert cropped.matches[0].part == pb.MATCH_PART_WHOLE


def test_the_console_shows_each_part_and_vets_a_strip_only_when_ticked(stack: Stack) -> None:
    photo = Image.fromarray(skimage.data.rocket()).convert("RGB")
    stack.list_strip_of(photo)
    web = WebTier(stack.server.target).start()
    try:
        moderator = web.browser()
        moderator.sign_in(stack.keys["mod-a"])
        flagged = stack.check("op-a", abusive_variant(photo), "rocket-post")
        assert flagged.decision == pb.DECISION_REVIEW
        _, page, _ = moderator.request("/console")
        item = page[page.index(f'id="hit-{flagged.hit_id}"') :]
        row = re.search(r'<tr class="match partial">(.*?)</tr>', item, re.S)
        assert row, item
        cells = [html.unescape(c).strip() for c in re.findall(r"<td>(.*?)</td>", row.group(1))]
        distance = flagged.matches[0].distance
        entry = flagged.matches[0].entry_id
        assert cells == [str(entry), "strip (partial)", str(distance), "PDQ_WINDOW", "pending"]
        assert "matched only by a strip of this upload" in item
        csrf = re.search(r'name="csrf" value="([^"]+)"', item)
        assert csrf
        status, _, _ = moderator.request(
            f"/console/hits/{flagged.hit_id}", {"csrf": csrf.group(1), "verdict": "confirm"}
        )
        assert status == 303
    finally:
        web.stop()
    # Confirmed without ticking the strip: the entry is not vetted, the photo not blocked.
    (hit,) = stack.stubs.review.ListHits(
        pb.ListHitsRequest(state=pb.HIT_STATE_CONFIRMED, page_size=500),
        metadata=stack.md("mod-a"),
    ).hits[:1]
    assert hit.hit_id == flagged.hit_id and not hit.matches[0].agreed
    assert stack.check("op-b", photo, "rocket-elsewhere").decision == pb.DECISION_REVIEW


def with_inset(photo: Image.Image, fraction: float = 0.45) -> Image.Image:
    """The photo with another picture pasted into its corner (the abusive part)."""
    copy = photo.copy()
    inset = Image.fromarray(skimage.data.astronaut()).convert("RGB")
    inset = inset.resize((int(photo.width * fraction), int(photo.height * fraction)))
    copy.paste(inset, (photo.width - inset.width - 10, photo.height - inset.height - 10))
    return copy


def between(a: bytes, b: bytes) -> bytes:
    """A PDQ value half way from `a` to `b`: half of the bits where they differ flipped."""
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    differ = [bit for bit in range(256) if (x ^ y) >> bit & 1]
    for bit in differ[: len(differ) // 2]:
        x ^= 1 << bit
    return x.to_bytes(32, "big")


def test_one_hash_between_a_benign_and_an_abusive_picture_cannot_block_the_benign_one(
    stack: Stack,
) -> None:
    """Through the public victim page: one PDQ placed half way between a benign photo B
    and B with an abusive inset I. A moderator rightly confirms I; B, whose distance to
    the entry is within the threshold but farther than the threshold less I's, must not
    be BLOCKed, here or by a replica started afterwards; a real victim's confirmed
    re-upload still blocks its other copies."""
    benign = Image.fromarray(skimage.data.camera()).convert("RGB")
    abusive = with_inset(benign)
    jpeg = {"B": encode(benign, "JPEG", quality=90), "I": encode(abusive, "JPEG", quality=90)}
    pdq = {name: hash_image_bytes(data).pdq.value for name, data in jpeg.items()}
    apart = bin(int.from_bytes(pdq["B"], "big") ^ int.from_bytes(pdq["I"], "big")).count("1")
    assert 38 < apart <= 76  # B is not a near copy of I; one hash can sit within 38 of both
    planted = between(pdq["B"], pdq["I"])

    web = WebTier(
        stack.server.target, env={"HASHGUARD_WEB_SUBMITTER_KEY": stack.keys["sub"]}
    ).start()
    try:
        attacker = web.browser()
        csrf = attacker.csrf("/")
        body = {"hashes": [{"algorithm": "pdq", "hex": planted.hex(), "quality": 100}]}
        status, reply, _ = attacker.request(
            "/api/cases",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
        )
        assert status == 200, reply
    finally:
        web.stop()

    def check(operator: str, data: bytes) -> pb.CheckUploadResponse:
        return stack.stubs.match.CheckUpload(
            pb.CheckUploadRequest(image=data, content_ref="inset"),
            metadata=stack.md(operator),
            timeout=60,
        )

    flagged = check("op-a", jpeg["I"])
    assert flagged.decision == pb.DECISION_REVIEW
    (match,) = [m for m in flagged.matches if m.algorithm == pb.HASH_ALGORITHM_PDQ]
    assert match.part == pb.MATCH_PART_WHOLE and match.distance <= 38
    resolved = stack.resolve("mod-a", flagged.hit_id, vet_partial=False)
    assert list(resolved.vetted_entry_ids) == [match.entry_id]

    for operator in ("op-b", "op-c"):
        answer = check(operator, jpeg["B"])
        assert answer.decision == pb.DECISION_REVIEW, answer
        (seen,) = [m for m in answer.matches if m.entry_id == match.entry_id]
        assert seen.entry_state == pb.ENTRY_STATE_VETTED and seen.distance <= 38
    # A replica started now loads the list, and what each vetted entry vouches for,
    # from the store.
    replica = ServerProcess(Path(stack.data_args[1]), extra_args=stack.data_args[2:]).start()
    try:
        with replica.channel() as channel:
            answer = Stubs(channel).match.CheckUpload(
                pb.CheckUploadRequest(image=jpeg["B"], content_ref="inset"),
                metadata=stack.md("op-c"),
                timeout=60,
            )
        assert answer.decision == pb.DECISION_REVIEW, answer
    finally:
        assert replica.stop() == 0, replica.log()

    # A victim's own photo, confirmed as a close re-upload, blocks its other copies.
    photo = Image.fromarray(skimage.data.astronaut()).convert("RGB")
    own = hash_image_bytes(encode(photo, "PNG")).pdq
    stack.stubs.submission.SubmitCase(
        pb.SubmitCaseRequest(
            hashes=[pb.Hash(algorithm=pb.HASH_ALGORITHM_PDQ, value=own.value, quality=own.quality)]
        ),
        metadata=stack.md("sub"),
    )
    reupload = check("op-a", encode(photo, "JPEG", quality=85))
    assert reupload.decision == pb.DECISION_REVIEW
    stack.resolve("mod-a", reupload.hit_id, vet_partial=False)
    copy = check("op-b", encode(photo.resize((400, 400)), "JPEG", quality=60))
    assert copy.decision == pb.DECISION_BLOCK, copy
