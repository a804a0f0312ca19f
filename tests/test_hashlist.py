"""Hash-list parsing in the shapes python-threatexchange's CLI and HMA exports produce."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest

from service.domain import HashValue
from service.errors import InvalidInput
from service.hashlist import read_hashes, write_hashes
from service.signals.base import SignalType
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.video_md5 import VIDEO_MD5
from service.signals.video_sha256 import VIDEO_SHA256
from service.signals.vpdq import VPDQ
from service.signals.vpdq_frames import FrameHash, unpack

PDQ_HEX = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
MD5_HEX = "0123456789abcdef0123456789abcdef"


def parse(text: str, fmt: str = "plain", default: SignalType | None = None) -> list[HashValue]:
    return list(read_hashes(io.StringIO(text), fmt, default))


def test_plain_lines_with_comments_and_aliases() -> None:
    text = f"# list\n\npdq {PDQ_HEX}\nPHOTO_MD5 {MD5_HEX}\n  md5   {MD5_HEX.upper()}  \n"
    assert parse(text) == [
        HashValue(PDQ, bytes.fromhex(PDQ_HEX)),
        HashValue(MD5, bytes.fromhex(MD5_HEX)),
        HashValue(MD5, bytes.fromhex(MD5_HEX)),
    ]


def test_threatexchange_print_signals_with_collab_and_metadata() -> None:
    """`threatexchange dataset -P` prints `<type> <hash> '<collab>' <metadata>`."""
    text = f"pdq {PDQ_HEX} 'Sample Signals' INVESTIGATION_SEED\n"
    assert parse(text) == [HashValue(PDQ, bytes.fromhex(PDQ_HEX))]


def test_threatexchange_one_type_lines_need_the_type_given() -> None:
    """With `-s TYPE` it leaves the type out: `<hash> '<collab>' <metadata>`."""
    text = f"{PDQ_HEX} 'Sample Signals' INVESTIGATION_SEED\n"
    assert parse(text, default=PDQ) == [HashValue(PDQ, bytes.fromhex(PDQ_HEX))]
    with pytest.raises(InvalidInput, match="imported with --type TYPE"):
        parse(text)


def test_threatexchange_names_and_types_hashguard_does_not_match() -> None:
    """Its `video_md5` / `video_sha256` (digests of a video file's bytes) import as
    video-md5 and video-sha256; lines of its types HashGuard has no use for are skipped
    and counted; a name nobody knows is still an error."""
    sha_hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    text = (
        f"video_md5 {MD5_HEX} 'Sample Signals' INVESTIGATION_SEED\n"
        f"video_sha256 {sha_hex} 'Sample Signals' INVESTIGATION_SEED\n"
        "url https://example.org/a 'Sample Signals' INVESTIGATION_SEED\n"
        'trend_query {"and": [{"or": ["a", "b"]}]} \'Sample Signals\' INVESTIGATION_SEED\n'
    )
    skipped: Counter[str] = Counter()
    assert list(read_hashes(io.StringIO(text), "plain", skipped=skipped)) == [
        HashValue(VIDEO_MD5, bytes.fromhex(MD5_HEX)),
        HashValue(VIDEO_SHA256, bytes.fromhex(sha_hex)),
    ]
    assert skipped == Counter({"url": 1, "trend_query": 1})
    with pytest.raises(InvalidInput, match="line 1: unknown hash type 'video_tmk'"):
        parse("video_tmk 00\n")


def test_hex_only_lines_need_a_type() -> None:
    assert parse(f"{PDQ_HEX}\n", default=PDQ)[0].hex == PDQ_HEX
    with pytest.raises(InvalidInput, match="line 1: expected '<type> <hex>'"):
        parse(f"{PDQ_HEX}\n")


def test_threatexchange_csv_header() -> None:
    text = f"collab,signal_type,signal_str,category,tags\nSample,pdq,{PDQ_HEX},ADVERSARIAL,a b\n"
    assert parse(text, "csv") == [HashValue(PDQ, bytes.fromhex(PDQ_HEX))]


def test_csv_without_header_and_bad_header() -> None:
    assert parse(f"md5,{MD5_HEX}\n", "csv")[0].algorithm is MD5
    with pytest.raises(InvalidInput, match="no hash column"):
        parse("type,whatever\npdq,00\n", "csv")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pdq 00\n", "line 1: pdq hash must be 32 bytes"),
        (f"pdq {PDQ_HEX}\nsha1 00\n", "line 2: unknown hash type 'sha1'"),
        (f"md5 {'g' * 32}\n", "line 1: md5 hash"),
    ],
)
def test_bad_lines_name_their_number(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse(text)


@pytest.mark.parametrize("fmt", ["plain", "csv"])
def test_write_then_read_round_trips(fmt: str) -> None:
    hashes = [
        HashValue(PDQ, bytes.fromhex(PDQ_HEX)),
        HashValue(MD5, bytes.fromhex(MD5_HEX)),
    ]
    out = io.StringIO()
    assert write_hashes(out, hashes, fmt).count == 2
    assert parse(out.getvalue(), fmt) == hashes


def test_threatexchange_vpdq_lines_hold_json_with_blanks() -> None:
    """python-threatexchange prints a vpdq signal as its JSON list with a blank after
    each comma (json.dumps' default) and its times to 3 significant digits; the line's
    value runs to the closing bracket, and the collab and metadata after it are skipped."""
    frames = [FrameHash(bytes([n * 7 + 1]) * 16 + bytes([n * 11 + 2]) * 16, 80 + n, n * 1.001)
              for n in range(3)]  # fmt: skip
    signal_str = json.dumps([f"{f.pdq.hex()},{f.quality},{f.timestamp:.3}" for f in frames])
    assert ", " in signal_str
    text = f"vpdq {signal_str} 'Sample Signals' INVESTIGATION_SEED\n"
    [read] = parse(text)
    assert read.algorithm is VPDQ
    assert unpack(read.value) == [
        FrameHash(f.pdq, f.quality, float(f"{f.timestamp:.3}")) for f in frames
    ]
    assert parse(f"{signal_str} 'Sample Signals' {{}}\n", default=VPDQ) == [read]
    with pytest.raises(InvalidInput, match="line 1: vpdq JSON list has no closing"):
        parse('vpdq ["00,1,0.0", \n')
