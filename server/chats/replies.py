"""An assistant reply in a conversation: which tools it may use, and how it is stored.

`ReplyRecorder.record` drives the agent loop's events and writes the reply as it grows: the
row is created with the question (FoyerGPT's routes: one transaction for both) or else with the
first text or tool call, rewritten at most every FLUSH_EVERY seconds
and after each tool result, and finished with its status whatever ends the reply (a client
that leaves keeps the partial reply as "incomplete"). Tool calls and results are kept in
`messages.tool_steps`, so the history the model reads next time replays them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from server.agent.events import Finished, ReplyEvent, TextDelta, ToolCalled, ToolReturned
from server.agent.loop import AgentRun
from server.auth import Principal
from server.chats import repository
from server.chats.events import MessageEvents
from server.chats.models import Message
from server.chats.views import MessageView
from server.errors import FieldViolation, InvalidArgument, ShuttingDown, ValidationFailed
from server.inference.backend import ProposedCall, Role, Turn
from server.storage import Database
from server.tools.registry import RegisteredTool, ToolRegistry

log = logging.getLogger("relais.chats")

# How often a reply being generated is written to the database.
FLUSH_EVERY = 1.0
CHOICES = ("auto", "none", "required")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyOptions:
    """What a request may say about its reply besides the message."""

    model: str = ""
    files: tuple[int, ...] = ()
    tools: tuple[str, ...] = ()
    tool_choice: str = ""
    # The request's name for the message, in validation errors ("content", "message").
    content_field: str = "content"


def offered_tools(
    registry: ToolRegistry | None, principal: Principal, names: tuple[str, ...], choice: str
) -> tuple[tuple[RegisteredTool, ...], str]:
    """The tools a reply may call and its tool_choice, as OpenAI's API reads `tools` and
    `tool_choice`: no tools unless asked; `tool_choice` alone offers every tool the caller may
    use (a tool's name: that tool alone). Unknown or forbidden tools are a 404, before anything
    is stored."""
    choice = choice.strip()
    if (not names and not choice) or choice == "none" or registry is None:
        if choice not in ("", "none") and registry is None:
            raise InvalidArgument("Tools are not available on this server")
        return (), "none"
    if names:
        tools = tuple(registry.get(principal, name) for name in dict.fromkeys(names))
    elif choice in CHOICES:
        tools = tuple(registry.usable(principal))
    else:
        tools = (registry.get(principal, choice),)
    choice = choice or "auto"
    if choice not in CHOICES and choice not in {tool.name for tool in tools}:
        message = f"must be auto, none, required or one of the tools ({', '.join(t.name for t in tools)})"
        raise ValidationFailed([FieldViolation(field="tool_choice", message=message)])
    if not tools and choice == "required":
        raise ValidationFailed([FieldViolation(field="tool_choice", message="no tool is available to you")])
    return tools, choice if tools else "none"


def reply_row(chat_id: int, model: str, sources: list[dict[str, Any]] | None, **fields: Any) -> Message:
    """An assistant reply's row, with the model that writes it and the passages it was given."""
    return Message(chat_id=chat_id, role="assistant", llm_model=model, sources=sources or None, **fields)


def stored_steps(message: MessageView) -> list[dict[str, Any]]:
    return list(message.tool_steps)


def history_turns(messages: list[MessageView]) -> list[Turn]:
    """Stored messages as the model reads them: an assistant reply's tool calls and their
    results come before its text."""
    turns = []
    for message in messages:
        if message.role == "user":
            turns.append(Turn(Role.USER, message.content))
            continue
        for step in stored_steps(message):
            call, result = step.get("call", {}), step.get("result", {})
            proposed = ProposedCall(
                call_id=str(call.get("call_id", "")), name=str(call.get("tool", "")), arguments=call.get("params") or {}
            )
            turns.append(Turn(Role.ASSISTANT, "", tool_calls=(proposed,)))
            turns.append(
                Turn(Role.TOOL, str(result.get("content", "")), tool_call_id=proposed.call_id, tool_name=proposed.name)
            )
        turns.append(Turn(Role.ASSISTANT, message.content))
    return turns


class ReplyRecorder:
    def __init__(
        self,
        database: Database,
        chat_id: int,
        model: str,
        events: MessageEvents,
        *,
        sources: list[dict[str, Any]] | None = None,
        on_complete: Callable[[MessageView], Awaitable[None]] | None = None,
        message: MessageView | None = None,
    ) -> None:
        """`message`: the reply's row when the caller created it already (empty, "incomplete")."""
        self._database = database
        self._events = events
        self._chat_id = chat_id
        self._model = model
        self._sources = sources or None
        self._on_complete = on_complete
        self._flushed_at = time.monotonic() if message is not None else 0.0
        self._steps: list[dict[str, Any]] = []
        self._pending: dict[str, ToolCalled] = {}
        self._finishing: asyncio.Future[None] | None = None
        # The reply as last written (a view: each write reads it back before its session closes).
        self.message = message

    @property
    def message_id(self) -> int:
        return self.message.id if self.message is not None else 0

    async def record(self, run: AgentRun) -> AsyncGenerator[ReplyEvent, None]:
        """The run's events, each naming the stored reply, then `Finished` (once the reply is
        stored whole)."""
        status = "incomplete"
        try:
            async with contextlib.aclosing(run.events()) as events:
                async for event in events:
                    if isinstance(event, TextDelta):
                        if self.message is None or time.monotonic() - self._flushed_at > FLUSH_EVERY:
                            await self._write(run, "incomplete")
                        event = TextDelta(
                            text=event.text, tokens=event.tokens, message_id=self.message_id, usage=event.usage
                        )
                    elif isinstance(event, ToolCalled):
                        self._pending[event.call_id] = event
                    elif isinstance(event, ToolReturned):
                        self._step(event, ran=event.call_id in run.ran)
                        await self._write(run, "incomplete")
                    yield event
            status = "complete"
            await self._finish_once(run, status)
            yield Finished(
                text=run.text,
                finish=run.finish,
                model=run.model.key,
                tools_used=tuple(run.tools_used),
                message_id=self.message_id,
                chat_id=self._chat_id,
                usage=run.usage,
            )
        except ShuttingDown:
            raise  # the server ended the reply, not the model: it stays "incomplete"
        except Exception:
            status = "error"
            raise
        finally:
            # A client that leaves cancels this task: the partial reply must still be kept.
            with contextlib.suppress(Exception):
                await self._finish_once(run, status)

    def _finish_once(self, run: AgentRun, status: str) -> asyncio.Future[None]:
        """The reply's last write, started once and shielded from the caller's cancellation."""
        if self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish(run, status))
        return asyncio.shield(self._finishing)

    def _step(self, result: ToolReturned, *, ran: bool) -> None:
        called = self._pending.pop(result.call_id, None)
        call = {"call_id": result.call_id, "tool": result.tool, "params": called.arguments if called else {}}
        outcome = {
            "call_id": result.call_id,
            "tool": result.tool,
            "content": result.content,
            "is_error": result.is_error,
        }
        self._steps.append({"call": call, "result": outcome, "ran": ran})

    async def _finish(self, run: AgentRun, status: str) -> None:
        await self._write(run, status)
        if self.message is not None:
            await self._events.stored(self.message)
            if status == "complete" and self._on_complete is not None:
                try:
                    await self._on_complete(self.message)
                except Exception:
                    log.exception("after-reply task failed for message %s", self.message.id)

    async def failed_to_start(self) -> None:
        """Record that the model could not even start: an empty reply with status error."""
        async with self._database.sessions() as session, session.begin():
            if self.message is None:
                row = reply_row(self._chat_id, self._model, self._sources, status="error")
                await repository.add_message(session, row)
                self.message = MessageView.of(row)
            elif (rewritten := await repository.rewrite_message(session, self.message.id, {"status": "error"})) is None:
                return  # its conversation was deleted meanwhile
            else:
                self.message = MessageView.of(rewritten)
        await self._events.stored(self.message)

    async def _write(self, run: AgentRun, status: str) -> None:
        self._flushed_at = time.monotonic()
        fields: dict[str, Any] = {
            "content": run.text,
            "status": status,
            "prompt_tokens": run.usage.prompt_tokens,
            "completion_tokens": run.usage.completion_tokens,
            "tool_steps": list(self._steps) or None,
        }
        async with self._database.sessions() as session, session.begin():
            if self.message is None:
                row = reply_row(self._chat_id, self._model, self._sources, **fields)
                await repository.add_message(session, row)
                self.message = MessageView.of(row)
                return
            # A growing reply rewrites its row about once a second: one UPDATE ... RETURNING, not a
            # read then a write. None when its conversation was deleted meanwhile: nothing to keep.
            rewritten = await repository.rewrite_message(session, self.message.id, fields)
            if rewritten is not None:
                self.message = MessageView.of(rewritten)
