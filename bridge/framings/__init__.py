"""Stream framings: the registry (bridge/framings/registry.py) and the built-in dialects, one
module each. Importing this package registers them; a new framing is one more module here."""

from bridge.framings import foyergpt, local_assistant, openai, orchestrator, socketio_rooms, sse, xcore_events
from bridge.framings.registry import (
    EVENT_FAMILY,
    Framing,
    FramingMismatch,
    SseFraming,
    WebSocketFraming,
    framing_for,
    register,
    registered,
    sse_framing,
    websocket_framing,
)

__all__ = [
    "EVENT_FAMILY",
    "Framing",
    "FramingMismatch",
    "SseFraming",
    "WebSocketFraming",
    "foyergpt",
    "framing_for",
    "local_assistant",
    "openai",
    "orchestrator",
    "register",
    "registered",
    "socketio_rooms",
    "sse",
    "sse_framing",
    "websocket_framing",
    "xcore_events",
]
