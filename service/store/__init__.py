"""Persistence: the store interface, split by noun, and its value types. Code outside
this package imports only these names (and `open_store`), never a backend module."""

from service.store.audit import AuditLog
from service.store.base import Store
from service.store.cases import CaseStore
from service.store.entries import EntryLog
from service.store.factory import open_store
from service.store.hits import DisputeStore, HitStore
from service.store.keys import KeyStore
from service.store.records import (
    DEFAULT_RULES,
    ApiKeyRecord,
    AuditQuery,
    CaseAuth,
    ChangeHead,
    ImportResult,
    PriorHit,
    ReviewRules,
)

__all__ = [
    "DEFAULT_RULES",
    "ApiKeyRecord",
    "AuditLog",
    "AuditQuery",
    "CaseAuth",
    "CaseStore",
    "ChangeHead",
    "DisputeStore",
    "EntryLog",
    "HitStore",
    "ImportResult",
    "KeyStore",
    "PriorHit",
    "ReviewRules",
    "Store",
    "open_store",
]
