"""The list and its change log: the store's `EntryLog` noun. Every change to the list
(entries added, vetted, withdrawn) appends to the change log in the same transaction,
which is how every replica's in-memory list follows the store (docs/DEPLOY.md, "How
replicas converge")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import final

from service.domain import AuditEvent, EntryRow, EntryState, HashValue
from service.signals.base import SignalType
from service.store.checks import positive, require
from service.store.records import ChangeHead, ImportResult


class EntryLog(ABC):
    @final
    def iter_entries(
        self, states: Sequence[EntryState], batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        """Entries in the given states, in id order, in batches."""
        require(bool(states), "iter_entries needs at least one entry state")
        positive("batch_size", batch_size)
        return self._iter_entries(states, batch_size)

    @final
    def import_entries(
        self,
        hashes: Iterable[HashValue],
        vetted: bool,
        now: float,
        audit: AuditEvent | None = None,
    ) -> ImportResult:
        """Add list entries with no case, in one transaction. Re-importing a value is a
        no-op, except that `vetted` vets an imported entry still pending."""
        return self._import_entries(hashes, vetted, now, audit)

    @final
    def count_entries(self) -> dict[tuple[SignalType, EntryState], int]:
        return self._count_entries()

    @abstractmethod
    def store_id(self) -> str:
        """A random id made when the database was created: names it for snapshots."""

    @final
    def change_head(self, after: int) -> ChangeHead:
        """The newest committed change. Every change up to it is committed too."""
        return self._change_head(after)

    @final
    def changed_entries(
        self, after: int, upto: int, batch_size: int = 100_000
    ) -> Iterator[list[EntryRow]]:
        """Entries whose last change lies in (after, upto], in their current state
        (withdrawn ones with an empty value), in batches. An entry changed again while
        this runs moves past `upto` and shows up in the next call instead."""
        positive("batch_size", batch_size)
        return self._changed_entries(after, upto, batch_size)

    @final
    def vet_distances(self) -> dict[int, int]:
        """The vetted entries whose vet_distance is not 0, with it (few: those vetted by
        confirmations), for a replica's list at start."""
        return self._vet_distances()

    @final
    def withdrawn_since(self, after: int) -> bool:
        """Whether a case was withdrawn after change `after` (snapshots then rewrite)."""
        return self._withdrawn_since(after)

    signals_changes = False  # whether wait_for_change can be woken by a commit

    def wait_for_change(self, timeout: float) -> bool:
        """Block until a change may have been committed (True) or `timeout` passes
        (False). A store that cannot signal changes returns False at once."""
        return False

    @abstractmethod
    def _iter_entries(
        self, states: Sequence[EntryState], batch_size: int
    ) -> Iterator[list[EntryRow]]: ...

    @abstractmethod
    def _import_entries(
        self, hashes: Iterable[HashValue], vetted: bool, now: float, audit: AuditEvent | None
    ) -> ImportResult: ...

    @abstractmethod
    def _count_entries(self) -> dict[tuple[SignalType, EntryState], int]: ...

    @abstractmethod
    def _change_head(self, after: int) -> ChangeHead: ...

    @abstractmethod
    def _changed_entries(
        self, after: int, upto: int, batch_size: int
    ) -> Iterator[list[EntryRow]]: ...

    @abstractmethod
    def _withdrawn_since(self, after: int) -> bool: ...

    @abstractmethod
    def _vet_distances(self) -> dict[int, int]: ...
