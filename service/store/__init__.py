"""Persistence: the store interface and its value types. Code outside this package
imports only these names (and `open_store`), never a backend module."""

from service.store.base import (
    DEFAULT_RULES,
    ApiKeyRecord,
    AuditQuery,
    CaseAuth,
    ChangeHead,
    ImportResult,
    PriorHit,
    ReviewRules,
    Store,
)
from service.store.factory import open_store

__all__ = [
    "DEFAULT_RULES",
    "ApiKeyRecord",
    "AuditQuery",
    "CaseAuth",
    "ChangeHead",
    "ImportResult",
    "PriorHit",
    "ReviewRules",
    "Store",
    "open_store",
]
