"""The bus's topics: each a name, the event class it carries, how events are keyed, and who
may see one.

An event is a frozen dataclass of JSON values; it crosses Redis as its fields. A topic's key
(a chat id, a user id) lets subscribers ask for one key's events without seeing the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from server.auth import Principal

E = TypeVar("E")
Json = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic(Generic[E]):
    name: str
    event_type: type[E]
    # The key subscribers may filter on; None when the topic has none.
    key: Callable[[E], int | str | None] = lambda event: None
    # Who may receive an event of this topic.
    visible_to: Callable[[Principal, E], bool] = lambda principal, event: not principal.anonymous

    def encode(self, event: E) -> Json:
        return dataclasses.asdict(event)  # type: ignore[call-overload, no-any-return]

    def decode(self, data: Json) -> E:
        names = {field.name for field in dataclasses.fields(self.event_type)}  # type: ignore[arg-type]
        return self.event_type(**{name: value for name, value in data.items() if name in names})


def _owner_or_admin(owner_id: Callable[[Any], int]) -> Callable[[Principal, Any], bool]:
    return lambda principal, event: principal.is_admin or principal.user_id == owner_id(event)


# ----------------------------------------------------------------------- chats


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStored:
    """A chat message was stored; `message` is ChatMessage's fields (see server.chats.events)."""

    chat_id: int
    owner_id: int
    message: Json


@dataclass(frozen=True, slots=True, kw_only=True)
class Typing:
    chat_id: int
    owner_id: int
    user_id: int
    is_typing: bool
    connection_id: str = ""


ChatEvent = TypeVar("ChatEvent", MessageStored, Typing)


def _chat_topic(name: str, event_type: type[ChatEvent]) -> Topic[ChatEvent]:
    """A chat's events: keyed by the chat, seen by its owner alone."""
    return Topic(
        name=name,
        event_type=event_type,
        key=lambda event: event.chat_id,
        visible_to=lambda principal, event: principal.user_id == event.owner_id,
    )


CHAT_MESSAGE = _chat_topic("chat.message", MessageStored)
CHAT_TYPING = _chat_topic("chat.typing", Typing)

# -------------------------------------------------------------------- identity


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded:
    """Sessions ended: one (`session_id`), or all of a user's (`session_id` None) but
    `except_session_id` (a password change keeps the session that made it)."""

    user_id: int
    session_id: str | None = None
    except_session_id: str | None = None
    reason: str = ""

    def ends(self, principal: Principal) -> bool:
        if principal.user_id != self.user_id:
            return False
        if self.session_id is not None:
            return principal.session_id == self.session_id
        # All of the user's sessions; API keys too when the account itself went (deactivation).
        if principal.session_id is None:
            return self.reason == "deactivated"
        return principal.session_id != self.except_session_id


@dataclass(frozen=True, slots=True, kw_only=True)
class UserLogin:
    user_id: int
    email: str
    username: str
    session_id: str
    ip_address: str = ""


SESSION_ENDED: Topic[SessionEnded] = Topic(
    name="session.ended",
    event_type=SessionEnded,
    key=lambda event: event.user_id,
    visible_to=lambda principal, event: event.ends(principal),
)
USER_LOGIN: Topic[UserLogin] = Topic(
    name="user.login",
    event_type=UserLogin,
    visible_to=lambda principal, event: principal.is_admin,
)

# ------------------------------------------------------------ plugins and tasks


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginChanged:
    """A plugin was loaded or reloaded on some replica."""

    name: str
    version: str = ""
    details: Json = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted:
    task_id: int | str
    owner_id: int
    name: str = ""
    status: str = "completed"
    result: Json = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginsChanged:
    """The plugins table changed (an install, enable, removal…): every replica converges on it."""

    plugin_id: str
    action: str


PLUGIN_LOADED: Topic[PluginChanged] = Topic(name="plugin.loaded", event_type=PluginChanged)
PLUGIN_RELOADED: Topic[PluginChanged] = Topic(name="plugin.reloaded", event_type=PluginChanged)
# Between replicas only: not offered to subscribers of EventService.
PLUGINS_CHANGED: Topic[PluginsChanged] = Topic(
    name="plugins.changed", event_type=PluginsChanged, visible_to=lambda principal, event: principal.is_admin
)
TASK_COMPLETED: Topic[TaskCompleted] = Topic(
    name="task.completed",
    event_type=TaskCompleted,
    visible_to=_owner_or_admin(lambda event: event.owner_id),
)
# A run that failed or was cancelled (`status` says which); built-in tasks' (owner 0): admins only.
TASK_FAILED: Topic[TaskCompleted] = Topic(
    name="task.failed",
    event_type=TaskCompleted,
    visible_to=_owner_or_admin(lambda event: event.owner_id),
)

ALL: dict[str, Topic[Any]] = {
    topic.name: topic
    for topic in (
        CHAT_MESSAGE,
        CHAT_TYPING,
        SESSION_ENDED,
        USER_LOGIN,
        PLUGIN_LOADED,
        PLUGIN_RELOADED,
        PLUGINS_CHANGED,
        TASK_COMPLETED,
        TASK_FAILED,
    )
}
# What EventService.Subscribe offers; chat topics are read through WatchChat (per chat).
SUBSCRIBABLE = ("user.login", "plugin.loaded", "plugin.reloaded", "task.completed", "task.failed", "session.ended")
