"""Victims' cases: the store's `CaseStore` noun. A case owns the list entries made from
its hashes; withdrawing it erases their values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import final

from service.domain import AuditEvent, CaseStatus, EntryRow, HashValue
from service.store.checks import require
from service.store.records import CaseAuth, NewCase


class CaseStore(ABC):
    @final
    def create_case(
        self,
        case_id: str,
        token_hash: bytes,
        submitted_by: str,
        hashes: Sequence[HashValue],
        now: float,
        audit: AuditEvent | None = None,
    ) -> list[int]:
        """Store the case and one pending entry per hash; returns the entry ids, in the
        order of `hashes`."""
        require(bool(case_id), "a case needs an id")
        require(bool(token_hash), f"case {case_id} has no token hash")
        require(bool(hashes), f"case {case_id} has no hashes")
        return self._create_case(
            NewCase(case_id, token_hash, submitted_by, tuple(hashes), now), audit
        )

    @final
    def get_case_auth(self, case_id: str) -> CaseAuth | None:
        return self._get_case_auth(case_id)

    @final
    def cases_opened_since(self, submitted_by: str, since: float) -> tuple[int, float | None]:
        """How many cases `submitted_by` opened at or after `since`, and when the oldest
        of them was opened (None if none): the submitter's hourly quota."""
        return self._cases_opened_since(submitted_by, since)

    @final
    def hashes_submitted_since(self, submitted_by: str, since: float) -> int:
        """How many hashes (entries) the cases `submitted_by` opened at or after `since`
        hold, withdrawn ones included: the submitter's hourly hash quota."""
        return self._hashes_submitted_since(submitted_by, since)

    @final
    def case_status(self, case_id: str) -> CaseStatus:
        """Raises NotFound for an unknown case."""
        return self._case_status(case_id)

    @final
    def withdraw_case(
        self, case_id: str, now: float, audit: AuditEvent | None = None
    ) -> list[EntryRow]:
        """Mark the case withdrawn, erase its hash values (tombstones remain) and close
        hits that matched only its entries. Returns the entries withdrawn now (their
        `value` is the erased one, so the caller can drop them from indexes); a case
        withdrawn before returns []. Raises NotFound for an unknown case."""
        return self._withdraw_case(case_id, now, audit)

    @abstractmethod
    def _create_case(self, case: NewCase, audit: AuditEvent | None) -> list[int]: ...

    @abstractmethod
    def _get_case_auth(self, case_id: str) -> CaseAuth | None: ...

    @abstractmethod
    def _cases_opened_since(self, submitted_by: str, since: float) -> tuple[int, float | None]: ...

    @abstractmethod
    def _hashes_submitted_since(self, submitted_by: str, since: float) -> int: ...

    @abstractmethod
    def _case_status(self, case_id: str) -> CaseStatus: ...

    @abstractmethod
    def _withdraw_case(
        self, case_id: str, now: float, audit: AuditEvent | None
    ) -> list[EntryRow]: ...
