"""The hash types the service knows: one explicit tuple, and the look-ups built from it.

Adding a type: a module beside this one, one line in SIGNALS, and its value in the proto
enum hashguard.v1.HashAlgorithm (docs/ARCHITECTURE.md, "Hash types"). `check_enum` runs
at start-up (server and CLI) and names what is missing when the two disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from service.errors import HashGuardError, InvalidInput
from service.signals.base import SignalType
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.pdq_window import PDQ_WINDOW
from service.signals.phash import PHASH
from service.signals.sha256 import SHA256
from service.signals.video_md5 import VIDEO_MD5
from service.signals.video_sha256 import VIDEO_SHA256
from service.signals.vpdq import VPDQ

SIGNALS: tuple[SignalType, ...] = (
    PDQ,
    PHASH,
    SHA256,
    MD5,
    PDQ_WINDOW,
    VIDEO_MD5,
    VIDEO_SHA256,
    VPDQ,
)

# Names python-threatexchange gives types HashGuard does not match (text, URLs, ...).
# A list import skips their lines and says how many; a name no one knows is still an
# error. A registered type claiming one of these names takes it over.
THREATEXCHANGE_OTHERS = frozenset(
    {"url", "url_md5", "raw_text", "trend_query", "text_tlsh", "pdq_ocr"}
)
UNSPECIFIED = "HASH_ALGORITHM_UNSPECIFIED"


class RegistryError(HashGuardError):
    """The registered types contradict each other or the proto enum: a mistake in the
    code, reported at start-up with what to change."""


class Registry:
    """Look-ups over a tuple of types: by name (any accepted spelling), by proto enum name."""

    def __init__(self, signals: Sequence[SignalType]) -> None:
        self.signals = tuple(signals)
        self.by_name = {s.name: s for s in self.signals}  # our names: the store, snapshots
        self._names: dict[str, SignalType] = {}
        for signal in self.signals:
            own = (signal.name, *signal.aliases)
            theirs = (signal.threatexchange_name,) if signal.threatexchange_name else ()
            for name in {n.lower() for n in (*own, *theirs)}:
                self._claim(self._names, name, signal)
        fallbacks: dict[str, SignalType] = {}
        for signal in self.signals:
            for name in signal.threatexchange_fallbacks:
                if name.lower() not in self._names:
                    self._claim(fallbacks, name.lower(), signal)
        self._names |= fallbacks
        self._proto: dict[str, SignalType] = {}
        for signal in self.signals:
            self._claim(self._proto, signal.proto_name, signal)

    @staticmethod
    def _claim(table: dict[str, SignalType], name: str, signal: SignalType) -> None:
        other = table.setdefault(name, signal)
        if other is not signal:
            raise RegistryError(
                f"hash types {other.name!r} and {signal.name!r} both claim the name {name!r}"
            )

    def __iter__(self) -> Iterator[SignalType]:
        return iter(self.signals)

    def __len__(self) -> int:
        return len(self.signals)

    def parse_name(self, text: str) -> SignalType:
        """The type a list file or a command names: ours, an alias, or Meta's name."""
        found = self._names.get(text) or self._names.get(text.strip().lower())
        if found is None:
            known = ", ".join(s.name for s in self.signals)
            raise InvalidInput(f"unknown hash type {text!r}; expected one of {known}")
        return found

    def names_for_commands(self) -> list[str]:
        """What `--type` accepts: our names, then python-threatexchange's for our types."""
        theirs = {n for n, s in self._names.items() if n not in self.by_name}
        theirs &= {s.threatexchange_name for s in self.signals} | {
            n for s in self.signals for n in s.threatexchange_fallbacks
        }
        return [*self.by_name, *sorted(theirs)]

    def knows(self, text: str) -> bool:
        return text.strip().lower() in self._names

    def is_threatexchange_other(self, text: str) -> bool:
        """A python-threatexchange type this registry does not match (skipped on import)."""
        name = text.strip().lower()
        return name in THREATEXCHANGE_OTHERS and name not in self._names

    def by_proto_name(self, name: str) -> SignalType:
        return self._proto[name]

    def check_enum(self, enum_names: Iterable[str]) -> None:
        """Raise RegistryError unless every value of the proto enum (but UNSPECIFIED) has
        exactly one registered type and every type names a value of the enum."""
        in_enum = set(enum_names) - {UNSPECIFIED}
        problems = [
            f"{name} has no hash type: add a module to service/signals/ and its line to "
            "SIGNALS in service/signals/registry.py (docs/ARCHITECTURE.md, 'Hash types')"
            for name in sorted(in_enum - self._proto.keys())
        ] + [
            f"hash type {self._proto[name].name!r} names {name}, which the enum lacks: add it "
            "to proto/hashguard/v1/hashguard.proto and run scripts/gen_proto.sh"
            for name in sorted(self._proto.keys() - in_enum)
        ]
        if problems:
            raise RegistryError(
                "the hash types and the proto enum hashguard.v1.HashAlgorithm disagree: "
                + "; ".join(problems)
            )


REGISTRY = Registry(SIGNALS)


def parse_name(text: str) -> SignalType:
    """REGISTRY.parse_name: the type a list file or a command names."""
    return REGISTRY.parse_name(text)
