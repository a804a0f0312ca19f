import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HashAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HASH_ALGORITHM_UNSPECIFIED: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_PDQ: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_PHASH: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_SHA256: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_MD5: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_PDQ_WINDOW: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_VIDEO_MD5: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_VIDEO_SHA256: _ClassVar[HashAlgorithm]
    HASH_ALGORITHM_VPDQ: _ClassVar[HashAlgorithm]

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ALLOW: _ClassVar[Decision]
    DECISION_REVIEW: _ClassVar[Decision]
    DECISION_BLOCK: _ClassVar[Decision]

class EntryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_STATE_UNSPECIFIED: _ClassVar[EntryState]
    ENTRY_STATE_PENDING: _ClassVar[EntryState]
    ENTRY_STATE_VETTED: _ClassVar[EntryState]
    ENTRY_STATE_WITHDRAWN: _ClassVar[EntryState]

class MatchPart(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_PART_UNSPECIFIED: _ClassVar[MatchPart]
    MATCH_PART_WHOLE: _ClassVar[MatchPart]
    MATCH_PART_DIHEDRAL: _ClassVar[MatchPart]
    MATCH_PART_INNER: _ClassVar[MatchPart]
    MATCH_PART_STRIP: _ClassVar[MatchPart]
    MATCH_PART_ROTATED: _ClassVar[MatchPart]
    MATCH_PART_PANEL: _ClassVar[MatchPart]
    MATCH_PART_SEGMENT: _ClassVar[MatchPart]

class CaseState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_STATE_UNSPECIFIED: _ClassVar[CaseState]
    CASE_STATE_ACTIVE: _ClassVar[CaseState]
    CASE_STATE_WITHDRAWN: _ClassVar[CaseState]

class HitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HIT_STATE_UNSPECIFIED: _ClassVar[HitState]
    HIT_STATE_PENDING: _ClassVar[HitState]
    HIT_STATE_CONFIRMED: _ClassVar[HitState]
    HIT_STATE_REJECTED: _ClassVar[HitState]
    HIT_STATE_WITHDRAWN: _ClassVar[HitState]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_CONFIRMED: _ClassVar[Verdict]
    VERDICT_REJECTED: _ClassVar[Verdict]
HASH_ALGORITHM_UNSPECIFIED: HashAlgorithm
HASH_ALGORITHM_PDQ: HashAlgorithm
HASH_ALGORITHM_PHASH: HashAlgorithm
HASH_ALGORITHM_SHA256: HashAlgorithm
HASH_ALGORITHM_MD5: HashAlgorithm
HASH_ALGORITHM_PDQ_WINDOW: HashAlgorithm
HASH_ALGORITHM_VIDEO_MD5: HashAlgorithm
HASH_ALGORITHM_VIDEO_SHA256: HashAlgorithm
HASH_ALGORITHM_VPDQ: HashAlgorithm
DECISION_UNSPECIFIED: Decision
DECISION_ALLOW: Decision
DECISION_REVIEW: Decision
DECISION_BLOCK: Decision
ENTRY_STATE_UNSPECIFIED: EntryState
ENTRY_STATE_PENDING: EntryState
ENTRY_STATE_VETTED: EntryState
ENTRY_STATE_WITHDRAWN: EntryState
MATCH_PART_UNSPECIFIED: MatchPart
MATCH_PART_WHOLE: MatchPart
MATCH_PART_DIHEDRAL: MatchPart
MATCH_PART_INNER: MatchPart
MATCH_PART_STRIP: MatchPart
MATCH_PART_ROTATED: MatchPart
MATCH_PART_PANEL: MatchPart
MATCH_PART_SEGMENT: MatchPart
CASE_STATE_UNSPECIFIED: CaseState
CASE_STATE_ACTIVE: CaseState
CASE_STATE_WITHDRAWN: CaseState
HIT_STATE_UNSPECIFIED: HitState
HIT_STATE_PENDING: HitState
HIT_STATE_CONFIRMED: HitState
HIT_STATE_REJECTED: HitState
HIT_STATE_WITHDRAWN: HitState
VERDICT_UNSPECIFIED: Verdict
VERDICT_CONFIRMED: Verdict
VERDICT_REJECTED: Verdict

class Hash(_message.Message):
    __slots__ = ("algorithm", "value", "quality")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    algorithm: HashAlgorithm
    value: bytes
    quality: int
    def __init__(self, algorithm: _Optional[_Union[HashAlgorithm, str]] = ..., value: _Optional[bytes] = ..., quality: _Optional[int] = ...) -> None: ...

class VideoSpan(_message.Message):
    __slots__ = ("upload_start_seconds", "upload_end_seconds", "listed_start_seconds", "listed_end_seconds")
    UPLOAD_START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LISTED_START_SECONDS_FIELD_NUMBER: _ClassVar[int]
    LISTED_END_SECONDS_FIELD_NUMBER: _ClassVar[int]
    upload_start_seconds: float
    upload_end_seconds: float
    listed_start_seconds: float
    listed_end_seconds: float
    def __init__(self, upload_start_seconds: _Optional[float] = ..., upload_end_seconds: _Optional[float] = ..., listed_start_seconds: _Optional[float] = ..., listed_end_seconds: _Optional[float] = ...) -> None: ...

class Match(_message.Message):
    __slots__ = ("entry_id", "algorithm", "distance", "entry_state", "part", "partial", "agreed", "region", "span")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_STATE_FIELD_NUMBER: _ClassVar[int]
    PART_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    AGREED_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    algorithm: HashAlgorithm
    distance: int
    entry_state: EntryState
    part: MatchPart
    partial: bool
    agreed: bool
    region: str
    span: VideoSpan
    def __init__(self, entry_id: _Optional[int] = ..., algorithm: _Optional[_Union[HashAlgorithm, str]] = ..., distance: _Optional[int] = ..., entry_state: _Optional[_Union[EntryState, str]] = ..., part: _Optional[_Union[MatchPart, str]] = ..., partial: _Optional[bool] = ..., agreed: _Optional[bool] = ..., region: _Optional[str] = ..., span: _Optional[_Union[VideoSpan, _Mapping]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class CheckUploadRequest(_message.Message):
    __slots__ = ("image", "hashes", "content_ref", "video")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    CONTENT_REF_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    hashes: _containers.RepeatedCompositeFieldContainer[Hash]
    content_ref: str
    video: bytes
    def __init__(self, image: _Optional[bytes] = ..., hashes: _Optional[_Iterable[_Union[Hash, _Mapping]]] = ..., content_ref: _Optional[str] = ..., video: _Optional[bytes] = ...) -> None: ...

class CheckVideoRequest(_message.Message):
    __slots__ = ("content_ref", "total_bytes", "chunk")
    CONTENT_REF_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    content_ref: str
    total_bytes: int
    chunk: bytes
    def __init__(self, content_ref: _Optional[str] = ..., total_bytes: _Optional[int] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class CheckUploadResponse(_message.Message):
    __slots__ = ("decision", "matches", "computed_hashes", "hit_id", "content_ref", "notes", "error")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_HASHES_FIELD_NUMBER: _ClassVar[int]
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_REF_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    matches: _containers.RepeatedCompositeFieldContainer[Match]
    computed_hashes: _containers.RepeatedCompositeFieldContainer[Hash]
    hit_id: str
    content_ref: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    error: ItemError
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., matches: _Optional[_Iterable[_Union[Match, _Mapping]]] = ..., computed_hashes: _Optional[_Iterable[_Union[Hash, _Mapping]]] = ..., hit_id: _Optional[str] = ..., content_ref: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class CheckUploadBatchRequest(_message.Message):
    __slots__ = ("uploads",)
    UPLOADS_FIELD_NUMBER: _ClassVar[int]
    uploads: _containers.RepeatedCompositeFieldContainer[CheckUploadRequest]
    def __init__(self, uploads: _Optional[_Iterable[_Union[CheckUploadRequest, _Mapping]]] = ...) -> None: ...

class CheckUploadBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CheckUploadResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[CheckUploadResponse, _Mapping]]] = ...) -> None: ...

class SubmitCaseRequest(_message.Message):
    __slots__ = ("hashes",)
    HASHES_FIELD_NUMBER: _ClassVar[int]
    hashes: _containers.RepeatedCompositeFieldContainer[Hash]
    def __init__(self, hashes: _Optional[_Iterable[_Union[Hash, _Mapping]]] = ...) -> None: ...

class SubmitCaseResponse(_message.Message):
    __slots__ = ("case_id", "case_token", "entry_count")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENTRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    case_token: str
    entry_count: int
    def __init__(self, case_id: _Optional[str] = ..., case_token: _Optional[str] = ..., entry_count: _Optional[int] = ...) -> None: ...

class GetCaseRequest(_message.Message):
    __slots__ = ("case_id", "case_token")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    case_token: str
    def __init__(self, case_id: _Optional[str] = ..., case_token: _Optional[str] = ...) -> None: ...

class GetCaseResponse(_message.Message):
    __slots__ = ("case_id", "state", "created_at", "entries_pending", "entries_vetted", "entries_withdrawn", "hits_total", "hits_confirmed")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_PENDING_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_VETTED_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    HITS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    HITS_CONFIRMED_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    state: CaseState
    created_at: _timestamp_pb2.Timestamp
    entries_pending: int
    entries_vetted: int
    entries_withdrawn: int
    hits_total: int
    hits_confirmed: int
    def __init__(self, case_id: _Optional[str] = ..., state: _Optional[_Union[CaseState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., entries_pending: _Optional[int] = ..., entries_vetted: _Optional[int] = ..., entries_withdrawn: _Optional[int] = ..., hits_total: _Optional[int] = ..., hits_confirmed: _Optional[int] = ...) -> None: ...

class WithdrawCaseRequest(_message.Message):
    __slots__ = ("case_id", "case_token")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    case_token: str
    def __init__(self, case_id: _Optional[str] = ..., case_token: _Optional[str] = ...) -> None: ...

class WithdrawCaseResponse(_message.Message):
    __slots__ = ("case_id", "state", "entries_withdrawn")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    state: CaseState
    entries_withdrawn: int
    def __init__(self, case_id: _Optional[str] = ..., state: _Optional[_Union[CaseState, str]] = ..., entries_withdrawn: _Optional[int] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("hit_id", "state", "operator", "content_ref", "created_at", "matches", "note", "resolved_by", "resolved_at", "tenant")
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    CONTENT_REF_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_BY_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    hit_id: str
    state: HitState
    operator: str
    content_ref: str
    created_at: _timestamp_pb2.Timestamp
    matches: _containers.RepeatedCompositeFieldContainer[Match]
    note: str
    resolved_by: str
    resolved_at: _timestamp_pb2.Timestamp
    tenant: str
    def __init__(self, hit_id: _Optional[str] = ..., state: _Optional[_Union[HitState, str]] = ..., operator: _Optional[str] = ..., content_ref: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., matches: _Optional[_Iterable[_Union[Match, _Mapping]]] = ..., note: _Optional[str] = ..., resolved_by: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListHitsRequest(_message.Message):
    __slots__ = ("state", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: HitState
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[HitState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListHitsResponse(_message.Message):
    __slots__ = ("hits", "next_page_token")
    HITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    next_page_token: str
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResolveHitRequest(_message.Message):
    __slots__ = ("hit_id", "verdict", "note", "vet_partial_matches")
    HIT_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    VET_PARTIAL_MATCHES_FIELD_NUMBER: _ClassVar[int]
    hit_id: str
    verdict: Verdict
    note: str
    vet_partial_matches: bool
    def __init__(self, hit_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., note: _Optional[str] = ..., vet_partial_matches: _Optional[bool] = ...) -> None: ...

class ResolveHitResponse(_message.Message):
    __slots__ = ("hit", "vetted_entry_ids")
    HIT_FIELD_NUMBER: _ClassVar[int]
    VETTED_ENTRY_IDS_FIELD_NUMBER: _ClassVar[int]
    hit: Hit
    vetted_entry_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, hit: _Optional[_Union[Hit, _Mapping]] = ..., vetted_entry_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DisputedEntry(_message.Message):
    __slots__ = ("entry_id", "algorithm", "state", "disputed_at", "rejecting_tenants", "confirming_tenants")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DISPUTED_AT_FIELD_NUMBER: _ClassVar[int]
    REJECTING_TENANTS_FIELD_NUMBER: _ClassVar[int]
    CONFIRMING_TENANTS_FIELD_NUMBER: _ClassVar[int]
    entry_id: int
    algorithm: HashAlgorithm
    state: EntryState
    disputed_at: _timestamp_pb2.Timestamp
    rejecting_tenants: int
    confirming_tenants: int
    def __init__(self, entry_id: _Optional[int] = ..., algorithm: _Optional[_Union[HashAlgorithm, str]] = ..., state: _Optional[_Union[EntryState, str]] = ..., disputed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rejecting_tenants: _Optional[int] = ..., confirming_tenants: _Optional[int] = ...) -> None: ...

class ListDisputedEntriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDisputedEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DisputedEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[DisputedEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
