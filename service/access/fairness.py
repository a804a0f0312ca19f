"""CPU work shared fairly between tenants: image checks and chunks of batch searches run
in the check pool's threads, and who gets the next free thread is decided here, on the
event loop. Each tenant waits in its own queue; a freed thread goes to the next tenant in
turn (round robin) that holds fewer than its cap, so one tenant's 40 image bombs take at
most its cap of threads and every other tenant's next piece of work runs after at most
one piece of each tenant ahead of it. Work that waits longer than the queue time is
refused (RESOURCE_EXHAUSTED) rather than answered after its caller gave up.

Everything here runs on the one event loop, so plain counters need no lock."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from service.domain import Principal
from service.errors import QuotaExceeded


@dataclass(eq=False, slots=True)
class _Waiter:
    tenant: str
    granted: asyncio.Future[None]


class FairShare:
    """`slots` pieces of work at once, at most `per_tenant` of them one tenant's; the
    rest wait in per-tenant queues served round robin for up to `max_wait` seconds."""

    def __init__(
        self,
        slots: int,
        per_tenant: int,
        max_wait: float,
    ) -> None:
        self.slots = slots
        self.per_tenant = max(1, min(per_tenant, slots))
        self.max_wait = max_wait
        self._free = slots
        self._running: dict[str, int] = {}
        self._queues: dict[str, deque[_Waiter]] = {}
        self._turns: deque[str] = deque()  # tenants with waiters, next in turn first

    def running(self, tenant: str) -> int:
        return self._running.get(tenant, 0)

    def waiting(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def acquire(self, principal: Principal) -> None:
        """Wait for a turn; the caller must `release(principal)` once the work is done
        (not merely abandoned: a thread still running holds its slot)."""
        tenant = principal.tenant
        waiter = _Waiter(tenant, asyncio.get_running_loop().create_future())
        queue = self._queues.get(tenant)
        if queue is None:
            queue = self._queues[tenant] = deque()
            self._turns.append(tenant)
        queue.append(waiter)
        self._dispatch()
        if waiter.granted.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(waiter.granted), self.max_wait)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.granted.done():  # granted just as the wait ended: hand it back
                self.release(principal)
            else:
                waiter.granted.cancel()
                self._forget(waiter)
            if isinstance(exc, TimeoutError):
                raise QuotaExceeded(
                    "check_queue",
                    f"the server is busy with other image checks and batches: this one "
                    f"waited {self.max_wait:g} s for a turn (--check-queue-seconds) and was "
                    "not started; retry in a few seconds",
                    retry_after=1.0,
                ) from None
            raise

    def release(self, principal: Principal) -> None:
        tenant = principal.tenant
        self._free += 1
        left = self._running.get(tenant, 0) - 1
        if left > 0:
            self._running[tenant] = left
        else:
            self._running.pop(tenant, None)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiting tenants in turn, skipping those at their cap."""
        while self._free > 0 and self._turns:
            for _ in range(len(self._turns)):
                tenant = self._turns[0]
                self._turns.rotate(-1)
                if self._running.get(tenant, 0) < self.per_tenant:
                    break
            else:
                return  # every waiting tenant is at its cap
            queue = self._queues[tenant]
            waiter = queue.popleft()
            if not queue:
                del self._queues[tenant]
                self._turns.remove(tenant)
            self._free -= 1
            self._running[tenant] = self._running.get(tenant, 0) + 1
            waiter.granted.set_result(None)

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.tenant)
        if queue is None or waiter not in queue:
            return
        queue.remove(waiter)
        if not queue:
            del self._queues[waiter.tenant]
            self._turns.remove(waiter.tenant)
