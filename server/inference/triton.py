"""Triton Inference Server over gRPC: the production backend.

One `ModelStreamInfer` call per generation, built from tritonclient's own protobuf
messages and gRPC stub. tritonclient's `stream_infer` helper cannot ask for
`triton_enable_empty_final_response` (it rejects `triton_`-prefixed parameters), and
without it a decoupled model (vLLM, TensorRT-LLM with streaming) gives no way to know
that a request is finished; so the request is built here.

Tensor conventions, per model:
- "vllm" (the vLLM backend): text_input BYTES[1], stream BOOL[1], sampling_parameters
  BYTES[1] (JSON), exclude_input_in_output BOOL[1] → text_output deltas.
- "tensorrtllm" (the TensorRT-LLM `ensemble`): text_input BYTES[1,1], max_tokens
  INT32[1,1], stream BOOL[1,1], temperature/top_p FP32[1,1], random_seed UINT64[1,1],
  stop_words BYTES[1,N] → text_output deltas.

A stream ends on the response whose `triton_final_response` parameter is true;
errors arrive as `error_message`. Closing the stream cancels the gRPC call, which
Triton turns into a cancellation of the request.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import struct
from collections.abc import AsyncIterator
from typing import Any, Literal

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import serialize_byte_tensor

from server.errors import InvalidArgument
from server.inference.backend import (
    BackendFailed,
    BackendUnavailable,
    Chunk,
    Finish,
    GenerationRequest,
    StreamTruncated,
)
from server.inference.prompt import render, stops
from server.inference.toolcalls import call_schema, collect_call

Convention = Literal["vllm", "tensorrtllm"]
PROBE_TIMEOUT = 2.0
_LENGTH = struct.Struct("<I")

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Recover quickly when Triton comes back.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


# A request's input tensors, each with its raw contents.
Inputs = list[tuple[service_pb2.ModelInferRequest.InferInputTensor, bytes]]


def _tensor(name: str, datatype: str, shape: list[int]) -> service_pb2.ModelInferRequest.InferInputTensor:
    return service_pb2.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)


def _bytes(values: list[str]) -> bytes:
    """Triton's BYTES wire form (a 4-byte little-endian length before each element)."""
    serialized = serialize_byte_tensor(np.array([value.encode("utf-8") for value in values], dtype=np.object_))
    return bytes(serialized.item())


def build_request(
    request: GenerationRequest, *, model_name: str, convention: Convention
) -> service_pb2.ModelInferRequest:
    """The ModelInferRequest for one generation, in the model's tensor convention."""
    prompt = render(request)
    message = service_pb2.ModelInferRequest(model_name=model_name, id=request.request_id)
    message.parameters["triton_enable_empty_final_response"].bool_param = True
    inputs = _vllm_inputs(request, prompt) if convention == "vllm" else _tensorrtllm_inputs(request, prompt)
    for tensor, raw in inputs:
        message.inputs.append(tensor)
        message.raw_input_contents.append(raw)
    message.outputs.append(service_pb2.ModelInferRequest.InferRequestedOutputTensor(name="text_output"))
    return message


def _vllm_inputs(request: GenerationRequest, prompt: str) -> Inputs:
    return [
        (_tensor("text_input", "BYTES", [1]), _bytes([prompt])),
        (_tensor("stream", "BOOL", [1]), np.array([True], dtype=np.bool_).tobytes()),
        (_tensor("sampling_parameters", "BYTES", [1]), _bytes([json.dumps(_sampling_parameters(request))])),
        (_tensor("exclude_input_in_output", "BOOL", [1]), np.array([True], dtype=np.bool_).tobytes()),
    ]


def _sampling_parameters(request: GenerationRequest) -> dict[str, Any]:
    """The vLLM backend's sampling_parameters (its SamplingParams, as JSON)."""
    sampling: dict[str, Any] = {"max_tokens": request.max_tokens}
    if request.temperature is not None:
        sampling["temperature"] = request.temperature
    if request.top_p is not None:
        sampling["top_p"] = request.top_p
    if stop := stops(request):
        sampling["stop"] = stop
    if request.seed is not None:
        sampling["seed"] = request.seed
    if request.wants_tool_call and request.constrain_tool_calls:
        # The vLLM backend's structured output (a JSON string, as its sampling_parameters parser reads it).
        sampling["guided_decoding"] = json.dumps({"json": call_schema(request.tools, request.tool_choice)})
    elif request.json_format is not None:
        sampling["guided_decoding"] = json.dumps({"json": request.json_format.json_schema})
    return sampling


def _tensorrtllm_inputs(request: GenerationRequest, prompt: str) -> Inputs:
    inputs: Inputs = [
        (_tensor("text_input", "BYTES", [1, 1]), _bytes([prompt])),
        (_tensor("max_tokens", "INT32", [1, 1]), np.array([[request.max_tokens]], dtype=np.int32).tobytes()),
        (_tensor("stream", "BOOL", [1, 1]), np.array([[True]], dtype=np.bool_).tobytes()),
    ]
    if request.temperature is not None:
        inputs.append((_tensor("temperature", "FP32", [1, 1]), np.array([[request.temperature]], np.float32).tobytes()))
    if request.top_p is not None:
        inputs.append((_tensor("top_p", "FP32", [1, 1]), np.array([[request.top_p]], np.float32).tobytes()))
    if request.seed is not None:
        inputs.append((_tensor("random_seed", "UINT64", [1, 1]), np.array([[request.seed]], np.uint64).tobytes()))
    if stop := stops(request):
        inputs.append((_tensor("stop_words", "BYTES", [1, len(stop)]), _bytes(stop)))
    return inputs


def output_text(response: service_pb2.ModelInferResponse, name: str = "text_output") -> bytes:
    """The bytes of the first element of a BYTES output, b"" when the response has none."""
    for index, output in enumerate(response.outputs):
        if output.name != name:
            continue
        if index < len(response.raw_output_contents):
            raw = response.raw_output_contents[index]
            # Read the first element's length prefix directly: this runs once per token, and going
            # through numpy (deserialize_bytes_tensor) costs more than the rest of the relay.
            if len(raw) < 4:
                return b""
            (length,) = _LENGTH.unpack_from(raw)
            return bytes(raw[4 : 4 + length])
        if output.contents.bytes_contents:
            return bytes(output.contents.bytes_contents[0])
    return b""


class TritonBackend:
    kind = "triton"

    def __init__(self, *, url: str, model_name: str, convention: Convention, timeout: float | None = None) -> None:
        self.url = url
        self.model_name = model_name
        self.convention: Convention = convention
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: service_pb2_grpc.GRPCInferenceServiceStub | None = None

    async def start(self) -> None:
        """Nothing to load: the channel connects on first use and reconnects by itself."""

    def _client(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        # Created lazily: grpc.aio channels belong to the loop that creates them.
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(self.url, options=CHANNEL_OPTIONS)
            self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        return self._stub

    def stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Text chunks; for a tool-call step, one chunk carrying the call (see toolcalls.py)."""
        if request.wants_tool_call:
            return collect_call(self._stream(request))
        return self._stream(request)

    async def _stream(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self._check_supported(request)
        message = build_request(request, model_name=self.model_name, convention=self.convention)
        # Written, not given as a request iterator: our side stays open until the answer is
        # complete (a half-close is not a cancel, but some proxies in front of Triton treat it as
        # one), without a task per call to consume the iterator (whose cancel at the end made
        # grpc.aio format a traceback for a debug line, every call).
        call = self._client().ModelStreamInfer(timeout=self._timeout)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        sent = 0
        try:
            with contextlib.suppress(asyncio.InvalidStateError):  # ended already: reading raises why
                await call.write(message)
            async for response in call:
                if response.error_message:
                    raise self._failure(response.error_message, sent)
                infer = response.infer_response
                if infer.id and infer.id != request.request_id:
                    continue  # not ours (cannot happen on a call of our own, but Triton allows it)
                text = decoder.decode(output_text(infer))
                final = infer.parameters["triton_final_response"].bool_param
                if final:
                    text += decoder.decode(b"", final=True)
                tokens = 1 if text else 0
                sent += tokens
                if text or final:
                    finish = (Finish.LENGTH if sent >= request.max_tokens else Finish.STOP) if final else None
                    yield Chunk(text=text, tokens=tokens, finish=finish)
                if final:
                    return
            raise StreamTruncated(
                f"Triton closed the stream of model {self.model_name!r} after {sent} tokens without its final response"
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                raise
            raise BackendUnavailable(
                f"Triton at {self.url} is unavailable for model {self.model_name!r}: {error.details()}"
            ) from None
        finally:
            call.cancel()

    def _check_supported(self, request: GenerationRequest) -> None:
        if request.json_format is not None and not request.wants_tool_call and self.convention != "vllm":
            raise InvalidArgument(
                f"Model {self.model_name!r} (TensorRT-LLM ensemble) cannot constrain its answer to JSON; "
                "use a vLLM-backed, local or OpenAI-compatible model for response_format"
            )

    async def probe(self) -> bool:
        """Triton is up and reports the model ready."""
        try:
            request = service_pb2.ModelReadyRequest(name=self.model_name)
            response = await self._client().ModelReady(request, timeout=PROBE_TIMEOUT)
        except grpc.aio.AioRpcError:
            return False
        return bool(response.ready)

    def _failure(self, message: str, sent: int) -> BackendFailed | BackendUnavailable:
        if "unknown model" in message or "is not found" in message:
            return BackendUnavailable(f"Triton at {self.url} does not serve model {self.model_name!r}: {message}")
        where = f"after {sent} tokens" if sent else "before the first token"
        return BackendFailed(f"Triton model {self.model_name!r} failed {where}: {message}")

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
