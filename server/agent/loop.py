"""The agent loop, the one implementation behind every reply (POST /api/chat, /ws/chat,
FoyerGPT's messages, gRPC):

    model step → tool calls? ── no ──→ the answer (its text streamed as it comes)
                      │ yes
                      ▼
    `action` per call → the tool runs (time-limited, output capped; a failure is a `result`
    with the error, never a crash) → `result` → the next model step sees the results

Rules a reply follows, whatever the backend:
- tool_choice "required" or a tool's name applies to the first step; later steps are "auto";
  the last step allowed (agent_max_steps) is "none", so a reply always ends in words.
- A call the model repeats with the same arguments is not run again: the model is asked to
  answer with what it has.
- A step whose output is not a tool call at all (a small model's broken JSON) is retried once,
  sampled instead of greedy; a second failure ends the tool use. A call naming an unknown tool
  or breaking the tool's schema is answered as a failed `result`, which the model reads.
- The reply as a whole lasts at most agent_timeout_seconds; each tool call at most the tools'
  time limit, or what is left of the reply's.
- Leaving (closing the event iterator) cancels the model step or the tool call under way.
- Tools the client runs itself (OpenAI's function tools, `client_tools`) are offered like the
  others, but a step that calls one ends the reply: its client calls are said (`action`, no
  `result`) and the reply finishes with Finish.TOOL_CALLS, for the client to answer them. Calls
  of server tools in that same step are left for the model to make again.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace

from server.agent.events import Planned, ReplyEvent, TextDelta, Thought, ToolCalled, ToolReturned, Usage
from server.agent.thinking import ThinkSplitter
from server.errors import DeadlineExceeded
from server.inference.backend import Finish, GenerationRequest, ProposedCall, Role, ToolSpec, Turn
from server.inference.catalogue import ServedModel
from server.inference.service import Generation, InferenceService
from server.tools.registry import (
    CallerContext,
    InvalidToolArguments,
    RegisteredTool,
    ToolOutcome,
    ToolRegistry,
    argument_violations,
)

# Tokens a prompted (constrained) tool call may take: a call is short, a runaway string is not.
TOOL_STEP_TOKENS = 160
RETRY_TEMPERATURE = 0.7


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLimits:
    max_steps: int = 4
    timeout: float = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRequest:
    """A reply to write: the first step's request (turns, sampling, tools, tool_choice), the
    model resolved for the whole reply, the tools offered (the caller may use each), for whom."""

    generation: GenerationRequest
    model: ServedModel
    tools: tuple[RegisteredTool, ...]
    caller: CallerContext
    # Tools the client runs (their specs are in `generation.tools` too): calling one ends the reply.
    client_tools: tuple[ToolSpec, ...] = ()


def tool_specs(tools: tuple[RegisteredTool, ...]) -> tuple[ToolSpec, ...]:
    return tuple(ToolSpec(name=t.name, description=t.description, parameters=t.parameters) for t in tools)


def _key(call: ProposedCall) -> str:
    return call.name + json.dumps(call.arguments, sort_keys=True, ensure_ascii=False)


@dataclass(slots=True)
class AgentRun:
    """A reply under way; `events()` drives it."""

    inference: InferenceService
    registry: ToolRegistry | None
    limits: AgentLimits
    request: AgentRequest
    generation: Generation
    deadline: float
    text_parts: list[str] = field(default_factory=list)
    tools_used: list[str] = field(default_factory=list)
    # Ids of the calls that ran (the others named no offered tool or broke its schema).
    ran: set[str] = field(default_factory=set)
    usage: Usage = field(default_factory=Usage)
    finish: Finish = Finish.STOP
    _spent: Usage = field(default_factory=Usage)
    _done: dict[str, ToolOutcome] = field(default_factory=dict)

    @property
    def model(self) -> ServedModel:
        return self.request.model

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    async def events(self) -> AsyncGenerator[ReplyEvent, None]:
        turns = list(self.request.generation.turns)
        step, retried = 1, False
        while True:
            calls: tuple[ProposedCall, ...] = ()
            async with contextlib.aclosing(self._step_events()) as events:
                async for event in events:
                    if isinstance(event, tuple):
                        calls = event
                    else:
                        yield event
            current = self.generation.request
            if calls and not calls[0].name and not retried:
                retried = True  # broken output: once more, sampled
                await self._next(turns, current.tool_choice, retry=True)
                continue
            valid = tuple(call for call in calls if call.name)
            fresh = tuple(call for call in valid if _key(call) not in self._done)
            if not fresh:
                if current.wants_tool_call and (valid or not self.generation.text):
                    # Repeated calls, broken output twice, or "no tool": now answer in words.
                    await self._next(turns, "none")
                    continue
                return
            if client := self._client_calls(fresh):
                for call in client:
                    yield ToolCalled(call_id=call.call_id, tool=call.name, arguments=call.arguments, usage=self.usage)
                self.finish = Finish.TOOL_CALLS
                return
            async with contextlib.aclosing(self._call_tools(fresh, turns)) as events:
                async for event in events:
                    yield event
            step += 1
            await self._next(turns, "none" if step >= self.limits.max_steps else "auto")

    async def _call_tools(self, calls: tuple[ProposedCall, ...], turns: list[Turn]) -> AsyncGenerator[ReplyEvent, None]:
        """Run the step's calls, saying each (and the plan, when there are several); the step and
        the calls' results join `turns`, for the next step to read."""
        if len(calls) > 1:
            steps = tuple(f"{call.name} {json.dumps(call.arguments, ensure_ascii=False)}" for call in calls)
            yield Planned(text=f"{len(steps)} tool calls", steps=steps, usage=self.usage)
        turns.append(Turn(Role.ASSISTANT, self.generation.text, tool_calls=calls))
        for call in calls:
            yield ToolCalled(call_id=call.call_id, tool=call.name, arguments=call.arguments, usage=self.usage)
            outcome = await self._run(call)
            yield ToolReturned(
                call_id=call.call_id,
                tool=call.name,
                content=outcome.content,
                is_error=outcome.is_error,
                usage=self.usage,
            )
            turns.append(Turn(Role.TOOL, outcome.content, tool_call_id=call.call_id, tool_name=call.name))

    def _client_calls(self, calls: tuple[ProposedCall, ...]) -> tuple[ProposedCall, ...]:
        names = {tool.name for tool in self.request.client_tools}
        return tuple(call for call in calls if call.name in names)

    async def _step_events(self) -> AsyncGenerator[ReplyEvent | tuple[ProposedCall, ...], None]:
        """The current step's events, then its tool calls (a tuple) when it made any."""
        calls: tuple[ProposedCall, ...] = ()
        # A prompted tool call's JSON is not the answer; a native step's words are.
        shows_text = not self.generation.request.wants_tool_call or self.model.config.tool_calls == "native"
        splitter = ThinkSplitter()
        async with contextlib.aclosing(self.generation.chunks()) as events:
            async for chunk in events:
                self._count()
                thought, text = splitter.feed(chunk.text) if shows_text else ("", "")
                if chunk.reasoning or thought:
                    yield Thought(text=chunk.reasoning + thought, usage=self.usage)
                if text:
                    self.text_parts.append(text)
                    yield TextDelta(text=text, tokens=chunk.tokens, usage=self.usage)
                calls = chunk.tool_calls or calls
        thought, text = splitter.flush()
        if thought:
            yield Thought(text=thought, usage=self.usage)
        if text:
            self.text_parts.append(text)
            yield TextDelta(text=text, tokens=0, usage=self.usage)
        self.finish = self.generation.finish or Finish.STOP
        self._spent = self.usage
        if calls:
            yield calls

    def _count(self) -> None:
        self.usage = Usage(
            prompt_tokens=self._spent.prompt_tokens + self.generation.prompt_tokens,
            completion_tokens=self._spent.completion_tokens + self.generation.completion_tokens,
        )

    async def _next(self, turns: list[Turn], choice: str, *, retry: bool = False) -> None:
        """Start the next model step over `turns`."""
        self._check_time()
        base = self.request.generation
        constrained = self.model.config.tool_calls in ("grammar", "structured")
        tool_step = bool(base.tools) and choice != "none"
        request = replace(
            base,
            turns=tuple(turns),
            tool_choice=choice if base.tools else "none",
            max_tokens=min(base.max_tokens, TOOL_STEP_TOKENS) if tool_step and constrained else base.max_tokens,
            temperature=(RETRY_TEMPERATURE if retry else 0.0) if tool_step and constrained else base.temperature,
            seed=base.seed if not retry else (base.seed or 0) + 1,
        )
        self.generation = await self.inference.start(request, self.model)

    async def _run(self, call: ProposedCall) -> ToolOutcome:
        tool = next((t for t in self.request.tools if t.name == call.name), None)
        if tool is None:
            offered = ", ".join(t.name for t in self.request.tools)
            outcome = ToolOutcome(tool=call.name, content=f"No tool {call.name!r}; tools: {offered}", is_error=True)
        elif violations := argument_violations(tool, call.arguments):
            described = "; ".join(f"{v.field}: {v.message}" for v in violations)
            outcome = ToolOutcome(tool=call.name, content=f"Invalid arguments: {described}", is_error=True)
        else:
            self.ran.add(call.call_id)
            if call.name not in self.tools_used:
                self.tools_used.append(call.name)
            remaining = self._check_time()
            assert self.registry is not None  # tools are offered only with a registry
            try:
                outcome = await self.registry.call(self.request.caller, call.name, call.arguments, within=remaining)
            except InvalidToolArguments as error:
                outcome = ToolOutcome(tool=call.name, content=str(error), is_error=True)
        self._done[_key(call)] = outcome
        return outcome

    def _check_time(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"The reply took longer than {self.limits.timeout:g} s")
        return remaining


class AgentLoop:
    def __init__(self, inference: InferenceService, registry: ToolRegistry | None, limits: AgentLimits) -> None:
        self.inference = inference
        self.registry = registry
        self.limits = limits

    async def start(self, request: AgentRequest) -> AgentRun:
        """Start the first model step: raises (nothing said yet) when the reply cannot start."""
        first = request.generation
        constrained = request.model.config.tool_calls in ("grammar", "structured")
        if request.tools and first.tool_choice != "none" and constrained:
            first = replace(first, max_tokens=min(first.max_tokens, TOOL_STEP_TOKENS), temperature=0.0)
        generation = await self.inference.start(first, request.model)
        return AgentRun(
            inference=self.inference,
            registry=self.registry,
            limits=self.limits,
            request=request,
            generation=generation,
            deadline=time.monotonic() + self.limits.timeout,
        )
