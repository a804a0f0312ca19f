"""Proto messages <-> domain types. The only module that knows both vocabularies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from hashguard.v1 import hashguard_pb2 as pb

from service.domain import (
    CaseState,
    Decision,
    DisputedEntry,
    EntryState,
    HashValue,
    Hit,
    HitMatch,
    HitState,
    Match,
    MatchPart,
    Span,
    Verdict,
)
from service.errors import HashGuardError, InvalidInput
from service.signals.base import SignalType
from service.signals.registry import REGISTRY
from service.usecases.check import CheckResult, Upload
from service.usecases.videos import VideoPart

# Each hash type names its enum value; check_hash_types (at start-up) makes sure they
# agree, so the maps below miss nothing once a server or the CLI is running.
_IN_ENUM = set(pb.HashAlgorithm.keys())
ALGORITHM_TO_PB: dict[SignalType, pb.HashAlgorithm] = {
    s: cast(pb.HashAlgorithm, pb.HashAlgorithm.Value(s.proto_name))
    for s in REGISTRY
    if s.proto_name in _IN_ENUM
}
ALGORITHM_FROM_PB = {v: k for k, v in ALGORITHM_TO_PB.items()}
DECISION_TO_PB = {
    Decision.ALLOW: pb.DECISION_ALLOW,
    Decision.REVIEW: pb.DECISION_REVIEW,
    Decision.BLOCK: pb.DECISION_BLOCK,
}
ENTRY_STATE_TO_PB = {
    EntryState.PENDING: pb.ENTRY_STATE_PENDING,
    EntryState.VETTED: pb.ENTRY_STATE_VETTED,
    EntryState.WITHDRAWN: pb.ENTRY_STATE_WITHDRAWN,
}
CASE_STATE_TO_PB = {
    CaseState.ACTIVE: pb.CASE_STATE_ACTIVE,
    CaseState.WITHDRAWN: pb.CASE_STATE_WITHDRAWN,
}
HIT_STATE_TO_PB = {
    HitState.PENDING: pb.HIT_STATE_PENDING,
    HitState.CONFIRMED: pb.HIT_STATE_CONFIRMED,
    HitState.REJECTED: pb.HIT_STATE_REJECTED,
    HitState.WITHDRAWN: pb.HIT_STATE_WITHDRAWN,
}
HIT_STATE_FROM_PB = {v: k for k, v in HIT_STATE_TO_PB.items()}
PART_TO_PB = {
    MatchPart.WHOLE: pb.MATCH_PART_WHOLE,
    MatchPart.DIHEDRAL: pb.MATCH_PART_DIHEDRAL,
    MatchPart.INNER: pb.MATCH_PART_INNER,
    MatchPart.STRIP: pb.MATCH_PART_STRIP,
    MatchPart.ROTATED: pb.MATCH_PART_ROTATED,
    MatchPart.PANEL: pb.MATCH_PART_PANEL,
    MatchPart.SEGMENT: pb.MATCH_PART_SEGMENT,
}
VERDICT_FROM_PB = {pb.VERDICT_CONFIRMED: Verdict.CONFIRMED, pb.VERDICT_REJECTED: Verdict.REJECTED}


def check_hash_types() -> None:
    """Start-up check: every value of the proto enum HashAlgorithm has a hash type
    (service/signals) and every type's value is in the enum; RegistryError otherwise."""
    REGISTRY.check_enum(_IN_ENUM)


def hashes_from_pb(messages: Iterable[pb.Hash]) -> list[HashValue]:
    result = []
    for i, message in enumerate(messages):
        algorithm = ALGORITHM_FROM_PB.get(message.algorithm)
        if algorithm is None:
            names = ", ".join(s.proto_name.removeprefix("HASH_ALGORITHM_") for s in ALGORITHM_TO_PB)
            raise InvalidInput(
                f"hashes[{i}].algorithm must be set ({names}), got {message.algorithm}"
            )
        if not 0 <= message.quality <= 100:
            raise InvalidInput(f"hashes[{i}].quality must be 0..100, got {message.quality}")
        result.append(HashValue(algorithm, bytes(message.value), message.quality or None))
    return result


def hash_to_pb(value: HashValue) -> pb.Hash:
    return pb.Hash(
        algorithm=ALGORITHM_TO_PB[value.algorithm], value=value.value, quality=value.quality or 0
    )


def timestamp(seconds: float | None) -> Timestamp | None:
    if seconds is None:
        return None
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def hit_to_pb(hit: Hit) -> pb.Hit:
    return pb.Hit(
        hit_id=hit.hit_id,
        state=HIT_STATE_TO_PB[hit.state],
        operator=hit.operator,
        content_ref=hit.content_ref,
        created_at=timestamp(hit.created_at),
        matches=[match_to_pb(m) for m in hit.matches],
        note=hit.note,
        resolved_by=hit.resolved_by,
        resolved_at=timestamp(hit.resolved_at),
        tenant=hit.tenant,
    )


def disputed_to_pb(entry: DisputedEntry) -> pb.DisputedEntry:
    return pb.DisputedEntry(
        entry_id=entry.entry_id,
        algorithm=ALGORITHM_TO_PB[entry.algorithm],
        state=ENTRY_STATE_TO_PB[entry.state],
        disputed_at=timestamp(entry.disputed_at),
        rejecting_tenants=entry.rejecting_tenants,
        confirming_tenants=entry.confirming_tenants,
    )


def match_to_pb(match: Match | HitMatch) -> pb.Match:
    return pb.Match(
        entry_id=match.entry_id,
        algorithm=ALGORITHM_TO_PB[match.algorithm],
        distance=match.distance,
        entry_state=ENTRY_STATE_TO_PB[match.entry_state],
        part=PART_TO_PB.get(match.part, pb.MATCH_PART_UNSPECIFIED),
        partial=match.part.partial,
        agreed=isinstance(match, HitMatch) and match.agreed,
        region=match.region,
        span=span_to_pb(match.span),
    )


def span_to_pb(span: Span | None) -> pb.VideoSpan | None:
    if span is None:
        return None
    return pb.VideoSpan(
        upload_start_seconds=span.upload_start,
        upload_end_seconds=span.upload_end,
        listed_start_seconds=span.listed_start,
        listed_end_seconds=span.listed_end,
    )


def check_response_to_pb(result: CheckResult, content_ref: str) -> pb.CheckUploadResponse:
    return pb.CheckUploadResponse(
        decision=DECISION_TO_PB[result.decision],
        matches=[match_to_pb(m) for m in result.matches],
        computed_hashes=[hash_to_pb(h) for h in result.computed],
        hit_id=result.hit_id,
        content_ref=content_ref,
        notes=result.notes,
    )


def upload_from_pb(request: pb.CheckUploadRequest) -> Upload:
    """An upload to check; one whose hashes cannot be read carries that error, and so
    does a video here: CheckUploads and CheckUploadBatch carry images and hashes, a
    video goes alone in CheckUpload or CheckVideo (its memory is budgeted per call)."""
    if request.video:
        return Upload(None, [], request.content_ref, invalid=InvalidInput(VIDEO_ALONE))
    try:
        hashes = hashes_from_pb(request.hashes)
    except InvalidInput as exc:
        return Upload(None, [], request.content_ref, invalid=exc)
    return Upload(request.image or None, hashes, request.content_ref)


VIDEO_ALONE = (
    "a video goes alone: in CheckUpload's `video` (up to max_message_bytes) or streamed "
    "through CheckVideo, not in CheckUploads or CheckUploadBatch"
)


def video_upload_from_pb(request: pb.CheckUploadRequest) -> tuple[bytes, str]:
    """CheckUpload's video and content_ref; a video with an image or hashes is refused."""
    if request.image or len(request.hashes):
        raise InvalidInput("set exactly one of 'image', 'video' and 'hashes'")
    return request.video, request.content_ref


def video_part_from_pb(request: pb.CheckVideoRequest) -> VideoPart:
    return VideoPart(request.content_ref, request.total_bytes, request.chunk)


def item_error_to_pb(content_ref: str, error: HashGuardError) -> pb.CheckUploadResponse:
    """The answer for one upload of a stream or batch that was not checked."""
    code = getattr(grpc.StatusCode, error.status).value[0]
    return pb.CheckUploadResponse(
        content_ref=content_ref, error=pb.ItemError(code=code, message=str(error))
    )


def outcome_to_pb(
    content_ref: str, outcome: CheckResult | HashGuardError
) -> pb.CheckUploadResponse:
    if isinstance(outcome, HashGuardError):
        return item_error_to_pb(content_ref, outcome)
    return check_response_to_pb(outcome, content_ref)
