"""Fixed-window rate limits, in process memory or in Redis (shared by every replica).

limiter = MemoryRateLimiter()          # or RedisRateLimiter(url)
decision = await limiter.hit("ip:203.0.113.9", RateLimit(60, 60))
decision.allowed, decision.remaining, decision.reset_at
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Protocol, cast

import redis.asyncio as aioredis

from server.errors import Unavailable

_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int
    window_seconds: int

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """'60/minute', '1000/hour', '5/300s'."""
        found = re.fullmatch(r"\s*(\d+)\s*/\s*(?:(\d+)\s*s|(second|minute|hour|day))\s*", text)
        if not found:
            raise ValueError(f"bad rate limit {text!r}; expected e.g. '60/minute' or '5/300s'")
        window = int(found.group(2)) if found.group(2) else _PERIODS[found.group(3)]
        return cls(int(found.group(1)), window)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    # Unix time at which the window resets.
    reset_at: int

    def headers(self) -> list[tuple[str, str]]:
        pairs = [
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(self.reset_at)),
        ]
        if not self.allowed:
            pairs.append(("retry-after", str(max(1, self.reset_at - int(time.time())))))
        return pairs


class RateLimiter(Protocol):
    async def hit(self, key: str, rule: RateLimit) -> Decision:
        """Count one use and decide."""
        ...

    async def peek(self, key: str, rule: RateLimit) -> Decision:
        """Decide whether one more use would be allowed, without counting it."""
        ...

    async def close(self) -> None: ...


def _window(rule: RateLimit, now: float) -> tuple[int, int]:
    """(window number, its reset time) for `now`."""
    number = int(now // rule.window_seconds)
    return number, (number + 1) * rule.window_seconds


class MemoryRateLimiter:
    """One process's counters. Old windows are dropped as new ones start."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = asyncio.Lock()

    async def hit(self, key: str, rule: RateLimit) -> Decision:
        number, reset = _window(rule, time.time())
        async with self._lock:
            slot = (f"{key}/{rule.window_seconds}", number)
            count = self._counts.get(slot, 0) + 1
            self._counts[slot] = count
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= number - 1}
        return Decision(count <= rule.limit, rule.limit, max(0, rule.limit - count), reset)

    async def peek(self, key: str, rule: RateLimit) -> Decision:
        number, reset = _window(rule, time.time())
        count = self._counts.get((f"{key}/{rule.window_seconds}", number), 0)
        return Decision(count < rule.limit, rule.limit, max(0, rule.limit - count), reset)

    async def close(self) -> None:
        self._counts.clear()


class RedisRateLimiter:
    """Counters in Redis (INCR + EXPIRE in one transaction), so replicas share a budget."""

    def __init__(self, url: str, *, prefix: str = "relais:rl:") -> None:
        self._client = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._prefix = prefix

    def _name(self, key: str, rule: RateLimit, number: int) -> str:
        return f"{self._prefix}{key}/{rule.window_seconds}:{number}"

    async def peek(self, key: str, rule: RateLimit) -> Decision:
        number, reset = _window(rule, time.time())
        try:
            raw = await self._client.get(self._name(key, rule, number))
        except (aioredis.RedisError, OSError) as error:
            raise Unavailable("Rate limiter unavailable") from error
        count = int(raw or 0)
        return Decision(count < rule.limit, rule.limit, max(0, rule.limit - count), reset)

    async def hit(self, key: str, rule: RateLimit) -> Decision:
        number, reset = _window(rule, time.time())
        name = self._name(key, rule, number)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, rule.window_seconds + 1)
                count, _ = cast(tuple[int, bool], await pipe.execute())
        except (aioredis.RedisError, OSError) as error:
            raise Unavailable("Rate limiter unavailable") from error
        return Decision(count <= rule.limit, rule.limit, max(0, rule.limit - count), reset)

    async def close(self) -> None:
        await self._client.aclose()
