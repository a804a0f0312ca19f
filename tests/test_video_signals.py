"""The video hash types' own rules (the contract every type passes is in
tests/test_signal_contract.py): vpdq's text forms (python-threatexchange's JSON, the vpdq
tool's lines, hex), what a listed vPDQ must be (frames, quality, time order) with a
message a person can act on, and a check's query (variants of one frame share a time)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.domain import HashValue
from service.errors import InvalidInput
from service.signals.registry import REGISTRY
from service.signals.vpdq import MAX_QUERY_RECORDS, VPDQ
from service.signals.vpdq_frames import (
    RECORD_BYTES,
    FrameHash,
    QueryFrames,
    pack,
    pack_query,
    to_vpdq_file,
    unpack,
    unpack_query,
)


def frames(count: int, quality: int = 90, seed: int = 1) -> list[FrameHash]:
    rng = np.random.default_rng(seed)
    return [
        FrameHash(rng.integers(0, 256, 32, np.uint8).tobytes(), quality, n * 1.0)
        for n in range(count)
    ]


def test_the_text_forms_read_as_one_value() -> None:
    listed = frames(6)
    value = pack(listed)
    theirs = json.dumps([f"{f.pdq.hex()},{f.quality},{f.timestamp}" for f in listed])
    assert VPDQ.parse(theirs) == value  # python-threatexchange, blanks and all
    assert VPDQ.parse(to_vpdq_file(listed, fps=30)) == value  # the vpdq tool's file
    assert VPDQ.parse(value.hex()) == value
    assert VPDQ.parse(VPDQ.format(value)) == value
    assert VPDQ.format(value).startswith('["') and " " not in VPDQ.format(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (pack(frames(3, quality=40)), "every one of its 3 frames has PDQ quality below 50"),
        (pack([FrameHash(b"\x00" * 31 + b"\x01", 90, n) for n in range(3)]), "almost all"),
    ],
)
def test_videos_no_frame_of_which_can_match_are_degenerate(value: bytes, message: str) -> None:
    problem = VPDQ.degenerate(HashValue(VPDQ, value), 50)
    assert problem is not None and message in problem[1]


def test_a_video_with_some_flat_frames_is_listed() -> None:
    mixed = [*frames(4), FrameHash(b"\x00" * 32, 0, 4.0)]
    assert VPDQ.degenerate(HashValue(VPDQ, pack(mixed)), 50) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"", "1 to 86,400 records of 37 bytes, got 0 bytes"),
        (b"\x01" * 40, "records of 37 bytes, got 40 bytes"),
        (pack(frames(2))[:RECORD_BYTES] * 2, "frame 1: time 0.000 s is not after frame 0's"),
        (pack(frames(1))[:32] + b"\x65" + bytes(4), "frame 0: quality 101 is not 0-100"),
    ],
)
def test_a_listed_vpdq_is_refused_saying_what_is_wrong(value: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        VPDQ.validate(value)


def test_times_that_go_backwards_are_refused_in_every_form() -> None:
    backwards = [FrameHash(f.pdq, f.quality, 5.0 - f.timestamp) for f in frames(3)]
    text = json.dumps([f"{f.pdq.hex()},{f.quality},{f.timestamp}" for f in backwards])
    with pytest.raises(InvalidInput, match="frame 1: times must not go backwards"):
        VPDQ.parse(text)
    with pytest.raises(InvalidInput, match="frame 1: times must not go backwards"):
        VPDQ.check_query(HashValue(VPDQ, b"".join(_records(backwards))))


def _records(listed: list[FrameHash]) -> list[bytes]:
    return [
        f.pdq + bytes([f.quality]) + round(f.timestamp * 1000).to_bytes(4, "big") for f in listed
    ]


def test_a_query_packs_each_frames_variants_under_its_time() -> None:
    rng = np.random.default_rng(2)
    query = QueryFrames(
        np.array([0.0, 0.25, 0.5]),
        np.array([80, 90, 100], np.uint8),
        np.array([0, 0, 1, 2, 2, 2]),
        rng.integers(0, 256, (6, 32), np.uint8),
    )
    back = unpack_query(pack_query(query))
    assert back.timestamps.tolist() == [0.0, 0.25, 0.5]
    assert back.qualities.tolist() == [80, 90, 100]
    assert back.query_frame.tolist() == [0, 0, 1, 2, 2, 2]
    assert np.array_equal(back.queries, query.queries)
    VPDQ.check_query(HashValue(VPDQ, pack_query(query)))  # a repeated time is fine here
    with pytest.raises(InvalidInput, match="frames are listed once each, in time order"):
        VPDQ.validate(pack_query(query))


def test_a_query_is_bounded() -> None:
    big = HashValue(VPDQ, bytes(RECORD_BYTES) * (MAX_QUERY_RECORDS + 1))
    with pytest.raises(InvalidInput, match=f"at most {MAX_QUERY_RECORDS:,} records"):
        VPDQ.check_query(big)


def test_names() -> None:
    assert REGISTRY.parse_name("vpdq") is VPDQ
    assert unpack(pack(frames(2))) == frames(2)


def test_python_threatexchange_times_past_1000_seconds_are_spread_back() -> None:
    """Its `.3` format writes 1000-1004 s as "1e+03" and 1005-1014 s as "1.01e+03": read
    back, a 20-minute video's frames are again one a second, each within half a second of
    its time, so a clip from late in the video aligns."""
    listed = frames(1200)
    theirs = json.dumps([f"{f.pdq.hex()},{f.quality},{f.timestamp:.3}" for f in listed])
    assert '1e+03"' in theirs and theirs.count(",1.01e+03") >= 9
    value = VPDQ.parse(theirs)
    back = unpack(value)
    assert [f.pdq for f in back] == [f.pdq for f in listed]
    assert max(abs(a.timestamp - b.timestamp) for a, b in zip(back, listed, strict=True)) <= 0.6
    with pytest.raises(InvalidInput, match="is not after frame 0's"):
        VPDQ.parse(json.dumps([f"{f.pdq.hex()},90,0.0" for f in listed[:2]]))
