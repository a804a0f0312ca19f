"""The use cases: check an upload, submit/follow/withdraw a case, review hits.

The one place that combines hashing, matcher, policy and store. Order of work for every
change: commit to the store first (with its change-log row), then apply it to this
replica's matcher at once, so nothing the caller was told is done can be lost by a
crash and the caller reads its own write. Other replicas apply it through their
change-log follower (service/replica), which applies it here again, harmlessly.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from service import metrics
from service.access.auth import (
    digest,
    new_case_token,
    require_role,
    same_secret,
    split_api_key,
)
from service.access.limits import Limits
from service.config import Settings, parse_rate_limits
from service.domain import (
    AuditEvent,
    CaseStatus,
    Decision,
    DisputedEntry,
    EntryRow,
    EntryState,
    HashValue,
    Hit,
    HitState,
    Match,
    MatchPart,
    Principal,
    Query,
    Role,
    Verdict,
)
from service.errors import (
    InvalidInput,
    LimitExceeded,
    NotFound,
    QuotaExceeded,
    RefusedSubmission,
    Unauthenticated,
    Unavailable,
)
from service.matcher import Matcher
from service.media.decode import decode_image, decoded_pixels
from service.policy import Thresholds, asks_review, best_per_entry, decide
from service.replica.follower import Follower
from service.replica.snapshot import SnapshotWriter
from service.replica.startup import load_matcher
from service.signals.base import CheckOptions, HashOptions
from service.signals.photo import Photo
from service.signals.registry import SIGNALS
from service.store import ApiKeyRecord, PriorHit, ReviewRules, Store
from service.submission_checks import check_submission

log = logging.getLogger("hashguard.app")

MAX_CONTENT_REF = 1024
MAX_NOTE = 4096
MAX_HASHES_PER_CHECK = 64
DEFAULT_PAGE_SIZE = 50
_NO_SUCH_TOKEN = digest("")  # compared against when the case id is unknown
MAX_PAGE_SIZE = 500
_STORE_RETRY_SECONDS = 5.0
_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    decision: Decision
    matches: list[Match]
    computed: list[HashValue] = field(default_factory=list)
    hit_id: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MatchedUpload:
    """A check between its two halves: matched (no I/O), not yet recorded."""

    principal: Principal
    content_ref: str
    matches: list[Match]
    computed: list[HashValue]
    notes: list[str]
    decision: Decision  # before disputes and prior verdicts, which need the store

    @property
    def needs_store(self) -> bool:
        return self.decision is Decision.REVIEW


@dataclass(frozen=True, slots=True)
class NewCase:
    case_id: str
    case_token: str  # shown once, stored only as a digest
    entry_count: int


class HashGuard:
    def __init__(self, store: Store, settings: Settings, snapshots: Path | None = None) -> None:
        """Load the list (from the index snapshot in `snapshots` when one checks out,
        else from the store) and catch up with the change log. `start_background` then
        keeps the list current in the background."""
        self.store = store
        self.settings = settings
        self.matcher = Matcher(Thresholds.from_settings(settings))
        # What the hash types' query methods read from the settings (service/signals).
        self._check_options = CheckOptions(bool(settings.crop_matching), settings.pdq_min_quality)
        self._shown = HashOptions(settings.pdq_min_quality, windows=False)
        metrics.INDEX_STATS.watch(self.matcher.index_stats)
        seq, self.loaded_from = load_matcher(store, self.matcher, snapshots)
        self.follower = Follower(
            store, self.matcher, seq, settings.follow_interval, on_change=self._refresh_gauges
        )
        self.snapshots: SnapshotWriter | None = None
        if snapshots is not None and settings.snapshot_interval > 0:
            on_disk = seq if self.loaded_from == "snapshot" else -1
            self.snapshots = SnapshotWriter(store, snapshots, settings.snapshot_interval, on_disk)
        self.follower.catch_up()
        self._refresh_gauges()
        self._pending_hits = 0.0
        # key id -> (record, time.monotonic() when read)
        self._known_keys: dict[str, tuple[ApiKeyRecord, float]] = {}
        self._store_down_until = 0.0
        self.limits = Limits(
            parse_rate_limits(settings.rate_limits),
            settings.max_stream_items,
            settings.decode_budget_pixels,
        )
        metrics.PENDING_HITS.set_function(self.count_pending_hits)

    def start_background(self) -> None:
        """Follow the change log and keep the index snapshot fresh, in threads."""
        self.follower.start()
        if self.snapshots is not None:
            self.snapshots.start()

    def stop_background(self) -> None:
        self.follower.stop()
        if self.snapshots is not None:
            self.snapshots.stop()
            self.snapshots.write_at_shutdown()

    # -- authentication -------------------------------------------------------------------

    def authenticate(self, api_key: str | None) -> Principal:
        """The key's principal; reads the key's record from the store (blocking I/O)
        unless `cached_principal` can answer from a recent read."""
        principal = self.cached_principal(api_key)
        if principal is not None:
            return principal
        assert api_key  # cached_principal refused a missing one
        return self.reread_principal(api_key)

    def reread_principal(self, api_key: str) -> Principal:
        """The key's principal from its record read from the store now (blocking I/O),
        which also refreshes the key cache."""
        return self._principal(api_key, self._api_key_record(split_api_key(api_key)))

    def cached_principal(self, api_key: str | None) -> Principal | None:
        """The key's principal from a record read within `key_cache_seconds`, without
        touching the store (so the event loop may call it); None when the store must be
        asked. A revoked or rotated key therefore stops working on a running server
        within that many seconds; a rotated key's new secret works at once."""
        if not api_key:
            raise Unauthenticated("missing API key: send metadata 'authorization: Bearer <key>'")
        cached = self._known_keys.get(split_api_key(api_key))
        if cached is None:
            return None
        record, read_at = cached
        now = time.monotonic()
        if now - read_at >= self.settings.key_cache_seconds and now >= self._store_down_until:
            return None
        if not same_secret(api_key, record.secret_hash):
            return None  # maybe rotated since: only the store can say
        return self._unrevoked(record)

    def key_refresh_due(self, api_key: str) -> bool:
        """Whether the key's cached record is past half of `key_cache_seconds`: the
        server then rereads it in the background while the cache still answers, so a
        busy key is never found expired by all of its calls at once (each would wait
        for its own store read in the thread pool)."""
        cached = self._known_keys.get(split_api_key(api_key))
        if cached is None:
            return False
        return time.monotonic() - cached[1] >= self.settings.key_cache_seconds / 2

    @classmethod
    def _principal(cls, api_key: str, record: ApiKeyRecord | None) -> Principal:
        if record is None or not same_secret(api_key, record.secret_hash):
            raise Unauthenticated("unknown or revoked API key")
        return cls._unrevoked(record)

    @staticmethod
    def _unrevoked(record: ApiKeyRecord) -> Principal:
        """The key's principal once its secret matched (one digest per call)."""
        if record.revoked_at is not None:
            raise Unauthenticated("unknown or revoked API key")
        return Principal(record.name, record.role, record.tenant)

    def _api_key_record(self, key_id: str) -> ApiKeyRecord | None:
        """The key's record from the store. While the store cannot be reached, the last
        record read for that key, so checks (which need no store unless they queue a
        hit) go on being answered from memory; keys cannot be revoked meanwhile either.
        After a failure the store is left alone for a few seconds, so calls do not each
        wait for a connection that is not coming."""
        known = self._known_keys.get(key_id)
        if known is not None and time.monotonic() < self._store_down_until:
            return known[0]
        try:
            record = self.store.get_api_key(key_id)
        except Unavailable:
            self._store_down_until = time.monotonic() + _STORE_RETRY_SECONDS
            if known is None:
                raise
            return known[0]
        if record is not None:
            self._known_keys[key_id] = (record, time.monotonic())
        else:
            self._known_keys.pop(key_id, None)
        return record

    # -- operators --------------------------------------------------------------------------

    def check_upload(
        self,
        principal: Principal,
        image: bytes | None,
        hashes: Sequence[HashValue],
        content_ref: str,
    ) -> CheckResult:
        """Match an upload and record what the policy asks for (see the two halves)."""
        return self.record_check(self.match_upload(principal, image, hashes, content_ref))

    def match_upload(
        self,
        principal: Principal,
        image: bytes | None,
        hashes: Sequence[HashValue],
        content_ref: str,
    ) -> MatchedUpload:
        """The store-free half of a check: limits, hashing (for an image), index search
        and the policy's first answer. For precomputed hashes it is CPU work only, so the
        server may run it on its event loop; an image's decode belongs in a thread."""
        require_role(principal, Role.OPERATOR)
        self.limits.charge(principal)
        return self.match_admitted(principal, image, hashes, content_ref)

    def admit_batch(self, principal: Principal, count: int) -> None:
        """A CheckUploadBatch's checks before any upload is looked at: the role, the
        batch cap and one rate-limit token per upload, all taken or none."""
        require_role(principal, Role.OPERATOR)
        cap = self.settings.max_batch_items
        if count > cap:
            raise self.limits.refused(
                principal,
                LimitExceeded(
                    "batch_items",
                    f"a CheckUploadBatch carries at most {cap} uploads (max_batch_items); "
                    f"this one has {count}: split it into batches of {cap} or fewer",
                ),
            )
        self.limits.charge(principal, count)

    def match_admitted(
        self,
        principal: Principal,
        image: bytes | None,
        hashes: Sequence[HashValue],
        content_ref: str,
    ) -> MatchedUpload:
        """`match_upload` after its role and rate-limit checks (done per upload there,
        per batch by `admit_batch`)."""
        notes: list[str] = []
        computed: list[HashValue] = []
        self._check_shape(image, hashes, content_ref)
        if image:
            queries, computed = self._image_queries(principal, image, notes)
        else:
            queries = self._supplied_queries(hashes, notes)
        matches = best_per_entry(self.matcher.match(queries))
        return MatchedUpload(principal, content_ref, matches, computed, notes, decide(matches))

    def match_admitted_hashes(
        self, principal: Principal, uploads: Sequence[tuple[Sequence[HashValue], str]]
    ) -> list[MatchedUpload | InvalidInput]:
        """Several (hashes, content_ref) uploads of an admitted batch, the index searched
        once for all of them; an invalid upload gets its error in its place."""
        prepared: list[tuple[list[Query], list[str]] | InvalidInput] = []
        for hashes, content_ref in uploads:
            notes: list[str] = []
            try:
                self._check_shape(None, hashes, content_ref)
                prepared.append((self._supplied_queries(hashes, notes), notes))
            except InvalidInput as exc:
                prepared.append(exc)
        valid = [p for p in prepared if not isinstance(p, InvalidInput)]
        found = iter(self.matcher.match_many([queries for queries, _ in valid]))
        results: list[MatchedUpload | InvalidInput] = []
        for item, (_, content_ref) in zip(prepared, uploads, strict=True):
            if isinstance(item, InvalidInput):
                results.append(item)
                continue
            matches = best_per_entry(next(found))
            results.append(
                MatchedUpload(principal, content_ref, matches, [], item[1], decide(matches))
            )
        return results

    @staticmethod
    def _check_shape(image: bytes | None, hashes: Sequence[HashValue], content_ref: str) -> None:
        if len(content_ref) > MAX_CONTENT_REF:
            raise InvalidInput(f"content_ref is longer than {MAX_CONTENT_REF} characters")
        if bool(image) == bool(hashes):
            raise InvalidInput("set exactly one of 'image' (the file's bytes) and 'hashes'")

    def record_check(self, matched: MatchedUpload) -> CheckResult:
        """The half that may touch the store: only when the policy's first answer is
        REVIEW (disputed entries, prior verdicts, a new hit); otherwise no I/O at all."""
        if matched.needs_store:
            decision, hit_id = self._decide_and_record(
                matched.principal, matched.content_ref, matched.matches, matched.notes
            )
        else:
            decision, hit_id = matched.decision, ""
        metrics.DECISIONS.labels(decision.value).inc()
        return CheckResult(decision, matched.matches, matched.computed, hit_id, matched.notes)

    def _image_queries(
        self, principal: Principal, image: bytes, notes: list[str]
    ) -> tuple[list[Query], list[HashValue]]:
        limit = self.settings.max_message_bytes
        if len(image) > limit:
            raise self.limits.refused(
                principal,
                LimitExceeded(
                    "image_bytes", f"image is {len(image):,} bytes; the limit is {limit:,}"
                ),
            )
        try:
            pixels = decoded_pixels(image, self.settings.max_image_pixels)
            with self.limits.decoding(principal, pixels):
                photo = Photo(decode_image(image, self.settings.max_image_pixels), image)
                # Each type's hashes (shown to the operator) and lookups; a type whose
                # hash is below its quality floor is not looked up.
                computed = [h for s in SIGNALS for h in s.photo_hashes(photo, self._shown)]
                unusable = {h.algorithm for h in computed if not self._usable(h, notes)}
                queries = [
                    q
                    for s in SIGNALS
                    if s not in unusable
                    for q in s.photo_queries(photo, self._check_options)
                ]
        except LimitExceeded as exc:
            raise self.limits.refused(principal, exc) from None
        return self._with_derived(queries), computed

    def _with_derived(self, queries: list[Query]) -> list[Query]:
        """Queries some types make from the others (with crop matching on, every PDQ
        query is also looked up among the pdq-window entries)."""
        options = self._check_options
        return queries + [d for s in SIGNALS for d in s.derived_queries(queries, options)]

    def _supplied_queries(self, hashes: Sequence[HashValue], notes: list[str]) -> list[Query]:
        if len(hashes) > MAX_HASHES_PER_CHECK:
            raise InvalidInput(f"at most {MAX_HASHES_PER_CHECK} hashes per check")
        queries = []
        for h in hashes:
            h.algorithm.check_query(h)
            if self._usable(h, notes):
                queries.append(_whole(h))
        return self._with_derived(queries)

    def _usable(self, h: HashValue, notes: list[str]) -> bool:
        """Low-quality PDQ (flat or tiny images) matches unrelated images too easily."""
        note = h.algorithm.low_quality_note(h.quality, self.settings.pdq_min_quality)
        if note is None:
            return True
        metrics.LOW_QUALITY_PDQ.inc()
        notes.append(note)
        return False

    def _decide_and_record(
        self, principal: Principal, content_ref: str, matches: list[Match], notes: list[str]
    ) -> tuple[Decision, str]:
        """Apply the policy; queue a hit for moderators when the answer is REVIEW.

        Disputed entries do not ask for review (policy.decide). Per tenant of the
        caller: a pair (entry, upload hash) its moderators already rejected does not
        queue again, and one already in a pending or confirmed hit reuses that hit.
        """
        decision, disputed = decide(matches), set[int]()
        if decision is Decision.REVIEW:  # always so when called from record_check
            pending_ids = sorted({m.entry_id for m in matches if asks_review(m)})
            disputed = self.store.disputed_among(pending_ids)
            decision = decide(matches, disputed)
            if decision is Decision.ALLOW:
                metrics.DISPUTED_MATCHES.inc()
                notes.append("matched only entries that moderators of several platforms disputed")
        if decision is not Decision.REVIEW:
            return decision, ""
        # Pending entries, and vetted ones that may not block (policy.asks_review).
        pending = [m for m in matches if asks_review(m, disputed)]
        # Hits belong to the caller's tenant: another platform's verdicts neither hide
        # this upload from this platform's moderators nor reveal themselves to it.
        prior = self.store.prior_hits(
            [(m.entry_id, m.query_value) for m in pending], principal.tenant
        )
        rejected = [m for m in pending if _state(prior, m) is HitState.REJECTED]
        # Confirmed here but not yet vetted (more tenants must confirm): keep reviewing.
        waiting = [m for m in pending if _state(prior, m) in (HitState.PENDING, HitState.CONFIRMED)]
        new = [m for m in pending if (m.entry_id, m.query_value) not in prior]
        if new:
            hit_id, now = str(uuid.uuid4()), time.time()
            entries = ",".join(str(m.entry_id) for m in new)
            audit = AuditEvent.by(
                principal, "hit.created", f"hit {hit_id}", now, f"entries {entries}"
            )
            self.store.create_hit(
                hit_id, principal.name, content_ref, new, now, principal.tenant, audit
            )
            return Decision.REVIEW, hit_id
        if waiting:
            return Decision.REVIEW, prior[(waiting[0].entry_id, waiting[0].query_value)].hit_id
        if rejected:
            notes.append("matched only entries whose moderators rejected this same upload")
        return Decision.ALLOW, ""

    # -- victims ----------------------------------------------------------------------------

    def submit_case(self, principal: Principal, hashes: Sequence[HashValue]) -> NewCase:
        require_role(principal, Role.SUBMITTER)
        self.limits.charge(principal)
        if not hashes:
            raise InvalidInput("a case needs at least one hash")
        if len(hashes) > self.settings.max_hashes_per_case:
            raise self.limits.refused(
                principal,
                LimitExceeded(
                    "hashes_per_case",
                    f"{len(hashes)} hashes is more than the {self.settings.max_hashes_per_case} "
                    "one case may hold; split them into several cases",
                ),
            )
        try:
            check_submission(hashes, self.settings.pdq_min_quality)
        except RefusedSubmission as exc:
            metrics.REFUSED_SUBMISSIONS.labels(exc.reason).inc()
            raise
        values = list(hashes)
        self._check_hourly_cases(principal)
        case_id, token, now = str(uuid.uuid4()), new_case_token(), time.time()
        audit = AuditEvent.by(
            principal, "case.submitted", f"case {case_id}", now, f"{len(values)} hashes"
        )
        ids = self.store.create_case(case_id, digest(token), principal.name, values, now, audit)
        self.follower.apply_local(
            [
                EntryRow(i, h.algorithm, h.value, EntryState.PENDING)
                for i, h in zip(ids, values, strict=True)
            ]
        )
        return NewCase(case_id, token, len(ids))

    def _check_hourly_cases(self, principal: Principal) -> None:
        """Counted from the store, so the quota holds across restarts and replicas (two
        submissions racing on different replicas may both pass at the boundary)."""
        cap = self.settings.max_cases_per_hour
        if cap == 0:
            return
        now = time.time()
        opened, oldest = self.store.cases_opened_since(principal.name, now - _HOUR)
        if opened >= cap:
            wait = max(1.0, (oldest or now) + _HOUR - now)
            raise self.limits.refused(
                principal,
                QuotaExceeded(
                    "cases_per_hour",
                    f"key {principal.name!r} opened {opened} cases in the last hour, the "
                    f"most allowed; retry in {wait:.0f} s",
                    retry_after=wait,
                ),
            )

    def get_case(self, case_id: str, case_token: str) -> CaseStatus:
        """Counts only: never which platforms the matching uploads came from."""
        self._authorise_case(case_id, case_token)
        self.store.append_audit(_case_holder(case_id, "case.read"))
        return self.store.case_status(case_id)

    def withdraw_case(self, case_id: str, case_token: str) -> tuple[CaseStatus, int]:
        """Remove the case's entries from matching and erase their hash values.
        Withdrawing twice is harmless and withdraws nothing more."""
        self._authorise_case(case_id, case_token)
        audit = _case_holder(case_id, "case.withdrawn")
        withdrawn = self.store.withdraw_case(case_id, audit.at, audit)
        self.follower.apply_local([e._replace(state=EntryState.WITHDRAWN) for e in withdrawn])
        return self.store.case_status(case_id), len(withdrawn)

    def _authorise_case(self, case_id: str, case_token: str) -> None:
        if not case_id or not case_token:
            raise InvalidInput("case_id and case_token are both required")
        auth = self.store.get_case_auth(case_id)
        # One message and the same work for both failures, so case ids cannot be probed
        # without their token.
        stored = auth.token_hash if auth is not None else _NO_SUCH_TOKEN
        if not same_secret(case_token, stored) or auth is None:
            raise NotFound("no case with that id and token")

    # -- moderators ---------------------------------------------------------------------

    def list_hits(
        self, principal: Principal, state: HitState | None, page_size: int, page_token: str
    ) -> tuple[list[Hit], str]:
        require_role(principal, Role.MODERATOR)
        self.limits.charge(principal)
        limit = _page_limit(page_size)
        before = _decode_page_token(page_token) if page_token else None
        rows = self.store.list_hits(state, limit + 1, before, _tenant_scope(principal))
        next_token = _encode_page_token(rows[limit - 1][0]) if len(rows) > limit else ""
        hits = [hit for _, hit in rows[:limit]]
        self.store.append_audit(
            AuditEvent.by(
                principal,
                "hits.listed",
                "hits " + ",".join(h.hit_id for h in hits),
                time.time(),
                f"state={state.value if state else 'all'}",
            )
        )
        return hits, next_token

    def resolve_hit(
        self,
        principal: Principal,
        hit_id: str,
        verdict: Verdict,
        note: str,
        vet_partial: bool = False,
    ) -> tuple[Hit, list[int]]:
        """A moderator's verdict on one of its tenant's hits. A confirmation agrees to the
        entries matched by a whole part of the upload, and to those matched only by a
        part (a strip) when `vet_partial` says so (docs/SECURITY.md)."""
        require_role(principal, Role.MODERATOR)
        self.limits.charge(principal)
        if not hit_id:
            raise InvalidInput("hit_id is required")
        if len(note) > MAX_NOTE:
            raise InvalidInput(f"note is longer than {MAX_NOTE} characters")
        now = time.time()
        detail = verdict.value + (" +partial" if vet_partial else "")
        audit = AuditEvent.by(principal, "hit.resolved", f"hit {hit_id}", now, detail)
        rules = ReviewRules(
            self.settings.vet_tenants,
            self.settings.dispute_tenants,
            self.settings.vet_partial_tenants,
            vet_partial and verdict is Verdict.CONFIRMED,
        )
        hit, vetted = self.store.resolve_hit(
            hit_id, verdict, note, principal.name, now, _tenant_scope(principal), rules, audit
        )
        self.follower.vet_local(vetted)
        return hit, vetted

    # -- admins -------------------------------------------------------------------------

    def list_disputed(
        self, principal: Principal, page_size: int, page_token: str
    ) -> tuple[list[DisputedEntry], str]:
        """Entries moderators of several tenants rejected: candidates for withdrawal by
        an admin's own investigation (docs/SECURITY.md). Admins only."""
        require_role(principal, Role.ADMIN)
        self.limits.charge(principal)
        limit = _page_limit(page_size)
        after = _decode_page_token(page_token, "disputed") if page_token else 0
        rows = self.store.list_disputed(limit + 1, after)
        entries = rows[:limit]
        next_token = (
            _encode_page_token(entries[-1].entry_id, "disputed") if len(rows) > limit else ""
        )
        self.store.append_audit(
            AuditEvent.by(
                principal,
                "disputed.listed",
                "entries " + ",".join(str(e.entry_id) for e in entries),
                time.time(),
            )
        )
        return entries, next_token

    # -- gauges -------------------------------------------------------------------------

    def _refresh_gauges(self) -> None:
        for signal in SIGNALS:
            metrics.INDEX_ENTRIES.labels(signal.name).set(self.matcher.size(signal))

    def count_pending_hits(self) -> float:
        """Pending hits in the shared store (every replica's), counted at each scrape;
        the last count while the store cannot be reached."""
        try:
            self._pending_hits = float(self.store.count_hits(HitState.PENDING))
        except Exception as exc:  # a scrape must not fail because the database is down
            log.warning("cannot count pending hits: %s", exc)
        return self._pending_hits


def _whole(value: HashValue) -> Query:
    return Query(value.algorithm, value.value, MatchPart.WHOLE)


def _state(prior: dict[tuple[int, bytes], PriorHit], match: Match) -> HitState | None:
    found = prior.get((match.entry_id, match.query_value))
    return None if found is None else found.state


def _tenant_scope(principal: Principal) -> str | None:
    """The tenant whose hits the caller may see: its own, or every one for admins."""
    return None if principal.sees_every_tenant else principal.tenant


def _case_holder(case_id: str, action: str) -> AuditEvent:
    """Case-token calls have no key: the audit names the case, never the token."""
    return AuditEvent("case-token", "case", "", action, f"case {case_id}", time.time())


def _page_limit(page_size: int) -> int:
    if page_size < 0:
        raise InvalidInput("page_size must not be negative")
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _encode_page_token(seq: int, kind: str = "hits") -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode()


def _decode_page_token(token: str, kind: str = "hits") -> int:
    try:
        prefix, seq = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if prefix != kind:
            raise ValueError(prefix)
        return int(seq)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("page_token is not one this server issued") from None
