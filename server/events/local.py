"""The in-process event bus: subscriptions indexed by (topic, key), delivery without copying."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from server.events.bus import DEFAULT_CAPACITY, Envelope, Selector, Subscription, now
from server.events.topics import Topic

log = logging.getLogger("relais.events")

Route = tuple[str, int | str | None]


class LocalBus:
    def __init__(self) -> None:
        self.node = uuid.uuid4().hex
        self._routes: dict[Route, set[Subscription]] = {}

    async def start(self) -> None:
        """Nothing to listen to."""

    async def publish(self, topic: Topic[Any], event: Any) -> None:
        self.deliver(Envelope(topic=topic, event=event, ts=now(), origin=self.node))

    def deliver(self, envelope: Envelope) -> None:
        """Hand an envelope to this process's subscribers (RedisBus calls it for remote ones)."""
        name = envelope.topic.name
        targets = list(self._routes.get((name, None), ()))
        key = envelope.topic.key(envelope.event)
        if key is not None:
            targets.extend(self._routes.get((name, key), ()))
        for subscription in targets:
            subscription.deliver(envelope)

    def subscribe(self, selectors: Iterable[Selector], *, capacity: int = DEFAULT_CAPACITY) -> Subscription:
        chosen = tuple(selectors)
        subscription = Subscription(chosen, self._detach, capacity)
        for selector in chosen:
            self._routes.setdefault((selector.topic.name, selector.key), set()).add(subscription)
        return subscription

    def _detach(self, subscription: Subscription) -> None:
        for selector in subscription.selectors:
            route = (selector.topic.name, selector.key)
            members = self._routes.get(route)
            if members is not None:
                members.discard(subscription)
                if not members:
                    del self._routes[route]

    @property
    def subscriber_count(self) -> int:
        return len({id(member) for members in self._routes.values() for member in members})

    async def close(self) -> None:
        for members in list(self._routes.values()):
            for subscription in list(members):
                subscription.close()
