"""An OpenAI-compatible chat server whose "model" follows a script, for the agent loop's tests.

It speaks the real protocol (POST /v1/chat/completions with stream=true: SSE chunks with
`delta.content`, `delta.tool_calls` in pieces, `delta.reasoning_content`, a finish_reason, then
`data: [DONE]`), and the script is the last message:
- a tool result (role "tool") → it answers "Result: <the tool's content>";
- a user message `CALL <json list of {"name", "arguments"}>` → those tool calls (arguments sent
  in two pieces, as real servers do), after reasoning "I should use a tool.";
- a user message `THINK` → "<think>Let me think.</think>Forty-two.", cut mid-tag;
- anything else → "Hello!" in a few deltas.
Every request body is kept in `requests` for the tests to look at.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class ScriptedLlm:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _completions(self, request: Request) -> StreamingResponse:
        body = await request.json()
        self.requests.append(body)
        return StreamingResponse(self._script(body["messages"]), media_type="text/event-stream")

    async def _script(self, messages: list[dict[str, Any]]) -> AsyncIterator[bytes]:
        last = messages[-1]
        if last["role"] == "tool":
            for piece in ("Result: ", last["content"]):
                yield _chunk({"content": piece})
            yield _chunk({}, "stop")
        elif last["role"] == "user" and last["content"].startswith("CALL "):
            yield _chunk({"reasoning_content": "I should use a tool."})
            for index, call in enumerate(json.loads(last["content"][5:])):
                arguments = json.dumps(call["arguments"])
                head = {
                    "index": index,
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": arguments[:3]},
                }
                yield _chunk({"tool_calls": [head]})
                yield _chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[3:]}}]})
            yield _chunk({}, "tool_calls")
        elif last["role"] == "user" and last["content"] == "THINK":
            for piece in ("<think>Let me ", "think.</thi", "nk>Forty", "-two."):
                yield _chunk({"content": piece})
            yield _chunk({}, "stop")
        else:
            for piece in ("Hel", "lo", "!"):
                await asyncio.sleep(0.01)
                yield _chunk({"content": piece})
            yield _chunk({}, "stop")
        yield b"data: [DONE]\n\n"

    async def _models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def start(self) -> ScriptedLlm:
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models),
            ]
        )
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [listener]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(5)
