"""The whole store: every noun in one object, as the SQLite and PostgreSQL stores
implement it. Callers that need one noun take that noun's type instead (a replica's
follower takes an `EntryLog`, key management a `KeyStore`).

Every method is one transaction: when it returns, the change is durable. Public methods
check their arguments once, here and in the noun classes (final methods); a backend
implements only the private `_name` methods behind them.
"""

from __future__ import annotations

from abc import abstractmethod

from service.store.audit import AuditLog
from service.store.cases import CaseStore
from service.store.entries import EntryLog
from service.store.hits import DisputeStore, HitStore
from service.store.keys import KeyStore


class Store(EntryLog, CaseStore, HitStore, DisputeStore, KeyStore, AuditLog):
    @abstractmethod
    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
