"""Hash-list files in the plain formats Meta's HMA and ThreatExchange tools exchange.

Plain text: one `<type> <hex>` per line (`pdq 3f0a...`; a vpdq value is
python-threatexchange's JSON list, `vpdq ["<hex>,<quality>,<seconds>", ...]`), trailing
fields skipped: what
python-threatexchange's `threatexchange dataset -P` prints (`<type> <signal> '<collab>'
<metadata>`, or `<type> <signal>` with `-S`), and what its `local_file` collaborations
read. With `-s TYPE` it leaves the type out (`<signal> '<collab>' <metadata>`): such a
list is read with `default_type` (`hashguard import --type TYPE`). Blank lines and `#`
comments are ignored.
CSV: a header row naming a type column (type, signal_type, algorithm) and a hash column
(hash, signal_str, signal, value) as in `threatexchange dataset -P --csv`, or no header
with type first and hash second.
Type names are each hash type's own, its aliases and python-threatexchange's
(service/signals); lines of the types python-threatexchange has and HashGuard does not
match (url, raw_text, ...) are skipped and counted, so its full `dataset` export imports.
Both are read and written as streams, so lists of millions never sit in memory.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from service.domain import HashValue
from service.errors import InvalidInput
from service.signals.base import SignalType
from service.signals.registry import REGISTRY, Registry

# "threatexchange" writes only the types python-threatexchange reads, in its names.
FORMATS = ("plain", "csv", "threatexchange")
READ_FORMATS = ("plain", "csv")
_TYPE_COLUMNS = ("type", "signal_type", "algorithm", "hash_type")
_HASH_COLUMNS = ("hash", "signal_str", "signal", "value", "signal_value", "hex")


def detect_format(path: str, requested: str = "auto") -> str:
    if requested != "auto":
        return requested
    return "csv" if path.lower().endswith(".csv") else "plain"


def read_hashes(
    lines: Iterable[str],
    fmt: str,
    default_type: SignalType | None = None,
    skipped: Counter[str] | None = None,
    registry: Registry = REGISTRY,
) -> Iterator[HashValue]:
    """Parse a list; a bad line raises InvalidInput naming its line number. Lines of
    python-threatexchange types HashGuard does not match are counted in `skipped`."""
    reader = _Reader(registry, Counter() if skipped is None else skipped)
    if fmt == "csv":
        yield from reader.csv(lines)
    else:
        yield from reader.plain(lines, default_type)


@dataclass
class _Reader:
    registry: Registry
    skipped: Counter[str]

    def plain(self, lines: Iterable[str], default_type: SignalType | None) -> Iterator[HashValue]:
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split(maxsplit=1)
            first = parts[0]
            if self.registry.knows(first):
                value = self._value_text(number, self.registry.parse_name(first), parts[1:])
                if not value:
                    raise InvalidInput(f"line {number}: expected '<type> <hex>', got {text[:80]!r}")
                yield self._parse(number, first, value)
            elif self.registry.is_threatexchange_other(first):
                self.skipped[first.lower()] += 1
            elif default_type is not None:  # `dataset -P -s TYPE`: the hash first
                value = self._value_text(number, default_type, [text])
                yield self._parse(number, default_type.name, value)
            elif _is_hex(first):
                raise InvalidInput(
                    f"line {number}: expected '<type> <hex>', got {text[:80]!r}; a list of one "
                    "type (threatexchange dataset -P -s TYPE) is imported with --type TYPE"
                )
            elif len(parts) == 1:
                raise InvalidInput(f"line {number}: expected '<type> <hex>', got {text[:80]!r}")
            else:
                self._parse(number, first, "")  # raises: unknown hash type

    def csv(self, lines: Iterable[str]) -> Iterator[HashValue]:
        rows = csv.reader(lines)
        type_col, hash_col = 0, 1
        for number, row in enumerate(rows, 1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if number == 1 and not self.registry.knows(row[0]):
                header = [c.strip().lower() for c in row]
                type_col = _column(header, _TYPE_COLUMNS, "type")
                hash_col = _column(header, _HASH_COLUMNS, "hash")
                continue
            if len(row) <= max(type_col, hash_col):
                raise InvalidInput(f"line {number}: expected a type and a hash column")
            if self.registry.is_threatexchange_other(row[type_col]):
                self.skipped[row[type_col].strip().lower()] += 1
                continue
            yield self._parse(number, row[type_col], row[hash_col])

    @staticmethod
    def _value_text(number: int, signal: SignalType, rest: list[str]) -> str:
        """The value's text at the start of `rest` (a type says where its text ends:
        python-threatexchange writes a vpdq value as JSON with blanks in it)."""
        try:
            return signal.take_text(rest[0])[0] if rest else ""
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc}") from None

    def _parse(self, number: int, type_text: str, hex_text: str) -> HashValue:
        try:
            signal = self.registry.parse_name(type_text)
            return HashValue(signal, signal.parse(hex_text))
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc}") from None


def _column(header: list[str], names: tuple[str, ...], what: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise InvalidInput(f"CSV header has no {what} column (one of {', '.join(names)})")


def _is_hex(text: str) -> bool:
    return len(text) >= 16 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass
class Written:
    """What `write_hashes` wrote: how many lines, and per type how many hashes of types
    python-threatexchange cannot read (written in plain and CSV, left out in
    "threatexchange")."""

    count: int = 0
    unreadable_by_threatexchange: Counter[str] = field(default_factory=Counter)


def write_hashes(out: IO[str], hashes: Iterable[HashValue], fmt: str) -> Written:
    """Write a list in `fmt` (one of FORMATS)."""
    written = Written()
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(["type", "hash"])
    for h in hashes:
        theirs = h.algorithm.threatexchange_name
        if theirs is None:
            written.unreadable_by_threatexchange[h.algorithm.name] += 1
            if fmt == "threatexchange":
                continue
        name = theirs if fmt == "threatexchange" and theirs else h.algorithm.name
        if writer is not None:
            writer.writerow([name, h.algorithm.format(h.value)])
        else:
            out.write(f"{name} {h.algorithm.format(h.value)}\n")
        written.count += 1
    return written
