"""A protocol-faithful stand-in for NVIDIA Triton Inference Server's gRPC API, for tests.

Relais' Triton backend talks to a real ``tritonserver`` in production, which needs a GPU and
gigabytes of model weights. This module serves the same ``inference.GRPCInferenceService`` (the
protobuf messages and servicer base class come from ``tritonclient`` itself) on 127.0.0.1, backed
by scripted token streams instead of a model, so the backend can be tested over real sockets:
streaming, several requests multiplexed on one stream, errors, the final-response flag and client
cancellation behave the way Triton's gRPC frontend behaves for a *decoupled* model.

Two request conventions are understood, named after the Triton backends that define them:

* ``"vllm"``: the vLLM backend (``backend: "vllm"``, no batching): ``text_input`` BYTES [1],
  optional ``stream`` BOOL [1], ``sampling_parameters`` BYTES [1] (a JSON object) and
  ``exclude_input_in_output`` BOOL [1]; ``text_output`` BYTES [1].
* ``"tensorrtllm"``: the TensorRT-LLM ``ensemble`` model (``max_batch_size`` > 0, so every
  tensor has a leading batch dimension): ``text_input`` BYTES [1,1], ``max_tokens`` INT32 [1,1],
  optional ``stream`` BOOL [1,1], ``temperature``/``top_p`` FP32 [1,1], ``top_k`` INT32 [1,1],
  ``random_seed`` UINT64 [1,1], ``stop_words`` BYTES [1,N], ``exclude_input_in_output``
  BOOL [1,1]; ``text_output`` BYTES [1,1].

Behaviour taken from Triton's sources (server ``src/grpc/stream_infer_handler.cc``, the vLLM
backend's ``model.py`` and core's ensemble scheduler), which tests relying on this module can count on:

* Every successful response carries the parameter ``triton_final_response`` (bool). Where a
  streaming request's FINAL flag travels depends on the backend: the vLLM backend sends it *with*
  the last token response; the ensemble scheduler sends it *on its own* whenever its last composing
  step finishes after the last output went out (common with TensorRT-LLM). Triton's frontend turns a
  flag sent on its own into an empty response (no outputs, ``triton_final_response=true``) only when
  the request set the parameter ``triton_enable_empty_final_response=true``; otherwise it drops it,
  and no response of that request is marked final. ``StandInModel.separate_final`` picks the
  behaviour; by default it follows the convention (vllm: with the last response, tensorrtllm: on its
  own). A non-streaming request's single response always carries the flag.
* Requests the frontend rejects before they reach the model (unknown model or version, missing,
  unexpected or malformed inputs) get one ``error_message`` response whose ``infer_response``
  holds only the request ``id``; the stream stays open for other requests.
* A model failure (``fail_after``, bad sampling parameters) is one ``error_message`` response that
  carries ``id``, ``model_name``, ``model_version`` and ``triton_final_response=true``, as the
  backends send errors with the FINAL flag; nothing follows it for that request.
* Successful responses report ``model_version`` "1" (the version that ran); error and empty final
  responses echo the request's ``model_version`` (often "").
* When the client cancels the call, every in-flight request of that stream is cancelled; when the
  client only half-closes, responses continue until every request of the stream has finished.
* The unary ``ModelInfer`` RPC refuses decoupled models (all models here) with UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import struct
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc

__all__ = ["StandInModel", "TritonStandIn", "decode_request_inputs", "default_tokens"]

VLLM = "vllm"
TENSORRTLLM = "tensorrtllm"
_VERSION = "1"
# vLLM's SamplingParams default when the request does not say.
_VLLM_DEFAULT_MAX_TOKENS = 16
# Sampling keys this stand-in accepts in the vLLM convention (a subset of vLLM's SamplingParams).
_VLLM_SAMPLING_KEYS = frozenset(
    {
        "n",
        "max_tokens",
        "min_tokens",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "seed",
        "stop",
        "stop_token_ids",
        "include_stop_str_in_output",
        "ignore_eos",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
        "skip_special_tokens",
        "logprobs",
        # Structured output (a JSON string the vLLM backend parses; the stand-in does not constrain).
        "guided_decoding",
        "structured_outputs",
    }
)


def default_tokens(prompt: str, max_tokens: int) -> list[str]:
    """``max_tokens`` deterministic token texts: "tok0 ", "é ", "tok2 ", ... (the second is non-ASCII)."""
    del prompt  # the script does not depend on the prompt
    return ["é " if index == 1 else f"tok{index} " for index in range(max_tokens)]


@dataclass
class StandInModel:
    """One model the stand-in serves, ready at version 1."""

    name: str
    convention: str = VLLM
    # (prompt, max_tokens) -> token texts to stream; called once per request.
    tokens: Callable[[str, int], list[str]] = default_tokens
    # Seconds to sleep before each token (0: only yield to the event loop, so cancellation is seen).
    token_delay: float = 0.0
    # Emit this many tokens, then fail the request with ``error_text``.
    fail_after: int | None = None
    # Emit this many tokens, then end the whole gRPC stream cleanly (status OK) with no final
    # response, as a proxy or a crashing frontend that drops the tail of a stream does.
    end_stream_after: int | None = None
    # Emit this many tokens, then send nothing more until the client cancels the stream: a
    # generation that only a cancel ends, whatever the machine's load.
    hold_after: int | None = None
    error_text: str = "model failure"
    # Whether the backend sends the FINAL flag on its own after the last token response (see the
    # module docstring); None: the convention's real behaviour (vllm False, tensorrtllm True).
    separate_final: bool | None = None

    def __post_init__(self) -> None:
        if self.convention not in (VLLM, TENSORRTLLM):
            raise ValueError(f"unknown convention {self.convention!r}; expected 'vllm' or 'tensorrtllm'")

    @property
    def final_on_its_own(self) -> bool:
        if self.separate_final is not None:
            return self.separate_final
        return self.convention == TENSORRTLLM


@dataclass(frozen=True)
class _TensorSpec:
    name: str
    datatype: str
    dims: tuple[int, ...]  # full shape as ModelMetadata reports it; -1 is a wildcard
    optional: bool = False


_VLLM_INPUTS = (
    _TensorSpec("text_input", "BYTES", (1,)),
    _TensorSpec("stream", "BOOL", (1,), optional=True),
    _TensorSpec("sampling_parameters", "BYTES", (1,), optional=True),
    _TensorSpec("exclude_input_in_output", "BOOL", (1,), optional=True),
)
_VLLM_OUTPUTS = (_TensorSpec("text_output", "BYTES", (-1,)),)
# The TensorRT-LLM ensemble batches (max_batch_size > 0): metadata shapes gain a leading -1.
_TRTLLM_INPUTS = (
    _TensorSpec("text_input", "BYTES", (-1, 1)),
    _TensorSpec("max_tokens", "INT32", (-1, 1)),
    _TensorSpec("stream", "BOOL", (-1, 1), optional=True),
    _TensorSpec("temperature", "FP32", (-1, 1), optional=True),
    _TensorSpec("top_p", "FP32", (-1, 1), optional=True),
    _TensorSpec("top_k", "INT32", (-1, 1), optional=True),
    _TensorSpec("random_seed", "UINT64", (-1, 1), optional=True),
    _TensorSpec("stop_words", "BYTES", (-1, -1), optional=True),
    _TensorSpec("bad_words", "BYTES", (-1, -1), optional=True),
    _TensorSpec("exclude_input_in_output", "BOOL", (-1, 1), optional=True),
)
_TRTLLM_OUTPUTS = (_TensorSpec("text_output", "BYTES", (-1, -1)),)
_TRTLLM_MAX_BATCH_SIZE = 64


def _inputs_of(model: StandInModel) -> tuple[_TensorSpec, ...]:
    return _VLLM_INPUTS if model.convention == VLLM else _TRTLLM_INPUTS


def _outputs_of(model: StandInModel) -> tuple[_TensorSpec, ...]:
    return _VLLM_OUTPUTS if model.convention == VLLM else _TRTLLM_OUTPUTS


# Fixed-size datatypes: struct format character and size in bytes (little-endian on the wire).
_FIXED: dict[str, tuple[str, int]] = {
    "BOOL": ("?", 1),
    "INT8": ("b", 1),
    "INT16": ("h", 2),
    "INT32": ("i", 4),
    "INT64": ("q", 8),
    "UINT8": ("B", 1),
    "UINT16": ("H", 2),
    "UINT32": ("I", 4),
    "UINT64": ("Q", 8),
    "FP32": ("f", 4),
    "FP64": ("d", 8),
}
# Which InferTensorContents field holds each datatype when a client does not send raw bytes.
_CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


# Queued to a stream's responses to make it end with UNAVAILABLE (compared by identity).
_SHUTDOWN = service_pb2.ModelStreamInferResponse(error_message="shutting down")
# Queued to make it end cleanly, status OK, whatever its requests still had to say.
_END_STREAM = service_pb2.ModelStreamInferResponse(error_message="end of stream")


class _RequestError(Exception):
    """Rejected by the frontend before reaching the model: the error response carries only the id."""


class _ModelError(Exception):
    """Failed inside the model: the error response is a FINAL response of the request."""


def _serialize_bytes(elements: Iterable[bytes]) -> bytes:
    """Triton's BYTES wire format: each element is a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(element)) + element for element in elements)


def _deserialize_bytes(raw: bytes) -> list[bytes]:
    elements: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise ValueError("truncated element length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ValueError("truncated element")
        elements.append(raw[offset : offset + length])
        offset += length
    return elements


def _shape_text(dims: Iterable[int]) -> str:
    return "[" + ",".join(str(dim) for dim in dims) + "]"


def _log_request(request: service_pb2.ModelInferRequest) -> str:
    # Triton prefixes request errors with the id, or <id_unknown> when the client sent none.
    return f"[request id: {request.id or '<id_unknown>'}] "


def _decode_tensor(
    tensor: service_pb2.ModelInferRequest.InferInputTensor, raw: bytes | None, prefix: str = ""
) -> list[Any]:
    """A tensor's elements, flattened: bytes for BYTES, Python scalars otherwise."""
    count = math.prod(tensor.shape)
    datatype = tensor.datatype
    if datatype not in _CONTENTS_FIELD:
        raise _RequestError(f"{prefix}invalid datatype '{datatype}' for input '{tensor.name}'")
    if raw is None:
        values = list(getattr(tensor.contents, _CONTENTS_FIELD[datatype]))
    elif datatype == "BYTES":
        try:
            values = list(_deserialize_bytes(raw))
        except ValueError as error:
            raise _RequestError(f"{prefix}malformed BYTES data for input '{tensor.name}': {error}") from None
    else:
        code, size = _FIXED[datatype]
        if len(raw) != count * size:
            raise _RequestError(
                f"{prefix}input byte size mismatch for input '{tensor.name}'. Expected {count * size}, got {len(raw)}"
            )
        values = list(struct.unpack(f"<{count}{code}", raw))
    if len(values) != count:
        raise _RequestError(
            f"{prefix}unexpected number of string elements {len(values)} for inference input '{tensor.name}', "
            f"expecting {count}"
        )
    return values


def decode_request_inputs(request: service_pb2.ModelInferRequest) -> dict[str, list[Any]]:
    """Every input of a request, flattened (bytes for BYTES): handy to assert what a client sent."""
    raw = list(request.raw_input_contents)
    return {
        tensor.name: _decode_tensor(tensor, raw[index] if raw else None) for index, tensor in enumerate(request.inputs)
    }


@dataclass
class _Job:
    """What one request asks for, once its inputs are decoded."""

    prompt: str
    max_tokens: int
    stream: bool
    include_prompt: bool
    stop: list[str] = field(default_factory=list)
    include_stop: bool = False


def _first(values: list[Any] | None, default: Any = None) -> Any:
    return values[0] if values else default


def _parse_vllm(request: service_pb2.ModelInferRequest, inputs: dict[str, list[Any]]) -> _Job:
    prompt = inputs["text_input"][0].decode("utf-8", errors="replace")
    stream = bool(_first(inputs.get("stream"), False))
    exclude = inputs.get("exclude_input_in_output")
    # The vLLM backend prepends the prompt unless told not to, except when streaming where the
    # default is to leave it out and asking for it explicitly is an error.
    include_prompt = not exclude[0] if exclude else not stream
    if include_prompt and stream:
        raise _ModelError("Error generating stream: When streaming, `exclude_input_in_output` = False is not allowed.")
    if "sampling_parameters" in inputs:
        text = inputs["sampling_parameters"][0].decode("utf-8", errors="replace")
    else:
        # Without the input, the backend reads the request parameters as the sampling JSON.
        text = json.dumps(
            {
                key: getattr(value, value.WhichOneof("parameter_choice") or "string_param")
                for key, value in request.parameters.items()
                if not key.startswith("triton_")
            }
        )
    try:
        sampling = json.loads(text)
        if not isinstance(sampling, dict):
            raise ValueError("expected a JSON object")
        unknown = sorted(set(sampling) - _VLLM_SAMPLING_KEYS)
        if unknown:
            raise ValueError(f"unexpected sampling parameter(s) {unknown}")
        # The backend converts values to SamplingParams' types, so "5" is as good as 5.
        max_tokens = int(sampling.get("max_tokens") or _VLLM_DEFAULT_MAX_TOKENS)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        stop = sampling.get("stop") or []
        stop = [stop] if isinstance(stop, str) else [str(item) for item in stop]
        include_stop = bool(sampling.get("include_stop_str_in_output", False))
    except (ValueError, TypeError) as error:
        raise _ModelError(f"Error generating stream: invalid sampling parameters: {error}") from None
    return _Job(prompt, max_tokens, stream, include_prompt, stop, include_stop)


def _parse_tensorrtllm(inputs: dict[str, list[Any]]) -> _Job:
    prompt = inputs["text_input"][0].decode("utf-8", errors="replace")
    max_tokens = int(inputs["max_tokens"][0])
    if max_tokens < 1:
        raise _ModelError(f"max_tokens must be at least 1, got {max_tokens}")
    stream = bool(_first(inputs.get("stream"), False))
    exclude = bool(_first(inputs.get("exclude_input_in_output"), False))
    stop = [word.decode("utf-8", errors="replace") for word in inputs.get("stop_words", []) if word]
    # TensorRT-LLM keeps a matched stop word in the output; only non-streaming output repeats the prompt.
    return _Job(prompt, max_tokens, stream, include_prompt=not stream and not exclude, stop=stop, include_stop=True)


class TritonStandIn:
    """Serves ``models`` over Triton's gRPC protocol on 127.0.0.1 (an ephemeral port unless ``port`` is set)."""

    def __init__(self, models: Iterable[StandInModel], port: int = 0) -> None:
        self.models: dict[str, StandInModel] = {model.name: model for model in models}
        self.port = port  # 0: an ephemeral port, chosen by start(); a fixed one lets a test restart "Triton"
        self.url = ""
        self.started = 0  # requests accepted (reached the model)
        self.completed = 0  # requests that finished generating and sent their last response
        self.cancelled = 0  # requests stopped because the client cancelled the stream
        self.failed = 0  # requests that ended with a model error (fail_after, bad sampling parameters)
        self.rejected = 0  # requests refused before reaching the model (unknown model, bad inputs)
        self.active = 0  # requests generating right now
        self.tokens_sent = 0
        self.requests: list[service_pb2.ModelInferRequest] = []
        self._server: grpc.aio.Server | None = None
        self._streams: set[asyncio.Queue[service_pb2.ModelStreamInferResponse | None]] = set()

    async def start(self) -> int:
        server = grpc.aio.server()
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(_Servicer(self), server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._server = server
        self.url = f"127.0.0.1:{self.port}"
        return self.port

    async def stop(self, grace: float | None = 0) -> None:
        """Stop serving. Without a grace period, open streams end at once with UNAVAILABLE (as when
        Triton goes away) and their requests are cancelled; with one, they may finish first."""
        server, self._server = self._server, None
        if server is None:
            return
        if not grace:
            # End the streams ourselves: grpc.aio would cancel their handlers and log an error each.
            for queue in self._streams:
                queue.put_nowait(_SHUTDOWN)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    while self._streams:  # noqa: ASYNC110 - a handful of streams, ending within a tick
                        await asyncio.sleep(0.001)
        await server.stop(grace)
        with contextlib.suppress(TimeoutError):
            await self.wait_idle()

    async def __aenter__(self) -> TritonStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def wait_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the helper's documented signature
        """Wait until no request is generating; raises TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            # Polling rather than an asyncio.Event: tests may run the stand-in on another thread's loop.
            while self.active:  # noqa: ASYNC110
                await asyncio.sleep(0.002)

    # --- request handling -------------------------------------------------------------------

    def _model_for(self, name: str, version: str) -> StandInModel:
        model = self.models.get(name)
        if model is None:
            raise _RequestError(f"Request for unknown model: '{name}' is not found")
        if version not in ("", _VERSION):
            raise _RequestError(f"Request for unknown model: '{name}' version {version} is not found")
        return model

    def _validate(self, request: service_pb2.ModelInferRequest, model: StandInModel) -> dict[str, list[Any]]:
        """Triton core's request checks: names, count, datatypes and shapes; returns decoded inputs."""
        prefix = _log_request(request)
        specs = {spec.name: spec for spec in _inputs_of(model)}
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise _RequestError(
                f"{prefix}expected {len(request.inputs)} inputs in raw_input_contents but got {len(raw)}"
            )
        names = [tensor.name for tensor in request.inputs]
        required = [spec.name for spec in specs.values() if not spec.optional]
        missing = [name for name in required if name not in names]
        if missing or len(names) > len(specs):
            raise _RequestError(
                f"{prefix}expected number of inputs between {len(required)} and {len(specs)} but got {len(names)} "
                f"inputs for model '{model.name}'. Got input(s) {names}, but missing required input(s) {missing}. "
                "Please provide all required input(s)."
            )
        decoded: dict[str, list[Any]] = {}
        for index, tensor in enumerate(request.inputs):
            spec = specs.get(tensor.name)
            if spec is None:
                raise _RequestError(f"{prefix}unexpected inference input '{tensor.name}' for model '{model.name}'")
            if tensor.datatype != spec.datatype:
                raise _RequestError(
                    f"{prefix}inference input '{tensor.name}' data-type is '{tensor.datatype}', but model "
                    f"'{model.name}' expects '{spec.datatype}'"
                )
            shape = tuple(tensor.shape)
            if len(shape) != len(spec.dims) or any(
                want not in (-1, got) for want, got in zip(spec.dims, shape, strict=True)
            ):
                raise _RequestError(
                    f"{prefix}unexpected shape for input '{tensor.name}' for model '{model.name}'. "
                    f"Expected {_shape_text(spec.dims)}, got {_shape_text(shape)}"
                )
            if model.convention == TENSORRTLLM and shape[0] != 1:
                # Real Triton batches up to max_batch_size; the stand-in generates one sequence per request.
                raise _RequestError(f"{prefix}the Triton stand-in only serves batch size 1, got {shape[0]}")
            decoded[tensor.name] = _decode_tensor(tensor, raw[index] if raw else None, prefix)
        known_outputs = {spec.name for spec in _outputs_of(model)}
        for output in request.outputs:
            if output.name not in known_outputs:
                raise _RequestError(f"{prefix}unexpected inference output '{output.name}' for model '{model.name}'")
        return decoded

    @staticmethod
    def _empty_final_requested(request: service_pb2.ModelInferRequest) -> bool:
        parameter = request.parameters.get("triton_enable_empty_final_response")
        if parameter is None:
            return False
        if parameter.WhichOneof("parameter_choice") != "bool_param":
            raise _RequestError(
                "invalid value type for 'triton_enable_empty_final_response' parameter, expected bool_param."
            )
        return parameter.bool_param

    async def _serve(
        self, request: service_pb2.ModelInferRequest, send: Callable[[service_pb2.ModelStreamInferResponse], None]
    ) -> None:
        """Run one request of a stream, handing its responses to ``send``."""
        try:
            model = self._model_for(request.model_name, request.model_version)
            empty_final = self._empty_final_requested(request)
            inputs = self._validate(request, model)
        except _RequestError as error:
            self.rejected += 1
            response = service_pb2.ModelStreamInferResponse(error_message=str(error))
            response.infer_response.id = request.id
            send(response)
            return

        self.started += 1
        self.active += 1
        try:
            await self._generate(request, model, inputs, empty_final, send)
        except _ModelError as error:
            self.failed += 1
            send(self._error_response(request, str(error)))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    async def _generate(
        self,
        request: service_pb2.ModelInferRequest,
        model: StandInModel,
        inputs: dict[str, list[Any]],
        empty_final: bool,
        send: Callable[[service_pb2.ModelStreamInferResponse], None],
    ) -> None:
        job = _parse_vllm(request, inputs) if model.convention == VLLM else _parse_tensorrtllm(inputs)
        deltas = self._deltas(job, model.tokens(job.prompt, job.max_tokens)[: job.max_tokens])
        failing = model.fail_after is not None
        if failing:
            deltas = deltas[: model.fail_after]
        # Only streaming can leave the FINAL flag for a response of its own; a non-streaming
        # request's single response always carries it.
        separate = model.final_on_its_own and job.stream
        pieces: list[str] = []
        for index, delta in enumerate(deltas):
            if index == model.end_stream_after:
                send(_END_STREAM)
                return
            if index == model.hold_after:
                await asyncio.get_running_loop().create_future()  # until the stream is cancelled
            await asyncio.sleep(model.token_delay)
            self.tokens_sent += 1
            if job.stream:
                last = index == len(deltas) - 1 and not failing
                send(self._text_response(request, model, delta, final=last and not separate))
            else:
                pieces.append(delta)
        if failing:
            await asyncio.sleep(model.token_delay)
            raise _ModelError(model.error_text)
        if not job.stream:
            text = (job.prompt if job.include_prompt else "") + "".join(pieces)
            send(self._text_response(request, model, text, final=True))
        elif not deltas:
            send(self._text_response(request, model, "", final=not separate))
        if separate and empty_final:
            send(self._empty_final_response(request))
        # Without the opt-in, a FINAL flag sent on its own is dropped by Triton's frontend.
        self.completed += 1

    @staticmethod
    def _deltas(job: _Job, tokens: list[str]) -> list[str]:
        """The text each token adds, cut at the first stop string (which ends generation)."""
        if not any(job.stop):
            return list(tokens)  # (and without building the text token by token: outputs may be large)
        deltas: list[str] = []
        text = ""
        for token in tokens:
            candidate = text + token
            hits = [(candidate.find(stop), stop) for stop in job.stop if stop and stop in candidate]
            if hits:
                position, stop = min(hits)
                end = position + len(stop) if job.include_stop else position
                deltas.append(candidate[len(text) : max(end, len(text))])
                return deltas
            deltas.append(token)
            text = candidate
        return deltas

    @staticmethod
    def _text_response(
        request: service_pb2.ModelInferRequest, model: StandInModel, text: str, *, final: bool
    ) -> service_pb2.ModelStreamInferResponse:
        response = service_pb2.ModelStreamInferResponse()
        infer = response.infer_response
        infer.model_name = request.model_name
        infer.model_version = _VERSION
        infer.id = request.id
        output = infer.outputs.add()
        output.name = "text_output"
        output.datatype = "BYTES"
        output.shape.extend([1] if model.convention == VLLM else [1, 1])
        # Triton always answers with raw_output_contents, never InferTensorContents.
        infer.raw_output_contents.append(_serialize_bytes([text.encode("utf-8")]))
        infer.parameters["triton_final_response"].bool_param = final
        return response

    @staticmethod
    def _empty_final_response(request: service_pb2.ModelInferRequest) -> service_pb2.ModelStreamInferResponse:
        response = service_pb2.ModelStreamInferResponse()
        infer = response.infer_response
        infer.model_name = request.model_name
        infer.model_version = request.model_version
        infer.id = request.id
        infer.parameters["triton_final_response"].bool_param = True
        return response

    @staticmethod
    def _error_response(request: service_pb2.ModelInferRequest, message: str) -> service_pb2.ModelStreamInferResponse:
        response = TritonStandIn._empty_final_response(request)
        response.error_message = message
        return response


class _Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, stand_in: TritonStandIn) -> None:
        self._stand_in = stand_in

    async def ServerLive(
        self, request: service_pb2.ServerLiveRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerLiveResponse:
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(
        self, request: service_pb2.ServerReadyRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerReadyResponse:
        return service_pb2.ServerReadyResponse(ready=True)

    async def ServerMetadata(
        self, request: service_pb2.ServerMetadataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ServerMetadataResponse:
        return service_pb2.ServerMetadataResponse(name="triton", version="stand-in", extensions=["model_configuration"])

    async def ModelReady(
        self, request: service_pb2.ModelReadyRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelReadyResponse:
        # Triton answers ready=false (not an error) for models it does not know.
        ready = request.name in self._stand_in.models and request.version in ("", _VERSION)
        return service_pb2.ModelReadyResponse(ready=ready)

    async def _model(self, name: str, version: str, context: grpc.aio.ServicerContext) -> StandInModel:
        try:
            return self._stand_in._model_for(name, version)
        except _RequestError as error:
            # Triton reports unknown models as UNAVAILABLE, not NOT_FOUND.
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
            raise  # unreachable: abort raises

    async def ModelMetadata(
        self, request: service_pb2.ModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelMetadataResponse:
        model = await self._model(request.name, request.version, context)
        response = service_pb2.ModelMetadataResponse(
            name=model.name, versions=[_VERSION], platform="vllm" if model.convention == VLLM else "ensemble"
        )
        for spec in _inputs_of(model):
            response.inputs.add(name=spec.name, datatype=spec.datatype, shape=list(spec.dims))
        for spec in _outputs_of(model):
            response.outputs.add(name=spec.name, datatype=spec.datatype, shape=list(spec.dims))
        return response

    async def ModelConfig(
        self, request: service_pb2.ModelConfigRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelConfigResponse:
        model = await self._model(request.name, request.version, context)
        batching = model.convention == TENSORRTLLM
        config = model_config_pb2.ModelConfig(name=model.name, max_batch_size=_TRTLLM_MAX_BATCH_SIZE if batching else 0)
        if batching:
            config.platform = "ensemble"
        else:
            config.backend = "vllm"
        config.model_transaction_policy.decoupled = True
        types = {"BYTES": "TYPE_STRING"}
        for spec in _inputs_of(model):
            dims = list(spec.dims[1:] if batching else spec.dims)
            data_type = model_config_pb2.DataType.Value(types.get(spec.datatype, f"TYPE_{spec.datatype}"))
            config.input.add(name=spec.name, data_type=data_type, dims=dims, optional=spec.optional)
        for spec in _outputs_of(model):
            dims = list(spec.dims[1:] if batching else spec.dims)
            data_type = model_config_pb2.DataType.Value(types.get(spec.datatype, f"TYPE_{spec.datatype}"))
            config.output.add(name=spec.name, data_type=data_type, dims=dims)
        return service_pb2.ModelConfigResponse(config=config)

    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelInferResponse:
        self._stand_in.requests.append(request)
        await self._model(request.model_name, request.model_version, context)
        # Every model here is decoupled, which the unary RPC refuses (TRITONSERVER_ERROR_UNSUPPORTED).
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "ModelInfer RPC doesn't support models with decoupled transaction policy"
        )
        raise AssertionError("unreachable: abort raises")

    async def ModelStreamInfer(
        self,
        request_iterator: AsyncIterator[service_pb2.ModelInferRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[service_pb2.ModelStreamInferResponse]:
        """Each request runs in its own task; their responses interleave on this one stream."""
        stand_in = self._stand_in
        queue: asyncio.Queue[service_pb2.ModelStreamInferResponse | None] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        outstanding = 1  # the reader, plus one per request still running

        def finished(_task: asyncio.Task[None]) -> None:
            nonlocal outstanding
            outstanding -= 1
            if outstanding == 0:
                queue.put_nowait(None)  # nothing more can be sent: end the response stream

        async def read() -> None:
            nonlocal outstanding
            # Reading ends when the client half-closes; requests already running carry on.
            with contextlib.suppress(grpc.RpcError):
                async for request in request_iterator:
                    stand_in.requests.append(request)
                    outstanding += 1
                    task = asyncio.create_task(stand_in._serve(request, queue.put_nowait))
                    tasks.add(task)
                    task.add_done_callback(finished)

        reader = asyncio.create_task(read())
        reader.add_done_callback(finished)
        stand_in._streams.add(queue)
        try:
            while (response := await queue.get()) is not None:
                if response is _SHUTDOWN:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "Triton stand-in is shutting down")
                if response is _END_STREAM:
                    return
                yield response
        finally:
            # The client cancelled, or the server is stopping: stop every request of this stream.
            reader.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(reader, *tasks, return_exceptions=True)
            stand_in._streams.discard(queue)
