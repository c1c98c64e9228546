"""FairSlots: callers are served in turn, the queue is bounded, cancelled waiters leave no trace."""

from __future__ import annotations

import asyncio

import pytest

from server.inference.fairqueue import FairSlots, QueueFull


async def test_a_free_slot_is_granted_at_once() -> None:
    slots = FairSlots(2, max_waiting=0)
    first, second = await slots.acquire("a"), await slots.acquire("a")
    assert {first, second} == {0, 1}
    assert slots.busy == 2


async def test_waiting_callers_are_served_round_robin() -> None:
    slots = FairSlots(1, max_waiting=10)
    held = await slots.acquire("greedy")
    served: list[str] = []

    async def request(caller: str) -> None:
        index = await slots.acquire(caller)
        served.append(caller)
        slots.release(index)

    # The greedy caller queues three requests before the others queue one each.
    tasks = [asyncio.create_task(request(caller)) for caller in ["greedy", "greedy", "greedy", "b", "c"]]
    await asyncio.sleep(0)
    assert slots.waiting == 5
    slots.release(held)
    await asyncio.gather(*tasks)
    assert served == ["greedy", "b", "c", "greedy", "greedy"]


async def test_the_queue_is_bounded() -> None:
    slots = FairSlots(1, max_waiting=1)
    await slots.acquire("a")
    waiter = asyncio.create_task(slots.acquire("b"))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull, match="1 requests are already waiting"):
        await slots.acquire("c")
    waiter.cancel()


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    slots = FairSlots(1, max_waiting=5)
    held = await slots.acquire("a")
    leaving = asyncio.create_task(slots.acquire("b"))
    staying = asyncio.create_task(slots.acquire("c"))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.gather(leaving, return_exceptions=True)
    assert slots.waiting == 1
    slots.release(held)
    assert await staying == held
    slots.release(held)
    assert slots.busy == 0 and slots.waiting == 0
