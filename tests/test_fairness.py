"""service.access.fairness.FairShare on a real event loop: freed slots go to the waiting
tenants in turn, a tenant never holds more than its cap, work that waits too long is
refused, and an abandoned wait gives up its place. (Through a real server:
tests/test_tenant_fairness.py.)"""

from __future__ import annotations

import asyncio

import pytest

from service.access.fairness import FairShare
from service.domain import Principal, Role
from service.errors import QuotaExceeded

A = Principal("a-key", Role.OPERATOR, "forum-a")
B = Principal("b-key", Role.OPERATOR, "forum-b")
C = Principal("c-key", Role.OPERATOR, "forum-c")


async def _order_of_turns() -> list[str]:
    fair = FairShare(slots=1, per_tenant=1, max_wait=60)
    await fair.acquire(A)  # A holds the only slot
    order: list[str] = []

    async def wait(principal: Principal, label: str) -> None:
        await fair.acquire(principal)
        order.append(label)

    # A queues three more, then B and C one each: all behind A's running one.
    tasks = [asyncio.create_task(wait(A, f"a{n}")) for n in range(3)]
    tasks += [asyncio.create_task(wait(B, "b0")), asyncio.create_task(wait(C, "c0"))]
    await asyncio.sleep(0)
    for turn in range(5):
        fair.release(_principal(order[-1]) if order else A)  # the last one granted ends
        while len(order) <= turn:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return order


def _principal(label: str) -> Principal:
    return {"a": A, "b": B, "c": C}[label[0]]


def test_freed_slots_go_to_waiting_tenants_in_turn() -> None:
    """A's later work waits behind one turn of each other tenant, not the reverse."""
    order = asyncio.run(_order_of_turns())
    assert order[:3] == ["a0", "b0", "c0"]
    assert sorted(order[3:]) == ["a1", "a2"]


async def _capped() -> tuple[int, int]:
    fair = FairShare(slots=4, per_tenant=2, max_wait=60)
    await fair.acquire(A)
    await fair.acquire(A)
    third = asyncio.create_task(fair.acquire(A))
    await asyncio.sleep(0)
    await fair.acquire(B)  # a free slot, and B is under its cap: no wait
    held = fair.running("forum-a"), fair.running("forum-b")
    fair.release(A)
    await third
    return held[0] * 10 + held[1], fair.running("forum-a")


def test_a_tenant_never_holds_more_than_its_cap() -> None:
    held, after_release = asyncio.run(_capped())
    assert held == 21  # A 2 (its cap, a third waiting while slots were free), B 1
    assert after_release == 2


async def _too_long() -> tuple[QuotaExceeded, int]:
    fair = FairShare(slots=1, per_tenant=1, max_wait=0.05)
    await fair.acquire(A)
    with pytest.raises(QuotaExceeded) as refused:
        await fair.acquire(B)
    return refused.value, fair.waiting()


def test_work_waiting_longer_than_the_queue_time_is_refused() -> None:
    error, waiting = asyncio.run(_too_long())
    assert error.status == "RESOURCE_EXHAUSTED" and error.limit == "check_queue"
    assert "--check-queue-seconds" in str(error)
    assert waiting == 0  # the refused wait left the queue


async def _abandoned() -> list[str]:
    fair = FairShare(slots=1, per_tenant=1, max_wait=60)
    await fair.acquire(A)
    gone = asyncio.create_task(fair.acquire(B))
    order: list[str] = []

    async def then_c() -> None:
        await fair.acquire(C)
        order.append("c")

    waiting_c = asyncio.create_task(then_c())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    fair.release(A)
    await waiting_c
    return [*order, str(fair.running("forum-b"))]


def test_an_abandoned_wait_gives_up_its_place() -> None:
    assert asyncio.run(_abandoned()) == ["c", "0"]
