"""A Triton stand-in serving one embedding model over Triton's own gRPC protocol.

Built on tritonclient's `GRPCInferenceServiceServicer` and messages, like the generation
stand-in, for a non-decoupled model answered by the unary `ModelInfer`: a BYTES [n, 1]
input of texts, an FP32 [n, dimension] output in `raw_output_contents`. Requests are
checked as Triton core checks them (model, input name, datatype, shape, byte layout), and
the vectors come from a real embedding function (the local all-MiniLM-L6-v2 in the tests).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor

EmbedFunction = Callable[[Sequence[str]], np.ndarray]


class _EmbeddingServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, stand_in: TritonEmbeddingStandIn) -> None:
        self._stand_in = stand_in

    async def ServerLive(self, request: Any, context: Any) -> service_pb2.ServerLiveResponse:
        return service_pb2.ServerLiveResponse(live=True)

    async def ModelReady(self, request: Any, context: Any) -> service_pb2.ModelReadyResponse:
        return service_pb2.ModelReadyResponse(ready=request.name == self._stand_in.model_name)

    async def ModelInfer(
        self, request: service_pb2.ModelInferRequest, context: grpc.aio.ServicerContext
    ) -> service_pb2.ModelInferResponse:
        stand_in = self._stand_in
        stand_in.requests += 1
        if request.model_name != stand_in.model_name:
            # Triton reports unknown models as UNAVAILABLE.
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"Request for unknown model: '{request.model_name}' is not found"
            )
        if len(request.inputs) != 1 or request.inputs[0].name != stand_in.input_name:
            names = [tensor.name for tensor in request.inputs]
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"[request id: <id_unknown>] expected 1 input '{stand_in.input_name}' but got {names}",
            )
        tensor = request.inputs[0]
        if tensor.datatype != "BYTES" or len(tensor.shape) != 2 or tensor.shape[1] != 1:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unexpected datatype {tensor.datatype} or shape {list(tensor.shape)} for input '{tensor.name}'",
            )
        if len(request.raw_input_contents) != 1:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected the input in raw_input_contents")
        texts = [element.decode("utf-8") for element in deserialize_bytes_tensor(request.raw_input_contents[0])]
        if len(texts) != tensor.shape[0]:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input '{tensor.name}' has {len(texts)} elements, its shape says {tensor.shape[0]}",
            )
        vectors = np.ascontiguousarray(await asyncio.to_thread(stand_in.embed, texts), dtype="<f4")
        response = service_pb2.ModelInferResponse(model_name=stand_in.model_name, model_version="1", id=request.id)
        response.outputs.add(name=stand_in.output_name, datatype="FP32", shape=list(vectors.shape))
        response.raw_output_contents.append(vectors.tobytes())
        return response


class TritonEmbeddingStandIn:
    """Serves `model_name` on 127.0.0.1 on a loop of its own thread; `url` once started."""

    def __init__(
        self,
        embed: EmbedFunction,
        *,
        model_name: str = "minilm",
        input_name: str = "TEXT",
        output_name: str = "EMBEDDING",
    ) -> None:
        self.embed = embed
        self.model_name = model_name
        self.input_name = input_name
        self.output_name = output_name
        self.requests = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="triton-embedding", daemon=True)
        self._server: grpc.aio.Server | None = None

    def start(self) -> TritonEmbeddingStandIn:
        self._thread.start()
        self._run(self._start())
        return self

    async def _start(self) -> None:
        server = grpc.aio.server()
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(_EmbeddingServicer(self), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self.url = f"127.0.0.1:{port}"

    def _run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(30)

    def close(self) -> None:
        if self._server is not None:
            self._run(self._server.stop(0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
