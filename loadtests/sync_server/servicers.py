"""The pre-asyncio server's three gRPC services (loadtests only). Each method:
authenticate, convert, call the app, convert
back. Errors are raised as domain exceptions; the interceptor maps them to statuses."""

from __future__ import annotations

import threading
from collections.abc import Iterator

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
from service.app import HashGuard
from service.domain import Principal
from service.errors import InvalidInput, QuotaExceeded, Unauthenticated


def caller(app: HashGuard, context: grpc.ServicerContext) -> Principal:
    """The principal behind the call's `authorization: Bearer <key>` metadata."""
    for key, value in context.invocation_metadata():
        if key == "authorization":
            if not isinstance(value, str):
                raise Unauthenticated("authorization metadata must be text: 'Bearer <key>'")
            scheme, _, token = value.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("authorization metadata must be 'Bearer <key>'")
            return app.authenticate(token.strip())
    return app.authenticate(None)


class MatchServicer(pb_grpc.MatchServiceServicer):
    def __init__(self, app: HashGuard) -> None:
        self.app = app
        # The sync server runs each open stream on one worker thread until the client
        # closes it; without a cap, `workers` idle streams leave no thread for anyone.
        self.max_streams = app.settings.max_streams
        self._stream_slots = threading.BoundedSemaphore(self.max_streams)

    def CheckUpload(
        self, request: pb.CheckUploadRequest, context: grpc.ServicerContext
    ) -> pb.CheckUploadResponse:
        principal = caller(self.app, context)
        return self._check(principal, request)

    def CheckUploads(
        self, request_iterator: Iterator[pb.CheckUploadRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.CheckUploadResponse]:
        """One response per request, in order. An invalid item gets a response with
        `error` set instead of ending the whole scan; auth failures, the rate limit and
        the stream's length cap end it (RESOURCE_EXHAUSTED)."""
        principal = caller(self.app, context)
        if not self._stream_slots.acquire(blocking=False):
            raise self.app.limits.refused(
                principal,
                QuotaExceeded(
                    "open_streams",
                    f"this server already has {self.max_streams} CheckUploads streams open "
                    "(--max-streams): close idle streams, reuse one stream for many checks, "
                    "or call CheckUpload",
                ),
            )
        try:
            for count, request in enumerate(request_iterator, 1):
                self.app.limits.stream_item(principal, count)
                try:
                    yield self._check(principal, request)
                except InvalidInput as exc:
                    yield pb.CheckUploadResponse(
                        content_ref=request.content_ref,
                        error=pb.ItemError(
                            code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message=str(exc)
                        ),
                    )
        finally:
            self._stream_slots.release()

    def _check(
        self, principal: Principal, request: pb.CheckUploadRequest
    ) -> pb.CheckUploadResponse:
        result = self.app.check_upload(
            principal, request.image or None, hashes_from_pb(request.hashes), request.content_ref
        )
        return check_response_to_pb(result, request.content_ref)


class SubmissionServicer(pb_grpc.SubmissionServiceServicer):
    def __init__(self, app: HashGuard) -> None:
        self.app = app

    def SubmitCase(
        self, request: pb.SubmitCaseRequest, context: grpc.ServicerContext
    ) -> pb.SubmitCaseResponse:
        principal = caller(self.app, context)
        case = self.app.submit_case(principal, hashes_from_pb(request.hashes))
        return pb.SubmitCaseResponse(
            case_id=case.case_id, case_token=case.case_token, entry_count=case.entry_count
        )

    def GetCase(
        self, request: pb.GetCaseRequest, context: grpc.ServicerContext
    ) -> pb.GetCaseResponse:
        status = self.app.get_case(request.case_id, request.case_token)
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

    def WithdrawCase(
        self, request: pb.WithdrawCaseRequest, context: grpc.ServicerContext
    ) -> pb.WithdrawCaseResponse:
        status, withdrawn = self.app.withdraw_case(request.case_id, request.case_token)
        return pb.WithdrawCaseResponse(
            case_id=status.case_id,
            state=CASE_STATE_TO_PB[status.state],
            entries_withdrawn=withdrawn,
        )


class ReviewServicer(pb_grpc.ReviewServiceServicer):
    def __init__(self, app: HashGuard) -> None:
        self.app = app

    def ListHits(
        self, request: pb.ListHitsRequest, context: grpc.ServicerContext
    ) -> pb.ListHitsResponse:
        principal = caller(self.app, context)
        state = None
        if request.state != pb.HIT_STATE_UNSPECIFIED:
            state = HIT_STATE_FROM_PB.get(request.state)
            if state is None:
                raise InvalidInput(f"unknown hit state {request.state}")
        hits, next_token = self.app.list_hits(
            principal, state, request.page_size, request.page_token
        )
        return pb.ListHitsResponse(hits=[hit_to_pb(h) for h in hits], next_page_token=next_token)

    def ResolveHit(
        self, request: pb.ResolveHitRequest, context: grpc.ServicerContext
    ) -> pb.ResolveHitResponse:
        principal = caller(self.app, context)
        verdict = VERDICT_FROM_PB.get(request.verdict)
        if verdict is None:
            raise InvalidInput("verdict must be VERDICT_CONFIRMED or VERDICT_REJECTED")
        hit, vetted = self.app.resolve_hit(principal, request.hit_id, verdict, request.note)
        return pb.ResolveHitResponse(hit=hit_to_pb(hit), vetted_entry_ids=vetted)

    def ListDisputedEntries(
        self, request: pb.ListDisputedEntriesRequest, context: grpc.ServicerContext
    ) -> pb.ListDisputedEntriesResponse:
        principal = caller(self.app, context)
        entries, next_token = self.app.list_disputed(
            principal, request.page_size, request.page_token
        )
        return pb.ListDisputedEntriesResponse(
            entries=[disputed_to_pb(e) for e in entries], next_page_token=next_token
        )
