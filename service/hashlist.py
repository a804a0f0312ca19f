"""Hash-list files in the plain formats Meta's HMA and ThreatExchange tools exchange.

Plain text: one `<type> <hex>` per line (`pdq 3f0a...`), as python-threatexchange's
`threatexchange dataset -P -S` prints it; a leading quoted collaboration name (its `-P`
without `-S`) and trailing fields are skipped; with `default_type` a line may be the hex
alone (its output filtered to one signal type). Blank lines and `#` comments are ignored.
CSV: a header row naming a type column (type, signal_type, algorithm) and a hash column
(hash, signal_str, signal, value) as in `threatexchange dataset -P --csv`, or no header
with type first and hash second.
Both are read and written as streams, so lists of millions never sit in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO

from service.domain import Algorithm, HashValue, parse_hex_hash
from service.errors import InvalidInput

FORMATS = ("plain", "csv")
_TYPE_COLUMNS = ("type", "signal_type", "algorithm", "hash_type")
_HASH_COLUMNS = ("hash", "signal_str", "signal", "value", "signal_value", "hex")


def detect_format(path: str, requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    return "csv" if path.lower().endswith(".csv") else "plain"


def read_hashes(
    lines: Iterable[str], fmt: str, default_type: Algorithm | None = None
) -> Iterator[HashValue]:
    """Parse a list; a bad line raises InvalidInput naming its line number."""
    if fmt == "csv":
        yield from _read_csv(lines)
    else:
        yield from _read_plain(lines, default_type)


def _read_plain(lines: Iterable[str], default_type: Algorithm | None) -> Iterator[HashValue]:
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text[0] in "'\"":  # a collaboration name, quoted by threatexchange's CLI
            text = text[text.find(text[0], 1) + 1 :].strip()
        parts = text.split()
        if len(parts) == 1 and default_type is not None:
            yield _parse(number, default_type.value, parts[0])
        elif len(parts) >= 2:
            yield _parse(number, parts[0], parts[1])
        else:
            raise InvalidInput(f"line {number}: expected '<type> <hex>', got {text[:80]!r}")


def _read_csv(lines: Iterable[str]) -> Iterator[HashValue]:
    rows = csv.reader(lines)
    type_col, hash_col = 0, 1
    for number, row in enumerate(rows, 1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and not _is_algorithm(row[0]):
            header = [c.strip().lower() for c in row]
            type_col = _column(header, _TYPE_COLUMNS, "type")
            hash_col = _column(header, _HASH_COLUMNS, "hash")
            continue
        if len(row) <= max(type_col, hash_col):
            raise InvalidInput(f"line {number}: expected a type and a hash column")
        yield _parse(number, row[type_col], row[hash_col])


def _column(header: list[str], names: tuple[str, ...], what: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise InvalidInput(f"CSV header has no {what} column (one of {', '.join(names)})")


def _is_algorithm(text: str) -> bool:
    try:
        Algorithm.parse(text)
    except InvalidInput:
        return False
    return True


def _parse(number: int, type_text: str, hex_text: str) -> HashValue:
    try:
        algorithm = Algorithm.parse(type_text)
        return HashValue(algorithm, parse_hex_hash(algorithm, hex_text))
    except InvalidInput as exc:
        raise InvalidInput(f"line {number}: {exc}") from None


def write_hashes(out: IO[str], hashes: Iterable[HashValue], fmt: str) -> int:
    """Write a list; returns how many hashes were written."""
    count = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["type", "hash"])
        for h in hashes:
            writer.writerow([h.algorithm.value, h.hex])
            count += 1
        return count
    for h in hashes:
        out.write(f"{h.algorithm.value} {h.hex}\n")
        count += 1
    return count
