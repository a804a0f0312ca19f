"""Checking uploads against the list: one (CheckUpload), a stream (CheckUploads) or a
batch (CheckUploadBatch). A check has two halves: matching (limits, hashing an image,
index search, the policy's first answer: no store I/O) and recording (only when the
answer is REVIEW: disputes, prior verdicts, a new hit; store I/O). The async methods
decide where each half runs: one upload's precomputed hashes are matched on the event
loop (well under a millisecond); images, and a batch's hash uploads in chunks of
BATCH_CHUNK, run in the check pool when their tenant's turn comes (runtime.cpu_work), one
image or chunk per turn, so a large batch never holds the loop or the pool for long and a
call abandoned by its client stops at the next image or chunk; recording runs in the
store pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from service import metrics
from service.access.auth import require_role
from service.domain import Decision, HashValue, Match, Principal, Query, Role
from service.errors import HashGuardError, InvalidInput, LimitExceeded, QuotaExceeded, Unavailable
from service.policy import best_per_entry, decide
from service.runtime import Runtime
from service.signals.base import IndexKind
from service.signals.vpdq_frames import QueryFrames
from service.usecases.guards import text
from service.usecases.queries import image_queries, supplied_queries, video_queries
from service.usecases.recording import decide_and_record

MAX_CONTENT_REF = 1024
# Hash uploads of a batch searched per turn: 16 uploads of 64 hashes take a few tens of
# milliseconds, so other tenants' work waits at most about that for a turn.
BATCH_CHUNK = 16


@dataclass(frozen=True, slots=True)
class Upload:
    """One upload to check: the image's bytes or the hashes the caller computed (exactly
    one), and the caller's id for it. `invalid` is set when the request could not be
    read; that error is answered in the upload's place."""

    image: bytes | None
    hashes: Sequence[HashValue]
    content_ref: str
    invalid: InvalidInput | None = None


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


class Checks:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # An open stream costs no thread, only memory and a little bookkeeping; the
        # caps bound those, per server and per tenant (one event loop, so plain
        # counters suffice).
        self.open_streams = 0
        self.tenant_streams: dict[str, int] = {}

    # -- on the event loop ----------------------------------------------------------------

    async def check(self, principal: Principal, upload: Upload) -> CheckResult:
        """One upload: an image is decoded and hashed in the pool (the decode releases
        the GIL), precomputed hashes are matched on the loop; recording a REVIEW (store
        writes) always runs in the pool."""
        if upload.invalid is not None:
            raise upload.invalid
        image, hashes, ref = upload.image, upload.hashes, upload.content_ref
        if image or _searches_videos(hashes):
            require_role(principal, Role.OPERATOR)
            self.runtime.limits.charge(principal)
            matched = await self.runtime.cpu_work(
                principal, self.match_admitted, principal, image, hashes, ref
            )
        else:
            matched = self.match_upload(principal, image, hashes, ref)
        if matched.needs_store:
            return await self.runtime.blocking(self.record_check, matched)
        return self.record_check(matched)

    async def check_stream(
        self, principal: Principal, uploads: AsyncIterator[Upload]
    ) -> AsyncIterator[tuple[str, CheckResult | InvalidInput]]:
        """(content_ref, result) per upload, in order. An invalid upload gets its error
        instead of ending the stream; the rate limit, the stream's length cap, the caps
        on open streams and the idle timeout end it (RESOURCE_EXHAUSTED)."""
        async with self._open_stream(principal):
            count = 0
            idle = self.runtime.settings.stream_idle_seconds
            while True:
                try:
                    upload = await asyncio.wait_for(anext(uploads), idle)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise self.runtime.limits.refused(
                        principal,
                        QuotaExceeded(
                            "stream_idle",
                            f"this CheckUploads stream sent no upload for {idle:g} s "
                            "(--stream-idle-seconds) and was closed to free its slot; the "
                            "answers sent stand: open a new stream when you have uploads",
                        ),
                    ) from None
                count += 1
                self.runtime.limits.stream_item(principal, count)
                try:
                    yield upload.content_ref, await self.check(principal, upload)
                except InvalidInput as exc:
                    yield upload.content_ref, exc

    @asynccontextmanager
    async def _open_stream(self, principal: Principal) -> AsyncIterator[None]:
        cap = self.runtime.settings.max_streams
        tenant, per_tenant = principal.tenant, self.runtime.settings.max_streams_per_tenant
        held = self.tenant_streams.get(tenant, 0)
        if held >= per_tenant:
            raise self.runtime.limits.refused(
                principal,
                QuotaExceeded(
                    "tenant_streams",
                    f"tenant {tenant!r} already has {per_tenant} CheckUploads streams open on "
                    "this server (--max-streams-per-tenant): close idle streams, reuse one "
                    "stream for many checks, or call CheckUpload",
                ),
            )
        if self.open_streams >= cap:
            raise self.runtime.limits.refused(
                principal,
                QuotaExceeded(
                    "open_streams",
                    f"this server already has {cap} CheckUploads streams open "
                    "(--max-streams): close idle streams, reuse one stream for many checks, "
                    "or call CheckUpload",
                ),
            )
        self.open_streams += 1
        self.tenant_streams[tenant] = held + 1
        try:
            yield
        finally:
            self.open_streams -= 1
            left = self.tenant_streams[tenant] - 1
            if left:
                self.tenant_streams[tenant] = left
            else:
                del self.tenant_streams[tenant]

    async def check_batch(
        self, principal: Principal, uploads: Sequence[Upload]
    ) -> list[CheckResult | HashGuardError]:
        """One result per upload, in order; an invalid upload gets its error. The batch
        is admitted (role, cap, one token per upload) before any upload is looked at.
        Images are matched one per turn, hash uploads BATCH_CHUNK per turn (one index
        search per chunk), in the check pool; every REVIEW is recorded in one trip to
        the store pool. Between turns the call can be cancelled and other tenants go."""
        self.admit_batch(principal, len(uploads))
        matched: dict[int, MatchedUpload | InvalidInput] = {}  # by position in the batch
        # Images, and hashes that search listed videos (thousands of frame queries), in
        # the pool; other hashes on the loop.
        in_pool = [
            n
            for n, u in enumerate(uploads)
            if u.invalid is None and (u.image or _searches_videos(u.hashes))
        ]
        by_hashes = [n for n, u in enumerate(uploads) if u.invalid is None and n not in in_pool]
        images = in_pool
        for n, upload in enumerate(uploads):
            if upload.invalid is not None:
                matched[n] = upload.invalid
        for n in images:
            found = await self.runtime.cpu_work(
                principal, self._match_images, principal, [uploads[n]]
            )
            matched[n] = found[0]
        for start in range(0, len(by_hashes), BATCH_CHUNK):
            chunk = by_hashes[start : start + BATCH_CHUNK]
            supplied = [(uploads[n].hashes, uploads[n].content_ref) for n in chunk]
            found = await self.runtime.cpu_work(
                principal, self.match_admitted_hashes, principal, supplied
            )
            matched.update(zip(chunk, found, strict=True))
        in_order = [matched[n] for n in range(len(uploads))]
        to_record = [m for m in in_order if isinstance(m, MatchedUpload)]
        if any(m.needs_store for m in to_record):
            recorded = await self.runtime.blocking(self._record_all, to_record)
        else:
            recorded = self._record_all(to_record)
        done = iter(recorded)
        return [item if isinstance(item, InvalidInput) else next(done) for item in in_order]

    async def check_video(
        self,
        principal: Principal,
        md5: bytes,
        sha256: bytes,
        frames: QueryFrames,
        content_ref: str,
    ) -> CheckResult:
        """A video the caller decoded and hashed (service.media.video_hashes:
        file_digests and check_queries), after its role and rate-limit checks, which
        come before decoding (`admit_video`): matched and, on REVIEW, recorded in the
        check pool, in the tenant's turn."""
        matched = await self.runtime.cpu_work(
            principal, self.match_video, principal, md5, sha256, frames, content_ref
        )
        if matched.needs_store:
            return await self.runtime.blocking(self.record_check, matched)
        return self.record_check(matched)

    def admit_video(self, principal: Principal) -> None:
        """A video check's role and rate-limit token, taken before its bytes are read."""
        require_role(principal, Role.OPERATOR)
        self.runtime.limits.charge(principal)

    def match_video(
        self,
        principal: Principal,
        md5: bytes,
        sha256: bytes,
        frames: QueryFrames,
        content_ref: str,
    ) -> MatchedUpload:
        """The store-free half of a video check (blocking: thousands of frame queries):
        the file's exact digests and its frames, searched like any hashes."""
        text("content_ref", content_ref, MAX_CONTENT_REF)
        queries, computed = video_queries(md5, sha256, frames)
        matches = best_per_entry(self.runtime.matcher.match(queries))
        return MatchedUpload(principal, content_ref, matches, computed, [], decide(matches))

    # -- the halves (blocking where they touch an image or the store) -----------------------

    def check_upload(
        self, principal: Principal, image: bytes | None, hashes: Sequence[HashValue], ref: str
    ) -> CheckResult:
        """Match an upload and record what the policy asks for, in the calling thread."""
        return self.record_check(self.match_upload(principal, image, hashes, ref))

    def match_upload(
        self, principal: Principal, image: bytes | None, hashes: Sequence[HashValue], ref: str
    ) -> MatchedUpload:
        """The store-free half of a check: role, rate limit, hashing (for an image),
        index search and the policy's first answer."""
        require_role(principal, Role.OPERATOR)
        self.runtime.limits.charge(principal)
        return self.match_admitted(principal, image, hashes, ref)

    def admit_batch(self, principal: Principal, count: int) -> None:
        """A CheckUploadBatch's checks before any upload is looked at: the role, the
        batch cap and one rate-limit token per upload, all taken or none."""
        require_role(principal, Role.OPERATOR)
        cap = self.runtime.settings.max_batch_items
        if count > cap:
            raise self.runtime.limits.refused(
                principal,
                LimitExceeded(
                    "batch_items",
                    f"a CheckUploadBatch carries at most {cap} uploads (max_batch_items); "
                    f"this one has {count}: split it into batches of {cap} or fewer",
                ),
            )
        self.runtime.limits.charge(principal, count)

    def match_admitted(
        self, principal: Principal, image: bytes | None, hashes: Sequence[HashValue], ref: str
    ) -> MatchedUpload:
        """`match_upload` after its role and rate-limit checks (done per upload there,
        per batch by `admit_batch`)."""
        notes: list[str] = []
        computed: list[HashValue] = []
        _check_shape(image, hashes, ref)
        if image:
            queries, computed = image_queries(self.runtime, principal, image, notes)
        else:
            queries = supplied_queries(self.runtime.settings, hashes, notes)
        matches = best_per_entry(self.runtime.matcher.match(queries))
        return MatchedUpload(principal, ref, matches, computed, notes, decide(matches))

    def match_admitted_hashes(
        self, principal: Principal, uploads: Sequence[tuple[Sequence[HashValue], str]]
    ) -> list[MatchedUpload | InvalidInput]:
        """Several (hashes, content_ref) uploads of an admitted batch, the index searched
        once for all of them; an invalid upload gets its error in its place."""
        prepared: list[tuple[list[Query], list[str]] | InvalidInput] = []
        for hashes, content_ref in uploads:
            notes: list[str] = []
            try:
                _check_shape(None, hashes, content_ref)
                prepared.append((supplied_queries(self.runtime.settings, hashes, notes), notes))
            except InvalidInput as exc:
                prepared.append(exc)
        valid = [p for p in prepared if not isinstance(p, InvalidInput)]
        found = iter(self.runtime.matcher.match_many([queries for queries, _ in valid]))
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

    def record_check(self, matched: MatchedUpload) -> CheckResult:
        """The half that may touch the store: only when the policy's first answer is
        REVIEW (disputed entries, prior verdicts, a new hit); otherwise no I/O at all."""
        if matched.needs_store:
            decision, hit_id = decide_and_record(
                self.runtime.store,
                matched.principal,
                matched.content_ref,
                matched.matches,
                matched.notes,
            )
        else:
            decision, hit_id = matched.decision, ""
        metrics.decisions(decision.value).inc()
        return CheckResult(decision, matched.matches, matched.computed, hit_id, matched.notes)

    def _match_images(
        self, principal: Principal, uploads: list[Upload]
    ) -> list[MatchedUpload | InvalidInput]:
        """In the pool: each image decoded in turn, within the decode budget."""
        matched: list[MatchedUpload | InvalidInput] = []
        for upload in uploads:
            try:
                matched.append(
                    self.match_admitted(principal, upload.image, upload.hashes, upload.content_ref)
                )
            except InvalidInput as exc:
                matched.append(exc)
        return matched

    def _record_all(self, matched: list[MatchedUpload]) -> list[CheckResult | Unavailable]:
        """Record each check; a store outage fails only the uploads that needed the
        store (their result says UNAVAILABLE: retry those), never the whole batch after
        other hits were already queued."""
        recorded: list[CheckResult | Unavailable] = []
        for item in matched:
            try:
                recorded.append(self.record_check(item))
            except Unavailable as exc:
                recorded.append(exc)
        return recorded


def _searches_videos(hashes: Sequence[HashValue]) -> bool:
    return any(h.algorithm.index_kind is IndexKind.VIDEO for h in hashes)


def _check_shape(image: bytes | None, hashes: Sequence[HashValue], content_ref: str) -> None:
    text("content_ref", content_ref, MAX_CONTENT_REF)
    if bool(image) == bool(hashes):
        raise InvalidInput("set exactly one of 'image' (the file's bytes) and 'hashes'")
