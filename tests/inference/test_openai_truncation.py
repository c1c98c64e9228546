"""An OpenAI-compatible server that ends its body cleanly without finish_reason or [DONE]: an error."""

from __future__ import annotations

import asyncio
import json

import pytest

from server.inference.backend import BackendUnavailable, GenerationRequest
from server.inference.openai_compat import OpenAIBackend


async def _truncating_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n")
    for index in range(3):
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        chunk["choices"] = [{"index": 0, "delta": {"content": f"t{index} "}, "finish_reason": None}]
        writer.write(f"data: {json.dumps(chunk)}\n\n".encode())
    await writer.drain()
    writer.close()


async def test_a_stream_without_finish_reason_is_unavailable_with_its_partial_text() -> None:
    server = await asyncio.start_server(_truncating_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = OpenAIBackend(base_url=f"http://127.0.0.1:{port}/v1", model_name="m", api_key=None)
    texts: list[str] = []
    try:
        with pytest.raises(BackendUnavailable, match="without a finish_reason"):
            async for chunk in backend.stream(GenerationRequest(request_id="r", prompt="p", max_tokens=40)):
                texts.append(chunk.text)
    finally:
        await backend.close()
        server.close()
    assert texts == ["t0 ", "t1 ", "t2 "]
