"""The event bus: what happened on any replica, for the live streams of every replica.

    topics.py    the typed topics (name, event class, key, who may see an event)
    bus.py       the EventBus contract, envelopes and subscriptions
    local.py     the in-process bus (one node)
    redis.py     the same bus across replicas, over Redis pub/sub
    sessions.py  ending live calls when their caller's session ends
    servicer.py  LiveService (WatchChat, SetTyping, WatchSession) and EventService.Subscribe

Publishing (any domain):

    await bus.publish(topics.TASK_COMPLETED, topics.TaskCompleted(task_id=7, owner_id=3, ...))
"""

from server.events.bus import Envelope, EventBus, Overflow, Subscription
from server.events.local import LocalBus
from server.events.topics import Topic

__all__ = ["Envelope", "EventBus", "LocalBus", "Overflow", "Subscription", "Topic", "create_bus"]


def create_bus(redis_url: str | None, *, channel_prefix: str = "relais:events:") -> EventBus:
    """Redis pub/sub when a URL is configured, else in-process."""
    if redis_url:
        from server.events.redis import RedisBus

        return RedisBus(redis_url, channel_prefix=channel_prefix)
    return LocalBus()
