"""The three gRPC services, as coroutines on the grpc.aio server's event loop. Each
method: authenticate, convert, call the app, convert back. Nothing that blocks runs on
the loop: store calls and image decodes go to the thread pool (`--workers`); a check of
precomputed hashes (digest compare, index search, policy) is CPU work and runs on the
loop unless its answer must be recorded in the store. Errors are raised as domain
exceptions; the interceptor maps them to statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeAlias, TypeVar

import grpc
from hashguard.v1 import hashguard_pb2 as pb
from hashguard.v1 import hashguard_pb2_grpc as pb_grpc

from service.api.convert import (
    CASE_STATE_TO_PB,
    HIT_STATE_FROM_PB,
    VERDICT_FROM_PB,
    check_response_to_pb,
    disputed_to_pb,
    hashes_from_pb,
    hit_to_pb,
    timestamp,
)
from service.app import CheckResult, HashGuard, MatchedUpload
from service.domain import HashValue, Principal
from service.errors import (
    HashGuardError,
    InvalidInput,
    QuotaExceeded,
    Unauthenticated,
    Unavailable,
)

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
P = ParamSpec("P")
T = TypeVar("T")


def bearer_token(context: Context) -> str | None:
    """The key in the call's `authorization: Bearer <key>` metadata, None if absent."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            if not isinstance(value, str):
                raise Unauthenticated("authorization metadata must be text: 'Bearer <key>'")
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization metadata must be 'Bearer <key>'")
            return token.strip()
    return None


class _Servicer:
    """What every service needs: the app, the pool for blocking work, the caller."""

    def __init__(self, app: HashGuard, pool: ThreadPoolExecutor) -> None:
        self.app = app
        self.pool = pool
        # One store read per key at a time: the calls that need a key read while one is
        # under way wait for it instead of each sending their own to the pool.
        self._key_reads: dict[str, asyncio.Future[Principal]] = {}

    async def blocking(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `function` in the thread pool: store I/O, image decodes."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, lambda: function(*args, **kwargs))

    async def caller(self, context: Context) -> Principal:
        """The principal behind the call's key: from the key cache on the loop, else
        read from the store in the pool, once for all the calls waiting on that key.
        A cached key past half its cache time is reread in the background, so under
        steady load no call waits for a key read (docs/BENCHMARKS.md, issue 19)."""
        token = bearer_token(context)
        principal = self.app.cached_principal(token)
        assert token is not None  # cached_principal refused a missing one
        if principal is None:
            return await asyncio.shield(self._read_key(token))
        if self.app.key_refresh_due(token) and token not in self._key_reads:
            self._read_key(token)
        return principal

    def _read_key(self, token: str) -> asyncio.Future[Principal]:
        """The key's record read from the store in the pool, shared by every caller
        with the same key while the read runs (keyed by the whole key: a wrong secret
        never shares a right one's answer)."""
        running = self._key_reads.get(token)
        if running is None:
            loop = asyncio.get_running_loop()
            running = loop.run_in_executor(self.pool, self.app.reread_principal, token)
            self._key_reads[token] = running
            running.add_done_callback(lambda _: self._key_reads.pop(token, None))
            running.add_done_callback(_consume_error)
        return running


class MatchServicer(_Servicer, pb_grpc.MatchServiceServicer):
    def __init__(self, app: HashGuard, pool: ThreadPoolExecutor) -> None:
        super().__init__(app, pool)
        # An open stream costs no thread, only memory and a little bookkeeping; the
        # cap bounds those (one event loop, so a plain counter suffices).
        self.max_streams = app.settings.max_streams
        self.open_streams = 0

    async def CheckUpload(
        self, request: pb.CheckUploadRequest, context: Context
    ) -> pb.CheckUploadResponse:
        principal = await self.caller(context)
        return await self._check(principal, request)

    async def CheckUploads(
        self,
        request_iterator: AsyncIterator[pb.CheckUploadRequest],
        context: Context,
    ) -> AsyncIterator[pb.CheckUploadResponse]:
        """One response per request, in order. An invalid item gets a response with
        `error` set instead of ending the whole scan; auth failures, the rate limit and
        the stream's length cap end it (RESOURCE_EXHAUSTED)."""
        principal = await self.caller(context)
        if self.open_streams >= self.max_streams:
            raise self.app.limits.refused(
                principal,
                QuotaExceeded(
                    "open_streams",
                    f"this server already has {self.max_streams} CheckUploads streams open "
                    "(--max-streams): close idle streams, reuse one stream for many checks, "
                    "or call CheckUpload",
                ),
            )
        self.open_streams += 1
        try:
            count = 0
            async for request in request_iterator:
                count += 1
                self.app.limits.stream_item(principal, count)
                try:
                    yield await self._check(principal, request)
                except InvalidInput as exc:
                    yield _item_error(request.content_ref, exc)
        finally:
            self.open_streams -= 1

    async def CheckUploadBatch(
        self, request: pb.CheckUploadBatchRequest, context: Context
    ) -> pb.CheckUploadBatchResponse:
        """One result per upload, in order; an invalid upload gets `error` set. The
        batch is admitted (role, cap, one token per upload) before any upload is looked
        at. Hash uploads are matched together on the loop (one index search for all);
        images are decoded in the pool; every REVIEW is recorded in one pool trip."""
        principal = await self.caller(context)
        uploads = request.uploads
        self.app.admit_batch(principal, len(uploads))
        matched: dict[int, MatchedUpload | InvalidInput] = {}  # by position in the batch
        by_hashes: list[int] = []
        supplied: list[tuple[list[HashValue], str]] = []
        images: list[int] = []
        for n, upload in enumerate(uploads):
            if upload.image:
                images.append(n)
                continue
            try:
                supplied.append((hashes_from_pb(upload.hashes), upload.content_ref))
                by_hashes.append(n)
            except InvalidInput as exc:
                matched[n] = exc
        if images:
            for n, item in zip(
                images,
                await self.blocking(self._match_images, principal, [uploads[n] for n in images]),
                strict=True,
            ):
                matched[n] = item
        for n, item in zip(
            by_hashes, self.app.match_admitted_hashes(principal, supplied), strict=True
        ):
            matched[n] = item
        in_order = [matched[n] for n in range(len(uploads))]
        to_record = [m for m in in_order if isinstance(m, MatchedUpload)]
        if any(m.needs_store for m in to_record):
            recorded = await self.blocking(self._record_all, to_record)
        else:
            recorded = self._record_all(to_record)
        done = iter(recorded)
        results = []
        for upload, item in zip(uploads, in_order, strict=True):
            outcome = item if isinstance(item, InvalidInput) else next(done)
            if isinstance(outcome, HashGuardError):
                results.append(_item_error(upload.content_ref, outcome))
            else:
                results.append(check_response_to_pb(outcome, upload.content_ref))
        return pb.CheckUploadBatchResponse(results=results)

    def _match_images(
        self, principal: Principal, uploads: list[pb.CheckUploadRequest]
    ) -> list[MatchedUpload | InvalidInput]:
        """In the pool: each image decoded in turn, within the decode budget."""
        matched: list[MatchedUpload | InvalidInput] = []
        for upload in uploads:
            try:
                hashes = hashes_from_pb(upload.hashes)
                matched.append(
                    self.app.match_admitted(principal, upload.image, hashes, upload.content_ref)
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
                recorded.append(self.app.record_check(item))
            except Unavailable as exc:
                recorded.append(exc)
        return recorded

    async def _check(
        self, principal: Principal, request: pb.CheckUploadRequest
    ) -> pb.CheckUploadResponse:
        """Precomputed hashes are matched on the loop; an image is decoded and hashed
        in the pool (the decode releases the GIL). Recording a REVIEW (store writes)
        always runs in the pool."""
        hashes = hashes_from_pb(request.hashes)
        image = request.image or None
        ref = request.content_ref
        if image:
            matched = await self.blocking(self.app.match_upload, principal, image, hashes, ref)
        else:
            matched = self.app.match_upload(principal, image, hashes, ref)
        if matched.needs_store:
            result = await self.blocking(self.app.record_check, matched)
        else:
            result = self.app.record_check(matched)
        return check_response_to_pb(result, ref)


def _consume_error(future: asyncio.Future[Principal]) -> None:
    """A key read's outcome is in the key cache, and its error (a revoked key, a store
    outage) reaches every caller that awaited it; a background reread has none, and
    its error must not be logged as never retrieved."""
    if not future.cancelled():
        future.exception()


def _item_error(content_ref: str, error: HashGuardError) -> pb.CheckUploadResponse:
    """The answer for one upload of a stream or batch that was not checked."""
    code = getattr(grpc.StatusCode, error.status).value[0]
    return pb.CheckUploadResponse(
        content_ref=content_ref, error=pb.ItemError(code=code, message=str(error))
    )


class SubmissionServicer(_Servicer, pb_grpc.SubmissionServiceServicer):
    async def SubmitCase(
        self, request: pb.SubmitCaseRequest, context: Context
    ) -> pb.SubmitCaseResponse:
        principal = await self.caller(context)
        case = await self.blocking(self.app.submit_case, principal, hashes_from_pb(request.hashes))
        return pb.SubmitCaseResponse(
            case_id=case.case_id, case_token=case.case_token, entry_count=case.entry_count
        )

    async def GetCase(self, request: pb.GetCaseRequest, context: Context) -> pb.GetCaseResponse:
        status = await self.blocking(self.app.get_case, request.case_id, request.case_token)
        return pb.GetCaseResponse(
            case_id=status.case_id,
            state=CASE_STATE_TO_PB[status.state],
            created_at=timestamp(status.created_at),
            entries_pending=status.entries_pending,
            entries_vetted=status.entries_vetted,
            entries_withdrawn=status.entries_withdrawn,
            hits_total=status.hits_total,
            hits_confirmed=status.hits_confirmed,
        )

    async def WithdrawCase(
        self, request: pb.WithdrawCaseRequest, context: Context
    ) -> pb.WithdrawCaseResponse:
        status, withdrawn = await self.blocking(
            self.app.withdraw_case, request.case_id, request.case_token
        )
        return pb.WithdrawCaseResponse(
            case_id=status.case_id,
            state=CASE_STATE_TO_PB[status.state],
            entries_withdrawn=withdrawn,
        )


class ReviewServicer(_Servicer, pb_grpc.ReviewServiceServicer):
    async def ListHits(self, request: pb.ListHitsRequest, context: Context) -> pb.ListHitsResponse:
        principal = await self.caller(context)
        state = None
        if request.state != pb.HIT_STATE_UNSPECIFIED:
            state = HIT_STATE_FROM_PB.get(request.state)
            if state is None:
                raise InvalidInput(f"unknown hit state {request.state}")
        hits, next_token = await self.blocking(
            self.app.list_hits, principal, state, request.page_size, request.page_token
        )
        return pb.ListHitsResponse(hits=[hit_to_pb(h) for h in hits], next_page_token=next_token)

    async def ResolveHit(
        self, request: pb.ResolveHitRequest, context: Context
    ) -> pb.ResolveHitResponse:
        principal = await self.caller(context)
        verdict = VERDICT_FROM_PB.get(request.verdict)
        if verdict is None:
            raise InvalidInput("verdict must be VERDICT_CONFIRMED or VERDICT_REJECTED")
        hit, vetted = await self.blocking(
            self.app.resolve_hit,
            principal,
            request.hit_id,
            verdict,
            request.note,
            request.vet_partial_matches,
        )
        return pb.ResolveHitResponse(hit=hit_to_pb(hit), vetted_entry_ids=vetted)

    async def ListDisputedEntries(
        self, request: pb.ListDisputedEntriesRequest, context: Context
    ) -> pb.ListDisputedEntriesResponse:
        principal = await self.caller(context)
        entries, next_token = await self.blocking(
            self.app.list_disputed, principal, request.page_size, request.page_token
        )
        return pb.ListDisputedEntriesResponse(
            entries=[disputed_to_pb(e) for e in entries], next_page_token=next_token
        )
