"""Hash-list parsing in the shapes python-threatexchange's CLI and HMA exports produce."""

from __future__ import annotations

import io

import pytest

from service.domain import Algorithm, HashValue
from service.errors import InvalidInput
from service.hashlist import read_hashes, write_hashes

PDQ_HEX = "d8f8f0cce0f4a84f0e370a22028f67f0b36e2ed596623e1d33e6b39c4e9c9b22"
MD5_HEX = "0123456789abcdef0123456789abcdef"


def parse(text: str, fmt: str = "plain", default: Algorithm | None = None) -> list[HashValue]:
    return list(read_hashes(io.StringIO(text), fmt, default))


def test_plain_lines_with_comments_and_aliases() -> None:
    text = f"# list\n\npdq {PDQ_HEX}\nPHOTO_MD5 {MD5_HEX}\n  md5   {MD5_HEX.upper()}  \n"
    assert parse(text) == [
        HashValue(Algorithm.PDQ, bytes.fromhex(PDQ_HEX)),
        HashValue(Algorithm.MD5, bytes.fromhex(MD5_HEX)),
        HashValue(Algorithm.MD5, bytes.fromhex(MD5_HEX)),
    ]


def test_threatexchange_print_signals_with_collab_and_metadata() -> None:
    """`threatexchange dataset -P` prints 'collab' type hash metadata."""
    text = f"'Sample Data' pdq {PDQ_HEX} FetchedSignalMetadata(...)\n"
    assert parse(text) == [HashValue(Algorithm.PDQ, bytes.fromhex(PDQ_HEX))]


def test_hex_only_lines_need_a_type() -> None:
    assert parse(f"{PDQ_HEX}\n", default=Algorithm.PDQ)[0].hex == PDQ_HEX
    with pytest.raises(InvalidInput, match="line 1: expected '<type> <hex>'"):
        parse(f"{PDQ_HEX}\n")


def test_threatexchange_csv_header() -> None:
    text = f"collab,signal_type,signal_str,category,tags\nSample,pdq,{PDQ_HEX},ADVERSARIAL,a b\n"
    assert parse(text, "csv") == [HashValue(Algorithm.PDQ, bytes.fromhex(PDQ_HEX))]


def test_csv_without_header_and_bad_header() -> None:
    assert parse(f"md5,{MD5_HEX}\n", "csv")[0].algorithm is Algorithm.MD5
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
        HashValue(Algorithm.PDQ, bytes.fromhex(PDQ_HEX)),
        HashValue(Algorithm.MD5, bytes.fromhex(MD5_HEX)),
    ]
    out = io.StringIO()
    assert write_hashes(out, hashes, fmt) == 2
    assert parse(out.getvalue(), fmt) == hashes
