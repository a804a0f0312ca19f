"""Rate limits and quotas per API key.

Every keyed call takes one token from its key's bucket (a CheckUploads stream one per
upload, a CheckUploadBatch one per upload, all at once or none); the bucket refills at
the role's rate up to its burst. An empty bucket answers QuotaExceeded
(RESOURCE_EXHAUSTED) saying when the tokens will be back. Buckets live in
this process: N replicas behind a load balancer admit up to N times the rate per key.
Decoding is limited too: images and videos being decoded at once may hold at most a budget
of bytes between them, each reserving what its decoders will really allocate (read from its
header by service.media.decode_cost and video_cost; a video also the bytes of its file
while they are held); a call that cannot get its share within DECODE_WAIT_SECONDS is
refused with a retry hint.
Every refusal by a limit, here or elsewhere, is counted by `refused`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from service import metrics
from service.config import Rate
from service.domain import Principal, Role
from service.errors import HashGuardError, LimitExceeded, QuotaExceeded

E = TypeVar("E", bound=HashGuardError)

DECODE_WAIT_SECONDS = 10.0


class TokenBucket:
    """Classic token bucket; `take` answers 0 when the tokens were taken, else the
    seconds until that many will be there (and takes none)."""

    __slots__ = ("_rate", "_stamp", "_tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self._rate = rate
        self._tokens = rate.burst
        self._stamp = now

    def take(self, now: float, count: int = 1) -> float:
        self._refill(now)
        if self._tokens >= count:
            self._tokens -= count
            return 0.0
        return (count - self._tokens) / self._rate.per_second

    def room(self, now: float) -> float:
        """0 when a token is there (none is taken), else the seconds until one is."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate.per_second

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self._rate.burst, self._tokens + elapsed * self._rate.per_second)
        self._stamp = now


class Limits:
    """The buckets of every key this process has seen (one per key name; there are few
    keys, so they are never evicted)."""

    def __init__(
        self,
        rates: dict[Role, Rate],
        max_stream_items: int,
        decode_budget_bytes: int = 0,
        decode_wait: float = DECODE_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates = rates
        self._max_stream_items = max_stream_items
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._decode_budget = decode_budget_bytes
        self._decode_free = decode_budget_bytes
        self._decode_done = threading.Condition()
        self._decode_wait = decode_wait

    def charge(self, principal: Principal, count: int = 1) -> None:
        """Take `count` tokens from the caller's bucket (all or none) or refuse the call.
        More than a burst can never be granted at once: that is refused as too large."""
        rate = self._rates.get(principal.role)
        if rate is None or rate.per_second == 0:
            return
        if count > rate.burst:
            raise self.refused(
                principal,
                LimitExceeded(
                    "rate_burst",
                    f"{count} uploads in one call exceed key {principal.name!r}'s "
                    f"{principal.role.value} rate-limit burst of {rate.burst:g}; "
                    f"send at most {int(rate.burst)} per call",
                ),
            )
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(principal.name)
            if bucket is None:
                bucket = self._buckets[principal.name] = TokenBucket(rate, now)
            wait = bucket.take(now, count)
        if wait > 0:
            asked = "" if count == 1 else f"; this call needs {count} tokens, one per upload"
            raise self.refused(
                principal,
                QuotaExceeded(
                    "rate",
                    f"key {principal.name!r} is over the {principal.role.value} rate limit "
                    f"({rate.per_second:g} calls/s, bursts of {rate.burst:g}){asked}; "
                    f"retry in {wait:.3f} s",
                    retry_after=wait,
                ),
            )

    def stream_item(self, principal: Principal, count: int) -> None:
        """Refuse the `count`-th upload of one CheckUploads stream past the cap."""
        if count > self._max_stream_items:
            raise self.refused(
                principal,
                QuotaExceeded(
                    "stream_items",
                    f"a CheckUploads stream carries at most {self._max_stream_items} uploads; "
                    "the ones answered so far stand, send the rest on a new stream",
                ),
            )

    @contextmanager
    def decoding(self, principal: Principal, cost: int) -> Iterator[None]:
        """Hold `cost` bytes of the decode budget (at most all of it) while the block runs."""
        with self.decode_share(principal) as share:
            share.take(cost)
            yield

    @contextmanager
    def decode_share(self, principal: Principal, what: str = "image") -> Iterator[DecodeShare]:
        """A share of the decode budget that grows as the call learns what it needs (a
        video: its bytes as they arrive, then its decoder's frames), all given back
        when the block ends."""
        share = DecodeShare(self, principal, what)
        try:
            yield share
        finally:
            share.release()

    def _take(self, share: DecodeShare, cost: int, wait: bool) -> bool:
        """Move `cost` bytes (at most what is left of the budget for one call) from the
        budget to `share`; waits up to the decode wait when `wait`, else answers at once."""
        if self._decode_budget <= 0:
            return True
        amount = min(cost, self._decode_budget - share.held)
        with self._decode_done:
            if not self._decode_done.wait_for(
                lambda: self._decode_free >= amount, timeout=self._decode_wait if wait else 0
            ):
                if not wait:
                    return False
                raise self.refused(
                    share.principal,
                    QuotaExceeded(
                        "decode_budget",
                        f"the server is busy decoding other large uploads (this {share.what} "
                        f"needs {(share.held + cost) / 2**20:,.0f} MiB); retry in 1 s",
                        retry_after=1.0,
                    ),
                )
            self._decode_free -= amount
            share.held += amount
        return True

    def _give_back(self, share: DecodeShare) -> None:
        if share.held:
            with self._decode_done:
                self._decode_free += share.held
                share.held = 0
                self._decode_done.notify_all()

    @staticmethod
    def refused(principal: Principal, error: E) -> E:
        """Count a refusal by a limit (for the metric) and return the error to raise."""
        if isinstance(error, LimitExceeded | QuotaExceeded):
            metrics.RATE_LIMITED.labels(principal.role.value, error.limit).inc()
        return error


class DecodeShare:
    """Bytes of the decode budget one call holds (Limits.decode_share)."""

    __slots__ = ("_limits", "held", "principal", "what")

    def __init__(self, limits: Limits, principal: Principal, what: str) -> None:
        self._limits = limits
        self.principal = principal
        self.what = what
        self.held = 0

    def take(self, cost: int) -> None:
        """`cost` bytes more, waiting for them up to the decode wait (QuotaExceeded)."""
        self._limits._take(self, cost, wait=True)

    def try_take(self, cost: int) -> bool:
        """`cost` bytes more if they are free now (never waits: safe on the event loop)."""
        return self._limits._take(self, cost, wait=False)

    def release(self) -> None:
        self._limits._give_back(self)
