"""`python -m bench agent`: the agent loop's own cost per step, and how often the local model's
tool calls are valid with and without the JSON-Schema grammar.

1. Overhead per step. Replies of two steps (a tool call, then the answer) run through the real
   AgentLoop, ToolRegistry and in-process MCP server, with a model that answers at once and a
   tool that returns at once; the time spent inside the model's stream and inside the tool's own
   function is measured and taken out. The baseline, in the same run, is the bare minimum a loop
   must do: iterate the same model stream, call the same tool function, iterate again. Reported:
   microseconds per step for both and their ratio.
2. Validity. The packaged Gemma 3 270M (llama.cpp) is asked for a tool call with tool_choice
   "required" and three tools offered, over 50 prompts, with the grammar and without it (the
   same prompt; the output parsed as JSON). Valid: a JSON object naming an offered tool whose
   arguments match its schema. Reported: the rate of each, and the seconds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.common import output_path, versions, write_json

OVERHEAD_REPLIES = (2000, 200)
VALIDITY_PROMPTS = (50, 6)


def _prompts(count: int) -> list[str]:
    """Requests that each want one of the three tools, in English and French."""
    zones = ["Europe/Paris", "Asia/Tokyo", "America/Montreal", "UTC", "Australia/Sydney"]
    units = [("km", "mile"), ("degC", "degF"), ("kg", "lb"), ("GB", "MiB"), ("m/s", "km/h")]
    prompts = []
    for index in range(count):
        kind = index % 3
        if kind == 0:
            prompts.append(f"What is {123 + index * 7} * {45 + index}?")
        elif kind == 1:
            prompts.append(f"What time is it now in {zones[index % len(zones)]}?")
        else:
            source, target = units[index % len(units)]
            prompts.append(f"Convert {index + 2} {source} to {target}.")
    return prompts


class InstantModel:
    """A backend that answers at once: a call of `noop` while no tool result is in the turns,
    then a one-token answer. Keeps the time spent inside its stream."""

    kind = "openai"

    def __init__(self) -> None:
        self.seconds = 0.0

    async def stream(self, request: Any) -> AsyncIterator[Any]:
        from server.inference.backend import Chunk, Finish, ProposedCall, Role

        started = time.perf_counter()
        if request.wants_tool_call and not any(turn.role is Role.TOOL for turn in request.turns):
            chunk = Chunk(tool_calls=(ProposedCall(call_id="c", name="noop", arguments={}),), finish=Finish.STOP)
        else:
            chunk = Chunk(text="done", tokens=1, prompt_tokens=1, finish=Finish.STOP)
        self.seconds += time.perf_counter() - started
        yield chunk

    async def start(self) -> None: ...
    async def probe(self) -> bool:
        return True

    async def close(self) -> None: ...


async def _overhead(replies: int) -> dict[str, Any]:
    from server.agent.loop import AgentLimits, AgentLoop, AgentRequest, tool_specs
    from server.auth import Principal
    from server.inference.backend import GenerationRequest, Role, Turn
    from server.inference.catalogue import Catalogue, ServedModel
    from server.inference.config import ModelConfig
    from server.inference.service import InferenceService, Limits
    from server.tools.builtin.base import BuiltinTool, builtin_server, schema
    from server.tools.config import ToolSettings
    from server.tools.registry import CallerContext, ToolRegistry
    from server.tools.sources import SourceSpec, open_client

    tool_seconds = 0.0

    async def noop(context: Any, arguments: dict[str, Any]) -> str:
        nonlocal tool_seconds
        started = time.perf_counter()
        value = "ok"
        tool_seconds += time.perf_counter() - started
        return value

    tool = BuiltinTool(name="noop", description="Nothing.", parameters=schema({}), category="bench", run=noop)
    registry = ToolRegistry(ToolSettings())
    server = builtin_server([tool], registry.contexts)
    await registry.add_source(
        SourceSpec(name="builtin", kind="builtin", open=lambda: open_client(server), trusted=True), wait=10
    )
    model = InstantModel()
    config = ModelConfig(key="instant", backend="openai", base_url="http://127.0.0.1:9/v1")
    served = ServedModel(config, model)
    inference = InferenceService(Catalogue([served]), Limits(message_interval=0))
    loop = AgentLoop(inference, registry, AgentLimits(max_steps=4, timeout=60))
    caller = CallerContext(principal=Principal(subject="user:1", permissions=frozenset({"*"}), user_id=1))
    tools = tuple(registry.usable(caller.principal))
    request = GenerationRequest(
        request_id="bench", turns=(Turn(Role.USER, "go"),), tools=tool_specs(tools), tool_choice="required"
    )

    async def through_loop() -> None:
        run = await loop.start(AgentRequest(generation=request, model=served, tools=tools, caller=caller))
        async with contextlib.aclosing(run.events()) as events:
            async for _ in events:
                pass

    async def baseline() -> None:
        async for _ in model.stream(request):
            pass
        await noop(None, {})
        answer = GenerationRequest(request_id="bench", turns=(Turn(Role.TOOL, "ok"),))
        async for _ in model.stream(answer):
            pass

    results = {}
    for name, reply in (("baseline", baseline), ("agent_loop", through_loop)):
        for _ in range(max(10, replies // 10)):
            await reply()
        model.seconds = tool_seconds = 0.0
        started = time.perf_counter()
        for _ in range(replies):
            await reply()
        total = time.perf_counter() - started
        own = total - model.seconds - tool_seconds
        results[name] = {
            "replies": replies,
            "steps": replies * 2,
            "total_s": total,
            "model_s": model.seconds,
            "tool_s": tool_seconds,
            "overhead_us_per_step": own / (replies * 2) * 1e6,
        }
    await registry.close()
    ratio = results["agent_loop"]["overhead_us_per_step"] / results["baseline"]["overhead_us_per_step"]
    return {**results, "ratio": ratio}


async def _validity(count: int, models_dir: Path) -> dict[str, Any]:
    from server.inference.backend import GenerationRequest, Role, ToolSpec, Turn
    from server.inference.local import LocalBackend
    from server.tools.builtin import calculator, clock, units
    from server.tools.registry import RegisteredTool, argument_violations

    builtin = [*calculator.TOOLS, clock.TOOLS[0], *units.TOOLS]
    specs = tuple(ToolSpec(name=t.name, description=t.description, parameters=t.parameters) for t in builtin)
    registered = {
        t.name: RegisteredTool(
            name=t.name, source="builtin", original=t.name, description="", parameters=t.parameters, category=""
        )
        for t in builtin
    }
    backend = LocalBackend(
        model_path=None, models_dir=models_dir, context_window=2048, parallel=1, max_waiting=4, threads=1
    )
    await backend.start()
    prompts = _prompts(count)
    results: dict[str, Any] = {}
    try:
        for constrained in (True, False):
            valid, seconds = 0, 0.0
            for index, prompt in enumerate(prompts):
                request = GenerationRequest(
                    request_id=f"v{index}",
                    turns=(Turn(Role.USER, prompt),),
                    max_tokens=96,
                    temperature=0.0,
                    tools=specs,
                    tool_choice="required",
                    constrain_tool_calls=constrained,
                )
                started = time.perf_counter()
                chunks = [chunk async for chunk in backend.stream(request)]
                seconds += time.perf_counter() - started
                call = chunks[-1].tool_calls[0] if chunks and chunks[-1].tool_calls else None
                if call and call.name in registered and not argument_violations(registered[call.name], call.arguments):
                    valid += 1
                print(f"  grammar={constrained} {index + 1}/{count} valid={valid}", file=sys.stderr)
            name = "with_grammar" if constrained else "without_grammar"
            results[name] = {"prompts": count, "valid": valid, "rate": valid / count, "s_per_call": seconds / count}
    finally:
        await backend.close()
    return results


def run(args: argparse.Namespace) -> int:
    replies = OVERHEAD_REPLIES[1 if args.quick else 0]
    prompts = VALIDITY_PROMPTS[1 if args.quick else 0]
    with tempfile.TemporaryDirectory(prefix="relais-bench-agent-") as directory:
        overhead = asyncio.run(_overhead(replies))
        validity = asyncio.run(_validity(prompts, Path(directory)))
    document = {"overhead": overhead, "validity": validity, "versions": versions()}
    write_json(output_path(args, "agent"), document)
    print("| agent loop, per step (model and tool time excluded) | µs | ratio |")
    print("|---|---:|---:|")
    print(f"| bare loop (baseline) | {overhead['baseline']['overhead_us_per_step']:.1f} | 1.00 |")
    print(
        f"| AgentLoop + ToolRegistry + in-process MCP | {overhead['agent_loop']['overhead_us_per_step']:.1f} "
        f"| {overhead['ratio']:.1f} |"
    )
    print()
    print("| local model tool calls (tool_choice required, 3 tools) | valid | rate | s/call |")
    print("|---|---:|---:|---:|")
    for name, row in validity.items():
        label = name.replace("_", " ")
        print(f"| {label} | {row['valid']}/{row['prompts']} | {row['rate']:.0%} | {row['s_per_call']:.1f} |")
    return 0
