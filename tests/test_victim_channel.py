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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import skimage.data
from hashguard.v1 import hashguard_pb2 as pb
from PIL import Image

from service.media.crops import STRIP, Window, window_hashes
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
