"""Matches + entry states -> decision.

This is where the victims' channel is kept from becoming a censorship tool: only a
vetted entry may BLOCK, an unvetted one can at most ask for REVIEW.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import Settings
from service.domain import Decision, EntryState, Match
from service.policy import Thresholds, best_per_entry, decide
from service.signals.base import SignalType
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.phash import PHASH
from service.signals.registry import SIGNALS, parse_name
from service.signals.sha256 import SHA256


def match(
    entry_id: int,
    distance: int = 0,
    state: EntryState = EntryState.VETTED,
    algorithm: SignalType = PDQ,
    query_value: bytes = b"\x00" * 32,
) -> Match:
    return Match(entry_id, algorithm, distance, state, query_value)


# --- Thresholds ----------------------------------------------------------------------


def test_default_thresholds_are_the_measured_ones() -> None:
    """PDQ 38 and pHash 0 come from the detection-quality and index-cost benchmarks
    (docs/QUALITY.md); the server's settings default to the same values as the policy."""
    thresholds = Thresholds()
    assert thresholds.radius(PDQ) == 38
    assert thresholds.radius(PHASH) == 0
    settings = Settings()
    assert (settings.pdq_threshold, settings.phash_threshold) == (38, 0)


@pytest.mark.parametrize("algorithm", [SHA256, MD5])
def test_cryptographic_hashes_only_match_exactly(algorithm: SignalType) -> None:
    """A one-bit-off SHA-256 is a different file, whatever the perceptual thresholds."""
    assert Thresholds().radius(algorithm) == 0
    assert Thresholds({PDQ: 60, PHASH: 20}).radius(algorithm) == 0


def test_custom_thresholds_apply_to_their_own_algorithm() -> None:
    """Operators tune each radius separately; one must not leak into the other."""
    thresholds = Thresholds({PDQ: 20, PHASH: 6})
    assert thresholds.radius(PDQ) == 20
    assert thresholds.radius(PHASH) == 6
    assert thresholds.radius(parse_name("photo_pdq")) == 20  # parsed names too


# --- best_per_entry ------------------------------------------------------------------


def test_best_per_entry_keeps_the_closest_match_of_each_entry() -> None:
    """The 8 dihedral variants can all hit one entry; report it once, at its best."""
    matches = [
        match(5, 20, query_value=b"\x01" * 32),
        match(5, 3, query_value=b"\x02" * 32),
        match(5, 9, query_value=b"\x03" * 32),
        match(2, 7),
        match(9, 3),
    ]
    best = best_per_entry(matches)
    assert [(m.entry_id, m.distance) for m in best] == [(5, 3), (9, 3), (2, 7)]
    assert best[0].query_value == b"\x02" * 32  # the hash that actually matched best


def test_best_per_entry_orders_by_distance_then_entry_id() -> None:
    """A stable order makes hits and logs reproducible for the same upload."""
    matches = [match(30, 4), match(10, 4), match(20, 1), match(40, 0), match(5, 31)]
    assert [m.entry_id for m in best_per_entry(matches)] == [40, 20, 10, 30, 5]


def test_best_per_entry_of_nothing_is_empty() -> None:
    assert best_per_entry([]) == []
    assert best_per_entry(iter([])) == []


def test_best_per_entry_accepts_a_generator() -> None:
    """Callers may stream matches; a one-shot iterator must be read fully, once."""
    best = best_per_entry(match(i % 3, 10 - i) for i in range(6))
    assert [(m.entry_id, m.distance) for m in best] == [(2, 5), (1, 6), (0, 7)]


@st.composite
def match_lists(draw: st.DrawFn) -> list[Match]:
    """Matches as the matcher makes them: each entry has one state, hit by 0..n hashes."""
    states = draw(st.dictionaries(st.integers(0, 8), st.sampled_from(EntryState), max_size=9))
    if not states:
        return []
    hits = draw(
        st.lists(
            st.tuples(
                st.sampled_from(sorted(states)),
                st.integers(0, 64),
                st.sampled_from(SIGNALS),
            ),
            max_size=30,
        )
    )
    return [match(entry_id, dist, states[entry_id], algo) for entry_id, dist, algo in hits]


@settings(max_examples=150, deadline=None)
@given(matches=match_lists())
def test_property_best_per_entry(matches: list[Match]) -> None:
    """One result per entry, each at that entry's minimum, sorted, and order-independent."""
    best = best_per_entry(matches)
    assert {m.entry_id for m in best} == {m.entry_id for m in matches}
    assert len(best) == len({m.entry_id for m in matches})
    for kept in best:
        assert kept in matches
        assert kept.distance == min(m.distance for m in matches if m.entry_id == kept.entry_id)
    keys = [(m.distance, m.entry_id) for m in best]
    assert keys == sorted(keys)
    shuffled = list(matches)
    random.Random(len(matches)).shuffle(shuffled)
    assert [(m.entry_id, m.distance) for m in best_per_entry(shuffled)] == [
        (m.entry_id, m.distance) for m in best
    ]


# --- decide --------------------------------------------------------------------------

V, P, W = EntryState.VETTED, EntryState.PENDING, EntryState.WITHDRAWN


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], Decision.ALLOW),
        ([W], Decision.ALLOW),
        ([W, W], Decision.ALLOW),
        ([P], Decision.REVIEW),
        ([P, W], Decision.REVIEW),
        ([P, P], Decision.REVIEW),
        ([V], Decision.BLOCK),
        ([P, V], Decision.BLOCK),
        ([W, P, V], Decision.BLOCK),
        ([V, P, W], Decision.BLOCK),
    ],
)
def test_decide(states: list[EntryState], expected: Decision) -> None:
    """Only a vetted entry blocks; a pending one asks for review; withdrawn ones never act."""
    assert decide([match(i, i, state) for i, state in enumerate(states)]) == expected


def test_unvetted_entries_never_block_however_close() -> None:
    """An exact PDQ, pHash and SHA-256 hit on a pending entry is still only REVIEW."""
    matches = [
        match(1, 0, P, PDQ),
        match(1, 0, P, PHASH, b"\x00" * 8),
        match(1, 0, P, SHA256),
    ]
    assert decide(matches) == Decision.REVIEW


def test_decide_accepts_a_generator() -> None:
    assert decide(match(i, 0, state) for i, state in enumerate([W, P, V])) == Decision.BLOCK
    assert decide(match(i, 0, state) for i, state in enumerate([W, P])) == Decision.REVIEW


@settings(max_examples=150, deadline=None)
@given(matches=match_lists())
def test_property_decide_depends_only_on_the_states_present(matches: list[Match]) -> None:
    """Distances, algorithms and order must not change the decision; states alone do."""
    states = {m.entry_state for m in matches}
    expected = Decision.BLOCK if V in states else Decision.REVIEW if P in states else Decision.ALLOW
    assert decide(matches) == expected
    assert decide(reversed(matches)) == expected
    # The service decides on the de-duplicated list; that must not change the outcome.
    assert decide(best_per_entry(matches)) == expected
