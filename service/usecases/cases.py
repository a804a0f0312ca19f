"""A victim's case: submit hashes (a submitter key), then follow or withdraw it with the
case token alone. Withdrawal stops the entries matching and erases their hash values."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from service import metrics
from service.access.auth import digest, new_case_token, require_role, same_secret
from service.domain import AuditEvent, CaseStatus, EntryRow, EntryState, HashValue, Principal, Role
from service.errors import InvalidInput, LimitExceeded, NotFound, QuotaExceeded, RefusedSubmission
from service.runtime import Runtime
from service.submission_checks import check_submission
from service.usecases.guards import MAX_ID, text

_NO_SUCH_TOKEN = digest("")  # compared against when the case id is unknown
_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class NewCase:
    case_id: str
    case_token: str  # shown once, stored only as a digest
    entry_count: int


class Cases:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def submit_case(self, principal: Principal, hashes: Sequence[HashValue]) -> NewCase:
        require_role(principal, Role.SUBMITTER)
        runtime, settings = self.runtime, self.runtime.settings
        runtime.limits.charge(principal)
        if not hashes:
            raise InvalidInput("a case needs at least one hash")
        if len(hashes) > settings.max_hashes_per_case:
            raise runtime.limits.refused(
                principal,
                LimitExceeded(
                    "hashes_per_case",
                    f"{len(hashes)} hashes is more than the {settings.max_hashes_per_case} "
                    "one case may hold; split them into several cases",
                ),
            )
        try:
            check_submission(hashes, settings.pdq_min_quality)
        except RefusedSubmission as exc:
            metrics.REFUSED_SUBMISSIONS.labels(exc.reason).inc()
            raise
        values = list(hashes)
        self._check_hourly_cases(principal, len(values))
        case_id, token, now = str(uuid.uuid4()), new_case_token(), time.time()
        audit = AuditEvent.by(
            principal, "case.submitted", f"case {case_id}", now, f"{len(values)} hashes"
        )
        ids = runtime.store.create_case(case_id, digest(token), principal.name, values, now, audit)
        runtime.follower.apply_local(
            [
                EntryRow(i, h.algorithm, h.value, EntryState.PENDING)
                for i, h in zip(ids, values, strict=True)
            ]
        )
        return NewCase(case_id, token, len(ids))

    def _check_hourly_cases(self, principal: Principal, adding: int) -> None:
        """The key's hourly quotas of cases and of hashes (a case may hold up to
        --max-hashes-per-case, so counting cases alone let one key add a million
        entries an hour); a key's own quotas (keys add --cases-per-hour ...) replace the
        server's. Counted from the store, so they hold across restarts and replicas (two
        submissions racing on different replicas may both pass at the boundary)."""
        settings = self.runtime.settings
        cases, hashes = settings.max_cases_per_hour, settings.max_hashes_per_hour
        if principal.cases_per_hour is not None:
            cases = principal.cases_per_hour
        if principal.hashes_per_hour is not None:
            hashes = principal.hashes_per_hour
        if cases == 0 and hashes == 0:
            return
        now = time.time()
        opened, oldest = self.runtime.store.cases_opened_since(principal.name, now - _HOUR)
        wait = max(1.0, (oldest or now) + _HOUR - now)
        if cases and opened >= cases:
            raise self.runtime.limits.refused(
                principal,
                QuotaExceeded(
                    "cases_per_hour",
                    f"key {principal.name!r} opened {opened} cases in the last hour, the "
                    f"most allowed; retry in {wait:.0f} s",
                    retry_after=wait,
                ),
            )
        if hashes and opened:
            self._check_hourly_hashes(principal, hashes, adding, wait)

    def _check_hourly_hashes(
        self, principal: Principal, most: int, adding: int, wait: float
    ) -> None:
        now = time.time()
        added = self.runtime.store.hashes_submitted_since(principal.name, now - _HOUR)
        if added + adding > most:
            raise self.runtime.limits.refused(
                principal,
                QuotaExceeded(
                    "hashes_per_hour",
                    f"key {principal.name!r} submitted {added} hashes in the last hour and "
                    f"this case holds {adding}; at most {most} an hour are allowed "
                    f"(max_hashes_per_hour): retry in {wait:.0f} s",
                    retry_after=wait,
                ),
            )

    def get_case(self, case_id: str, case_token: str) -> CaseStatus:
        """Counts only: never which platforms the matching uploads came from."""
        self._authorise_case(case_id, case_token)
        self.runtime.store.append_audit(_case_holder(case_id, "case.read"))
        return self.runtime.store.case_status(case_id)

    def withdraw_case(self, case_id: str, case_token: str) -> tuple[CaseStatus, int]:
        """Remove the case's entries from matching and erase their hash values.
        Withdrawing twice is harmless and withdraws nothing more."""
        self._authorise_case(case_id, case_token)
        audit = _case_holder(case_id, "case.withdrawn")
        withdrawn = self.runtime.store.withdraw_case(case_id, audit.at, audit)
        self.runtime.follower.apply_local(
            [e._replace(state=EntryState.WITHDRAWN) for e in withdrawn]
        )
        return self.runtime.store.case_status(case_id), len(withdrawn)

    def _authorise_case(self, case_id: str, case_token: str) -> None:
        if not case_id or not case_token:
            raise InvalidInput("case_id and case_token are both required")
        text("case_id", case_id, MAX_ID)
        text("case_token", case_token, MAX_ID)
        auth = self.runtime.store.get_case_auth(case_id)
        # One message and the same work for both failures, so case ids cannot be probed
        # without their token.
        stored = auth.token_hash if auth is not None else _NO_SUCH_TOKEN
        if not same_secret(case_token, stored) or auth is None:
            raise NotFound("no case with that id and token")


def _case_holder(case_id: str, action: str) -> AuditEvent:
    """Case-token calls have no key: the audit names the case, never the token."""
    return AuditEvent("case-token", "case", "", action, f"case {case_id}", time.time())
