"""Who is calling: an API key -> its principal, from the key's record in the store, kept
for `key_cache_seconds` so most calls need no store read (docs/SECURITY.md)."""

from __future__ import annotations

import time

from service import metrics
from service.access.auth import same_secret, split_api_key
from service.access.failures import AbsentKeys
from service.domain import Principal
from service.errors import Unauthenticated, Unavailable
from service.store import ApiKeyRecord, KeyStore

# After a failed store read, the store is left alone this long.
_STORE_RETRY_SECONDS = 5.0


class Authenticator:
    def __init__(self, store: KeyStore, key_cache_seconds: float) -> None:
        self.store = store
        self.key_cache_seconds = key_cache_seconds
        # key id -> (record, time.monotonic() when read)
        self._known_keys: dict[str, tuple[ApiKeyRecord, float]] = {}
        # Key ids the store said do not exist: refused without asking it again.
        self.absent_keys = AbsentKeys()
        self._store_down_until = 0.0

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
        key_id = split_api_key(api_key)
        cached = self._known_keys.get(key_id)
        if cached is None:
            if key_id in self.absent_keys:  # the store said so lately: no need to ask
                raise Unauthenticated("unknown or revoked API key")
            return None
        record, read_at = cached
        now = time.monotonic()
        if now - read_at >= self.key_cache_seconds and now >= self._store_down_until:
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
        return time.monotonic() - cached[1] >= self.key_cache_seconds / 2

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
        return Principal(
            record.name, record.role, record.tenant, record.cases_per_hour, record.hashes_per_hour
        )

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
            metrics.KEY_READS.inc()
            record = self.store.get_api_key(key_id)
        except Unavailable:
            self._store_down_until = time.monotonic() + _STORE_RETRY_SECONDS
            if known is None:
                raise
            return known[0]
        if record is not None:
            self._known_keys[key_id] = (record, time.monotonic())
            self.absent_keys.discard(key_id)
        else:
            self._known_keys.pop(key_id, None)
            self.absent_keys.add(key_id)
        return record
