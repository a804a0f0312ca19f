"""The three gRPC services, as coroutines on the grpc.aio server's event loop. Each
method: authenticate, convert proto -> domain, call a use case (service/usecases),
convert back. Where the work runs (loop or pool) is the use cases' and the runtime's
business; errors are raised as domain exceptions and the interceptor maps them to
statuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeAlias

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
    outcome_to_pb,
    timestamp,
    upload_from_pb,
    video_part_from_pb,
    video_upload_from_pb,
)
from service.domain import Principal
from service.errors import InvalidInput, Unauthenticated
from service.runtime import Runtime
from service.usecases.cases import Cases
from service.usecases.check import Checks, Upload
from service.usecases.disputes import Disputes
from service.usecases.review import Review
from service.usecases.videos import VideoPart, Videos

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


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
    """What every service needs: the runtime, and the caller."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # One store read per key at a time: the calls that need a key read while one is
        # under way wait for it instead of each sending their own to the pool.
        self._key_reads: dict[str, asyncio.Future[Principal]] = {}

    async def caller(self, context: Context) -> Principal:
        """The principal behind the call's key: from the key cache on the loop, else
        read from the store in the pool, once for all the calls waiting on that key.
        A cached key past half its cache time is reread in the background, so under
        steady load no call waits for a key read (docs/BENCHMARKS.md, issue 19). Failed
        authentications count against the peer's address (service.access.failures)."""
        keys, peer = self.runtime.keys, context.peer()
        try:
            token = bearer_token(context)
            principal = keys.cached_principal(token)
            assert token is not None  # cached_principal refused a missing one
            if principal is None:
                self.runtime.peer_failures.require_room(peer)
                return await asyncio.shield(self._read_key(token))
        except Unauthenticated:
            self.runtime.peer_failures.failed(peer)  # refused outright past the budget
            raise
        if keys.key_refresh_due(token) and token not in self._key_reads:
            self._read_key(token)
        return principal

    def _read_key(self, token: str) -> asyncio.Future[Principal]:
        """The key's record read from the store in the pool, shared by every caller
        with the same key while the read runs (keyed by the whole key: a wrong secret
        never shares a right one's answer)."""
        running = self._key_reads.get(token)
        if running is None:
            loop = asyncio.get_running_loop()
            running = loop.run_in_executor(
                self.runtime.pool, self.runtime.keys.reread_principal, token
            )
            self._key_reads[token] = running
            running.add_done_callback(lambda _: self._key_reads.pop(token, None))
            running.add_done_callback(_consume_error)
        return running


def _consume_error(future: asyncio.Future[Principal]) -> None:
    """A key read's outcome is in the key cache, and its error (a revoked key, a store
    outage) reaches every caller that awaited it; a background reread has none, and
    its error must not be logged as never retrieved."""
    if not future.cancelled():
        future.exception()


class MatchServicer(_Servicer, pb_grpc.MatchServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.checks = Checks(runtime)
        self.videos = Videos(runtime, self.checks)

    async def CheckUpload(
        self, request: pb.CheckUploadRequest, context: Context
    ) -> pb.CheckUploadResponse:
        principal = await self.caller(context)
        if request.video:
            video, content_ref = video_upload_from_pb(request)
            result = await self.videos.check_bytes(principal, video, content_ref)
        else:
            result = await self.checks.check(principal, upload_from_pb(request))
        return check_response_to_pb(result, request.content_ref)

    async def CheckVideo(
        self, request_iterator: AsyncIterator[pb.CheckVideoRequest], context: Context
    ) -> pb.CheckUploadResponse:
        principal = await self.caller(context)

        async def parts() -> AsyncIterator[VideoPart]:
            async for request in request_iterator:
                yield video_part_from_pb(request)

        content_ref, result = await self.videos.check_stream(
            principal, parts(), gone=context.cancelled
        )
        return check_response_to_pb(result, content_ref)

    async def CheckUploads(
        self,
        request_iterator: AsyncIterator[pb.CheckUploadRequest],
        context: Context,
    ) -> AsyncIterator[pb.CheckUploadResponse]:
        principal = await self.caller(context)

        async def uploads() -> AsyncIterator[Upload]:
            async for request in request_iterator:
                yield upload_from_pb(request)

        async for content_ref, outcome in self.checks.check_stream(principal, uploads()):
            yield outcome_to_pb(content_ref, outcome)

    async def CheckUploadBatch(
        self, request: pb.CheckUploadBatchRequest, context: Context
    ) -> pb.CheckUploadBatchResponse:
        principal = await self.caller(context)
        uploads = [upload_from_pb(u) for u in request.uploads]
        outcomes = await self.checks.check_batch(principal, uploads)
        return pb.CheckUploadBatchResponse(
            results=[
                outcome_to_pb(u.content_ref, o) for u, o in zip(uploads, outcomes, strict=True)
            ]
        )


class SubmissionServicer(_Servicer, pb_grpc.SubmissionServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.cases = Cases(runtime)

    async def SubmitCase(
        self, request: pb.SubmitCaseRequest, context: Context
    ) -> pb.SubmitCaseResponse:
        principal = await self.caller(context)
        hashes = hashes_from_pb(request.hashes)
        case = await self.runtime.blocking(self.cases.submit_case, principal, hashes)
        return pb.SubmitCaseResponse(
            case_id=case.case_id, case_token=case.case_token, entry_count=case.entry_count
        )

    async def GetCase(self, request: pb.GetCaseRequest, context: Context) -> pb.GetCaseResponse:
        status = await self.runtime.blocking(
            self.cases.get_case, request.case_id, request.case_token
        )
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
        status, withdrawn = await self.runtime.blocking(
            self.cases.withdraw_case, request.case_id, request.case_token
        )
        return pb.WithdrawCaseResponse(
            case_id=status.case_id,
            state=CASE_STATE_TO_PB[status.state],
            entries_withdrawn=withdrawn,
        )


class ReviewServicer(_Servicer, pb_grpc.ReviewServiceServicer):
    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.review = Review(runtime)
        self.disputes = Disputes(runtime)

    async def ListHits(self, request: pb.ListHitsRequest, context: Context) -> pb.ListHitsResponse:
        principal = await self.caller(context)
        state = None
        if request.state != pb.HIT_STATE_UNSPECIFIED:
            state = HIT_STATE_FROM_PB.get(request.state)
            if state is None:
                raise InvalidInput(f"unknown hit state {request.state}")
        hits, next_token = await self.runtime.blocking(
            self.review.list_hits, principal, state, request.page_size, request.page_token
        )
        return pb.ListHitsResponse(hits=[hit_to_pb(h) for h in hits], next_page_token=next_token)

    async def ResolveHit(
        self, request: pb.ResolveHitRequest, context: Context
    ) -> pb.ResolveHitResponse:
        principal = await self.caller(context)
        verdict = VERDICT_FROM_PB.get(request.verdict)
        if verdict is None:
            raise InvalidInput("verdict must be VERDICT_CONFIRMED or VERDICT_REJECTED")
        hit, vetted = await self.runtime.blocking(
            self.review.resolve_hit,
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
        entries, next_token = await self.runtime.blocking(
            self.disputes.list_disputed, principal, request.page_size, request.page_token
        )
        return pb.ListDisputedEntriesResponse(
            entries=[disputed_to_pb(e) for e in entries], next_page_token=next_token
        )
