"""Calls that fail authentication must cost next to nothing, so a flood of them cannot
load the store or the thread pool.

- `AbsentKeys` remembers key ids the store said do not exist (bounded, for
  ABSENT_KEY_SECONDS): a key with such an id is refused from memory, on the event loop,
  with no store read. Key ids are 48 random bits made by `hashguard keys add`, so an id
  refused now is not one an operator is about to create.
- `PeerFailures` gives each peer address a token bucket of failed authentications
  (`--auth-failures-per-peer`). A peer that spent it gets RESOURCE_EXHAUSTED with the
  time to wait, for failures and for keys the cache cannot answer (which would need a
  store read); a valid key answered from the cache still works from that address.
Both are bounded (least recently used dropped first), so neither grows with a flood of
random key ids or addresses.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from service import metrics
from service.access.limits import TokenBucket
from service.config import Rate
from service.errors import QuotaExceeded

ABSENT_KEY_SECONDS = 60.0
MAX_ABSENT_KEYS = 100_000
MAX_PEERS = 65_536


class AbsentKeys:
    """Key ids the store did not have, each remembered for ABSENT_KEY_SECONDS."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key_id: str) -> None:
        with self._lock:
            self._seen[key_id] = self._clock()
            self._seen.move_to_end(key_id)
            while len(self._seen) > MAX_ABSENT_KEYS:
                self._seen.popitem(last=False)

    def discard(self, key_id: str) -> None:
        with self._lock:
            self._seen.pop(key_id, None)

    def __contains__(self, key_id: str) -> bool:
        with self._lock:
            seen = self._seen.get(key_id)
            if seen is None:
                return False
            if self._clock() - seen >= ABSENT_KEY_SECONDS:
                del self._seen[key_id]
                return False
            return True


def peer_address(peer: str) -> str:
    """`ipv4:10.0.0.7:51234` -> `ipv4:10.0.0.7`, `ipv6:[::1]:5000` -> `ipv6:[::1]`: the
    address without the port, which changes with every connection."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in rest:
        return f"{kind}:{rest.rsplit(':', 1)[0]}"
    return peer


class PeerFailures:
    """A token bucket of failed authentications per peer address."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def failed(self, peer: str) -> None:
        """Count one failed authentication; refuse it when the peer has none left."""
        self._take(peer, 1)

    def require_room(self, peer: str) -> None:
        """Refuse a call that would need a store read when the peer has no failures
        left (taking none: a key that turns out valid costs nothing)."""
        self._take(peer, 0)

    def _take(self, peer: str, count: int) -> None:
        if self._rate.per_second <= 0:
            return
        address = peer_address(peer)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(address)
            if bucket is None:
                bucket = self._buckets[address] = TokenBucket(self._rate, now)
                while len(self._buckets) > MAX_PEERS:
                    self._buckets.popitem(last=False)
            self._buckets.move_to_end(address)
            wait = bucket.take(now, count) if count else bucket.room(now)
        if wait > 0:
            metrics.RATE_LIMITED.labels("unauthenticated", "auth_failures").inc()
            raise QuotaExceeded(
                "auth_failures",
                f"too many calls with unknown, revoked or malformed API keys from "
                f"{address} ({self._rate.per_second:g}/s, bursts of {self._rate.burst:g}, "
                f"--auth-failures-per-peer); check the key and retry in {wait:.1f} s",
                retry_after=wait,
            )
