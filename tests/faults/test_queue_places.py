"""The places a waiting generation is told: admission's queue, and a local model's fair round."""

from __future__ import annotations

import asyncio

import pytest

from server.inference.admission import Admission, TooManyStreams
from server.inference.fairqueue import FairSlots


async def test_admission_tells_each_waiter_its_place_as_the_queue_moves() -> None:
    admission = Admission(limit=1, queue=2)
    held = await admission.enter(wait=False)
    places: dict[str, list[int]] = {"a": [], "b": []}
    waiting = {name: asyncio.create_task(admission.enter(wait=True, on_position=places[name].append)) for name in "ab"}
    await asyncio.sleep(0.01)
    with pytest.raises(TooManyStreams):  # the queue is full
        await admission.enter(wait=True, on_position=lambda place: None)
    with pytest.raises(TooManyStreams):  # nobody to tell: refused rather than kept waiting
        await admission.enter(wait=False)
    held.release()
    first = await waiting["a"]
    await asyncio.sleep(0.01)
    assert places == {"a": [1], "b": [2, 1]}
    first.release()
    (await waiting["b"]).release()
    assert admission.active == 0 and admission.waiting == 0


async def test_a_waiter_that_leaves_gives_up_its_place() -> None:
    admission = Admission(limit=1, queue=4)
    held = await admission.enter(wait=False)
    places: list[int] = []
    leaving = asyncio.create_task(admission.enter(wait=True, on_position=lambda place: None))
    staying = asyncio.create_task(admission.enter(wait=True, on_position=places.append))
    await asyncio.sleep(0.01)
    leaving.cancel()
    await asyncio.sleep(0.01)
    assert places == [2, 1] and admission.waiting == 1
    held.release()
    (await staying).release()
    assert admission.active == 0


async def test_a_local_models_round_says_each_waiter_its_place() -> None:
    slots = FairSlots(1, max_waiting=10)
    held = await slots.acquire("greedy")
    places: dict[str, list[int]] = {}

    async def request(name: str, caller: str) -> None:
        places[name] = []
        slots.release(await slots.acquire(caller, places[name].append))

    # greedy queues three, then b and c one each: the round serves greedy, b, c, greedy, greedy.
    tasks = []
    for name, caller in (("g1", "greedy"), ("g2", "greedy"), ("g3", "greedy"), ("b", "b"), ("c", "c")):
        tasks.append(asyncio.create_task(request(name, caller)))
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.1)  # places in a local model's round are said again within a second
    assert {name: told[-1] for name, told in places.items()} == {"g1": 1, "g2": 4, "g3": 5, "b": 2, "c": 3}
    slots.release(held)
    await asyncio.gather(*tasks)
