"""The rate limiters on their own: in process memory and in the local Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from server.ratelimit.limiter import MemoryRateLimiter, RateLimit, RateLimiter, RedisRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    made: RateLimiter = MemoryRateLimiter() if request.param == "memory" else RedisRateLimiter(REDIS_URL)
    yield made
    await made.close()


def fresh_key() -> str:
    # Redis keeps keys between runs (and between tests): each test counts its own.
    return f"test:{uuid.uuid4().hex}"


async def test_uses_are_counted_until_the_limit(limiter: RateLimiter) -> None:
    key, rule = fresh_key(), RateLimit(3, 60)
    began = time.time()
    decisions = [await limiter.hit(key, rule) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    # The window opened at the first use and ends a period later, for every decision in it.
    assert {d.reset_at for d in decisions} <= {int(began) + 60, int(began) + 61}


async def test_peek_decides_without_counting(limiter: RateLimiter) -> None:
    key, rule = fresh_key(), RateLimit(1, 60)
    assert (await limiter.peek(key, rule)).allowed
    assert (await limiter.peek(key, rule)).allowed
    assert (await limiter.hit(key, rule)).allowed
    assert not (await limiter.peek(key, rule)).allowed


async def test_a_window_opens_at_first_use_not_on_the_clock(limiter: RateLimiter) -> None:
    key, rule = fresh_key(), RateLimit(2, 1)
    assert [(await limiter.hit(key, rule)).allowed for _ in range(3)] == [True, True, False]
    await asyncio.sleep(1.2)  # the window ends one period after its first use
    assert (await limiter.hit(key, rule)).remaining == 1


async def test_keys_and_periods_have_their_own_counts(limiter: RateLimiter) -> None:
    key = fresh_key()
    assert not [(await limiter.hit(key, RateLimit(1, 60))).allowed for _ in range(2)][-1]
    assert (await limiter.hit(key, RateLimit(1, 300))).allowed
    assert (await limiter.hit(fresh_key(), RateLimit(1, 60))).allowed


async def test_two_redis_limiters_share_one_budget() -> None:
    first, second = RedisRateLimiter(REDIS_URL), RedisRateLimiter(REDIS_URL)
    try:
        key, rule = fresh_key(), RateLimit(2, 60)
        assert (await first.hit(key, rule)).allowed
        assert (await second.hit(key, rule)).remaining == 0
        assert not (await first.hit(key, rule)).allowed
    finally:
        await first.close()
        await second.close()


async def test_release_gives_back_one_use_and_never_goes_below_zero(limiter: RateLimiter) -> None:
    key, rule = fresh_key(), RateLimit(2, 60)
    await limiter.release(key, rule)  # nothing counted yet: stays at zero
    await limiter.hit(key, rule)
    await limiter.hit(key, rule)
    full = await limiter.peek(key, rule)
    await limiter.release(key, rule)

    assert not full.allowed
    assert (await limiter.peek(key, rule)).remaining == 1
    assert (await limiter.hit(key, rule)).allowed
    assert not (await limiter.hit(key, rule)).allowed
