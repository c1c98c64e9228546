"""The event bus across replicas: each event is delivered in-process at once and published on
Redis (one channel per topic, `<prefix><topic>`); every other replica's listener delivers it
to its own subscribers. Events cross Redis as JSON: {"origin", "ts", "data"}.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from redis import asyncio as aioredis

from server.events.bus import Envelope, now
from server.events.local import LocalBus
from server.events.topics import ALL, Topic

log = logging.getLogger("relais.events.redis")


class RedisBus(LocalBus):
    def __init__(self, url: str, *, channel_prefix: str = "relais:events:") -> None:
        super().__init__()
        self._redis: Any = aioredis.from_url(url)
        self._prefix = channel_prefix
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="event-bus-redis")
        # Start-up waits (briefly) for the subscription, so that nothing published right after is missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 5)

    async def publish(self, topic: Topic[Any], event: Any) -> None:
        envelope = Envelope(topic=topic, event=event, ts=now(), origin=self.node)
        self.deliver(envelope)
        wire = orjson.dumps({"origin": self.node, "ts": envelope.ts, "data": topic.encode(event)})
        try:
            await self._redis.publish(self._prefix + topic.name, wire)
        except Exception:
            log.warning("could not publish a %s event through Redis", topic.name, exc_info=True)

    async def _listen(self) -> None:
        """Stay subscribed: reconnect with backoff while Redis is away."""
        delay = 0.5
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(self._prefix + "*")
                self.listening.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        self._received(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("event bus disconnected from Redis; other replicas' events are missed until it is back")
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _received(self, channel: bytes, data: bytes) -> None:
        topic = ALL.get(channel.decode()[len(self._prefix) :])
        try:
            wire = orjson.loads(data)
            if topic is None or wire["origin"] == self.node:
                return
            envelope = Envelope(topic=topic, event=topic.decode(wire["data"]), ts=wire["ts"], origin=wire["origin"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed event on %r", channel)
            return
        self.deliver(envelope)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await super().close()
        await self._redis.aclose()
