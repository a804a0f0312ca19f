"""The web tier's only way to the service: the public gRPC contract, through service.client.

Calls are blocking (the pages run them in Starlette's thread pool). Replies become plain
dataclasses for the templates; gRPC errors become PageError with words for a person,
never a stack trace or the service's internals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import grpc
from hashguard.v1 import hashguard_pb2 as pb

from service.client import Client
from service.client.tls import ClientTls
from service.errors import InvalidInput
from service.signals.base import SignalType
from service.signals.md5 import MD5
from service.signals.pdq import PDQ
from service.signals.pdq_window import PDQ_WINDOW
from service.signals.phash import PHASH
from service.signals.registry import REGISTRY
from service.signals.sha256 import SHA256
from service.signals.video_md5 import VIDEO_MD5
from service.signals.video_sha256 import VIDEO_SHA256
from service.signals.vpdq import VPDQ
from service.web.i18n import translate

# The hashes the victim page computes, the same set as `hashguard hash`: for a photo PDQ
# (with quality), its sub-windows, pHash, and SHA-256 and MD5 of the file's bytes; for a
# video its vPDQ (hex of the frame records), and SHA-256 and MD5 of the file's bytes.
BROWSER_ALGORITHMS: dict[SignalType, pb.HashAlgorithm] = {
    s: cast(pb.HashAlgorithm, pb.HashAlgorithm.Value(s.proto_name))
    for s in (PDQ, PDQ_WINDOW, PHASH, SHA256, MD5, VPDQ, VIDEO_SHA256, VIDEO_MD5)
}
# ListHits pages while counting; past this many hits a count is shown as "N+".
COUNT_LIMIT = 5000
_PAGE = 500
# The disputed page shows at most this many entries (the oldest first, as the service lists).
DISPUTED_LIMIT = 200


class PageError(Exception):
    """A call failed in a way the page explains: `key` names the words in the pages'
    catalogue (service/web/locales), `params` fill them; `status` is the HTTP status,
    `retry_after` the seconds after which trying again can work (a Retry-After header)."""

    def __init__(
        self, key: str, status: int = 400, retry_after: float | None = None, **params: Any
    ) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.retry_after = retry_after
        self.params = params

    def text(self, lang: str) -> str:
        return translate(lang, self.key, **self.params)


def busy(key: str, wait: float) -> PageError:
    """A refusal that says what happened, that nothing was sent and when to retry (in
    whole minutes): `key` is one of err.visitor_busy, err.page_busy, err.service_busy,
    err.case_reads_busy (plural forms in the catalogues)."""
    return PageError(key, 429, retry_after=wait, count=max(1, math.ceil(wait / 60)))


@dataclass(frozen=True, slots=True)
class NewCase:
    case_id: str
    case_token: str
    entry_count: int


@dataclass(frozen=True, slots=True)
class CaseStatus:
    case_id: str
    withdrawn: bool
    created_at: datetime
    entries_pending: int
    entries_vetted: int
    entries_withdrawn: int
    hits_total: int
    hits_confirmed: int


@dataclass(frozen=True, slots=True)
class MatchView:
    """One entry a hit's upload matched: which part of the upload, how close."""

    entry_id: int
    algorithm: str
    part: str  # whole, dihedral, inner, strip, rotated, panel, segment
    partial: bool
    region: str  # where in the upload that part is ("x 52-98 %, y 0-48 %"), or ""
    distance: int
    entry_state: str
    # a video's matched seconds: (upload start, upload end, listed start, listed end)
    span: tuple[float, float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class HitView:
    hit_id: str
    operator: str
    content_ref: str
    created_at: datetime
    algorithm: str  # of the closest match
    distance: int
    entry_states: str
    matches: tuple[MatchView, ...] = ()

    @property
    def partial_matches(self) -> int:
        """Entries matched only by a part of the upload: a confirmation vets them only
        when the moderator ticks the box for them."""
        return sum(1 for m in self.matches if m.partial)


@dataclass(frozen=True, slots=True)
class DisputedView:
    entry_id: int
    algorithm: str
    disputed_at: datetime
    rejecting_tenants: int
    confirming_tenants: int


@dataclass(frozen=True, slots=True)
class HitCounts:
    pending: str
    confirmed: str
    rejected: str


class Backend:
    """One channel to the service; the submitter key is the web tier's own, moderator keys
    come from each signed-in moderator's session."""

    def __init__(
        self,
        target: str,
        submitter_key: str = "",
        timeout: float = 10.0,
        tls: ClientTls | None = None,
    ) -> None:
        self.client = Client(target, timeout=timeout, tls=tls)
        self.submitter_key = submitter_key

    def close(self) -> None:
        self.client.close()

    # -- victims ----------------------------------------------------------------------

    @property
    def accepts_submissions(self) -> bool:
        return bool(self.submitter_key)

    def submit_case(self, hashes: Sequence[tuple[SignalType, bytes, int]]) -> NewCase:
        """(algorithm, value, quality) triples, already checked by parse_browser_hashes."""
        if not self.submitter_key:
            raise PageError("err.closed", 503)
        request = pb.SubmitCaseRequest(
            hashes=[
                pb.Hash(algorithm=BROWSER_ALGORITHMS[a], value=v, quality=q) for a, v, q in hashes
            ]
        )
        reply = self._call(self.client.submission.SubmitCase, request, self.submitter_key)
        return NewCase(reply.case_id, reply.case_token, reply.entry_count)

    def case_status(self, case_id: str, token: str) -> CaseStatus:
        reply = self._call(
            self.client.submission.GetCase,
            pb.GetCaseRequest(case_id=case_id.strip(), case_token=token.strip()),
        )
        return CaseStatus(
            case_id=reply.case_id,
            withdrawn=reply.state == pb.CASE_STATE_WITHDRAWN,
            created_at=reply.created_at.ToDatetime(),
            entries_pending=reply.entries_pending,
            entries_vetted=reply.entries_vetted,
            entries_withdrawn=reply.entries_withdrawn,
            hits_total=reply.hits_total,
            hits_confirmed=reply.hits_confirmed,
        )

    def withdraw_case(self, case_id: str, token: str) -> int:
        """Returns how many fingerprints were withdrawn."""
        reply = self._call(
            self.client.submission.WithdrawCase,
            pb.WithdrawCaseRequest(case_id=case_id.strip(), case_token=token.strip()),
        )
        return int(reply.entries_withdrawn)

    # -- moderators -------------------------------------------------------------------

    def check_moderator(self, key: str) -> None:
        """Raises PageError unless `key` may review hits."""
        self._call(self.client.review.ListHits, pb.ListHitsRequest(page_size=1), key)

    def pending_hits(self, key: str, limit: int = 50) -> list[HitView]:
        """The newest pending hits (the service lists newest first)."""
        reply = self._call(
            self.client.review.ListHits,
            pb.ListHitsRequest(state=pb.HIT_STATE_PENDING, page_size=limit),
            key,
        )
        return [_hit_view(hit) for hit in reply.hits]

    def hit_counts(self, key: str) -> HitCounts:
        """Counted by paging ListHits (the contract has no count call), up to COUNT_LIMIT."""
        return HitCounts(
            pending=self._count(key, pb.HIT_STATE_PENDING),
            confirmed=self._count(key, pb.HIT_STATE_CONFIRMED),
            rejected=self._count(key, pb.HIT_STATE_REJECTED),
        )

    def resolve_hit(
        self, key: str, hit_id: str, confirm: bool, note: str, vet_partial: bool = False
    ) -> None:
        verdict = pb.VERDICT_CONFIRMED if confirm else pb.VERDICT_REJECTED
        self._call(
            self.client.review.ResolveHit,
            pb.ResolveHitRequest(
                hit_id=hit_id,
                verdict=verdict,
                note=note,
                vet_partial_matches=confirm and vet_partial,
            ),
            key,
        )

    def disputed_entries(self, key: str) -> list[DisputedView]:
        """Entries that moderators of several platforms rejected (admin keys only: any
        other key gets PageError 403)."""
        reply = self._call(
            self.client.review.ListDisputedEntries,
            pb.ListDisputedEntriesRequest(page_size=DISPUTED_LIMIT),
            key,
        )
        return [
            DisputedView(
                entry_id=entry.entry_id,
                algorithm=_algorithm_name(entry.algorithm),
                disputed_at=entry.disputed_at.ToDatetime(),
                rejecting_tenants=entry.rejecting_tenants,
                confirming_tenants=entry.confirming_tenants,
            )
            for entry in reply.entries
        ]

    def _count(self, key: str, state: Any) -> str:
        total, token = 0, ""
        while total < COUNT_LIMIT:
            reply = self._call(
                self.client.review.ListHits,
                pb.ListHitsRequest(state=state, page_size=_PAGE, page_token=token),
                key,
            )
            total += len(reply.hits)
            token = reply.next_page_token
            if not token:
                return str(total)
        return f"{total}+"

    def _call(self, method: Any, request: Any, key: str = "") -> Any:
        if key and not (key.isascii() and key.isprintable() and len(key) <= 256):
            # no key looks like this, and gRPC metadata could not even carry it
            raise PageError(*_MESSAGES[grpc.StatusCode.UNAUTHENTICATED])
        metadata = (("authorization", f"Bearer {key}"),) if key else ()
        try:
            return method(request, metadata=metadata, timeout=self.client.timeout)
        except grpc.RpcError as exc:
            raise _page_error(exc) from None


def parse_browser_hashes(items: object, most: int) -> list[tuple[SignalType, bytes, int]]:
    """The JSON the victim page sends: [{"algorithm", "hex", "quality"}], the algorithm
    one of BROWSER_ALGORITHMS by its name (pdq, pdq-window, phash, sha256, md5, vpdq,
    video-sha256, video-md5)."""
    if not isinstance(items, list) or not items:
        raise PageError("err.no_hashes")
    if len(items) > most:
        raise PageError("err.too_many", 413, most=most)
    parsed: list[tuple[SignalType, bytes, int]] = []
    for item in items:
        try:
            algorithm = REGISTRY.by_name[item["algorithm"]]
            value = algorithm.validate(bytes.fromhex(item["hex"]))
            quality = int(item.get("quality", 0))
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            InvalidInput,
        ) as exc:
            # the reason, cut short: it may quote what was sent
            raise PageError("err.bad_form_detail", detail=str(exc)[:100]) from None
        if algorithm not in BROWSER_ALGORITHMS or not 0 <= quality <= 100:
            raise PageError("err.bad_form")
        parsed.append((algorithm, value, quality))
    return parsed


_MESSAGES = {
    grpc.StatusCode.NOT_FOUND: ("err.not_found", 404),
    grpc.StatusCode.UNAUTHENTICATED: ("err.bad_key", 401),
    grpc.StatusCode.PERMISSION_DENIED: ("err.forbidden", 403),
    grpc.StatusCode.FAILED_PRECONDITION: ("err.done_already", 409),
    grpc.StatusCode.UNAVAILABLE: ("err.unavailable", 503),
    grpc.StatusCode.DEADLINE_EXCEEDED: ("err.timeout", 504),
}


def _page_error(exc: grpc.RpcError) -> PageError:
    code = exc.code()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return _busy(exc)
    if code in _MESSAGES:
        key, status = _MESSAGES[code]
        return PageError(key, status)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return PageError("err.refused", 400, detail=exc.details() or "")
    return PageError("err.internal", 502)


def _hit_view(hit: Any) -> HitView:
    best = min(hit.matches, key=lambda m: m.distance, default=None)
    algorithm = _algorithm_name(best.algorithm) if best else ""
    states = sorted(
        {pb.EntryState.Name(m.entry_state).removeprefix("ENTRY_STATE_") for m in hit.matches}
    )
    return HitView(
        hit_id=hit.hit_id,
        operator=hit.operator,
        content_ref=hit.content_ref,
        created_at=hit.created_at.ToDatetime(),
        algorithm=algorithm,
        distance=best.distance if best else 0,
        entry_states=", ".join(s.lower() for s in states),
        matches=tuple(
            MatchView(
                entry_id=m.entry_id,
                algorithm=_algorithm_name(m.algorithm),
                part=pb.MatchPart.Name(m.part).removeprefix("MATCH_PART_").lower(),
                partial=m.partial,
                region=m.region,
                distance=m.distance,
                entry_state=pb.EntryState.Name(m.entry_state).removeprefix("ENTRY_STATE_").lower(),
                span=_span(m),
            )
            for m in hit.matches
        ),
    )


def _span(match: pb.Match) -> tuple[float, float, float, float] | None:
    if not match.HasField("span"):
        return None
    s = match.span
    return (
        s.upload_start_seconds,
        s.upload_end_seconds,
        s.listed_start_seconds,
        s.listed_end_seconds,
    )


def _algorithm_name(value: int) -> str:
    return pb.HashAlgorithm.Name(value).removeprefix("HASH_ALGORITHM_")


def _busy(exc: grpc.RpcError) -> PageError:
    """RESOURCE_EXHAUSTED: the web tier's key used up a quota shared by every visitor
    (cases or hashes per hour), or a rate limit; the service says when to retry."""
    trailers: Any = exc.trailing_metadata() or ()
    retry_ms = next((str(value) for name, value in trailers if name == "retry-after-ms"), None)
    try:
        wait = max(1.0, int(retry_ms) / 1000) if retry_ms is not None else 300.0
    except ValueError:
        wait = 300.0
    quota = "per_hour" in (exc.details() or "") or "in the last hour" in (exc.details() or "")
    return busy("err.page_busy" if quota else "err.service_busy", wait)
