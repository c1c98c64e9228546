"""Fixed-window rate limits, in process memory or in Redis (shared by every replica).

A key's window opens at its first use and lasts the rule's period; the count starts again
in the next one. Windows are not aligned on the clock: with aligned windows, a burst that
straddles a boundary (the 59th and 61st second of a minute) gets two budgets at once for
everyone at the same moment.

limiter = MemoryRateLimiter()          # or RedisRateLimiter(url)
decision = await limiter.hit("ip:203.0.113.9", RateLimit(60, 60))
decision.allowed, decision.remaining, decision.reset_at
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol, cast

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
        """X-RateLimit-Limit/Remaining/Reset (Unix time), and the same under OpenAI's names
        (x-ratelimit-*-requests, the reset as a duration such as "42s" or "6m0s")."""
        pairs = [
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(self.reset_at)),
            ("x-ratelimit-limit-requests", str(self.limit)),
            ("x-ratelimit-remaining-requests", str(self.remaining)),
            ("x-ratelimit-reset-requests", duration(self.reset_at - time.time())),
        ]
        if not self.allowed:
            pairs.append(("retry-after", str(max(1, self.reset_at - int(time.time())))))
        return pairs


def duration(seconds: float) -> str:
    """OpenAI's form of a wait: "250ms", "42s", "6m0s", "1h2m3s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class RateLimiter(Protocol):
    async def hit(self, key: str, rule: RateLimit) -> Decision:
        """Count one use and decide."""
        ...

    async def peek(self, key: str, rule: RateLimit) -> Decision:
        """Decide whether one more use would be allowed, without counting it."""
        ...

    async def release(self, key: str, rule: RateLimit) -> None:
        """Give back one use counted by `hit` (an attempt that turned out not to count), never below zero."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """One process's counters: key → (uses, end of its window). Ended windows are dropped
    as the table grows."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = asyncio.Lock()

    def _window(self, name: str, rule: RateLimit, now: float) -> tuple[int, float]:
        """(uses so far, end) of the window `name` is in at `now`; a new one if the last ended."""
        count, ends = self._windows.get(name, (0, 0.0))
        return (count, ends) if ends > now else (0, now + rule.window_seconds)

    async def hit(self, key: str, rule: RateLimit) -> Decision:
        now = time.time()
        name = f"{key}/{rule.window_seconds}"
        async with self._lock:
            count, ends = self._window(name, rule, now)
            count += 1
            self._windows[name] = (count, ends)
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        return Decision(count <= rule.limit, rule.limit, max(0, rule.limit - count), math.ceil(ends))

    async def peek(self, key: str, rule: RateLimit) -> Decision:
        count, ends = self._window(f"{key}/{rule.window_seconds}", rule, time.time())
        return Decision(count < rule.limit, rule.limit, max(0, rule.limit - count), math.ceil(ends))

    async def release(self, key: str, rule: RateLimit) -> None:
        name = f"{key}/{rule.window_seconds}"
        async with self._lock:
            count, ends = self._window(name, rule, time.time())
            if count > 0:
                self._windows[name] = (count - 1, ends)

    async def close(self) -> None:
        self._windows.clear()


class RedisRateLimiter:
    """Counters in Redis, so replicas share a budget: one key per window, created with the
    window's expiry on first use (SET NX PX), counted with INCR, in one transaction."""

    def __init__(self, url: str, *, prefix: str = "relais:rl:") -> None:
        self._client = aioredis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._prefix = prefix

    def _name(self, key: str, rule: RateLimit) -> str:
        return f"{self._prefix}{key}/{rule.window_seconds}"

    async def peek(self, key: str, rule: RateLimit) -> Decision:
        name = self._name(key, rule)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.get(name)
                pipe.pttl(name)
                raw, ttl_ms = cast(tuple[bytes | None, int], await pipe.execute())
        except (aioredis.RedisError, OSError) as error:
            raise Unavailable("Rate limiter unavailable") from error
        count = int(raw or 0) if ttl_ms > 0 else 0
        return Decision(count < rule.limit, rule.limit, max(0, rule.limit - count), _reset(rule, ttl_ms))

    async def hit(self, key: str, rule: RateLimit) -> Decision:
        name = self._name(key, rule)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, px=rule.window_seconds * 1000, nx=True)
                pipe.incr(name)
                pipe.pttl(name)
                _, count, ttl_ms = cast(tuple[object, int, int], await pipe.execute())
        except (aioredis.RedisError, OSError) as error:
            raise Unavailable("Rate limiter unavailable") from error
        return Decision(count <= rule.limit, rule.limit, max(0, rule.limit - count), _reset(rule, ttl_ms))

    async def release(self, key: str, rule: RateLimit) -> None:
        try:
            await cast(Any, self._client.eval(_RELEASE, 1, self._name(key, rule)))
        except (aioredis.RedisError, OSError) as error:
            raise Unavailable("Rate limiter unavailable") from error

    async def close(self) -> None:
        await self._client.aclose()


# Decrement only a live, positive counter: never resurrect an expired window or go below zero.
_RELEASE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then redis.call('DECR', KEYS[1]) end
return count
"""


def _reset(rule: RateLimit, ttl_ms: int) -> int:
    """When a window with `ttl_ms` left ends (a window not open yet ends a period from now)."""
    left = ttl_ms / 1000 if ttl_ms > 0 else rule.window_seconds
    return math.ceil(time.time() + left)
