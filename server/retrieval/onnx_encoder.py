"""The local embedding model as an ONNX Runtime session, for short requests.

A search embeds one short text, and torch spends most of that call in its own per-operator
overhead: all-MiniLM-L6-v2 took 15.4 ms a query (p50) on two cores through sentence-transformers,
4.1 ms through ONNX Runtime in the same run, for the same vector (within 2e-7). Large batches (a document's
passages) stay on torch, whose kernels are as fast there (bench/README.md, `retrieval`).

The graph is exported from the sentence-transformers model already loaded (about a second, at
load time, through a temporary file): nothing is downloaded or kept. Only the pipeline this module
reproduces is exported (a transformer, then mean pooling, then normalisation); another one
keeps torch for everything.
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def exportable(model: Any) -> bool:
    """A transformer, mean pooling of its tokens, then (or not) normalisation: what encode() does."""
    from sentence_transformers.models import Normalize, Pooling, Transformer

    modules = list(model)
    if len(modules) not in (2, 3) or not isinstance(modules[0], Transformer) or not isinstance(modules[1], Pooling):
        return False
    if modules[1].get_config_dict().get("pooling_mode") != "mean":
        return False
    names = getattr(modules[0].tokenizer, "model_input_names", [])
    return set(names) <= set(INPUTS) and (len(modules) == 2 or isinstance(modules[2], Normalize))


class OnnxEncoder:
    """Texts → mean-pooled vectors (not normalised: the embedder does it, as for every backend)
    with the exported graph; the tokenizer is the model's own.

    The graph is exported here, in the calling thread (the preload's, at a low priority); the
    session is opened by the first encode(), on the embedder's own thread: the threads ONNX
    Runtime starts then take that thread's priority, not the preload's."""

    def __init__(self, model: Any, threads: int) -> None:
        self._tokenizer = model.tokenizer
        self._max_length = int(model.max_seq_length)
        self._threads = threads
        self._inputs = [name for name in INPUTS if name in self._tokenizer.model_input_names]
        self._graph = _export(model[0].auto_model, self._inputs)
        self._session: Any = None
        self._opening = threading.Lock()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        features = self._tokenizer(
            list(texts), padding=True, truncation="longest_first", max_length=self._max_length, return_tensors="np"
        )
        feed = {name: features[name].astype(np.int64) for name in self._inputs}
        (pooled,) = (self._session or self._open()).run(None, feed)
        vectors: np.ndarray = pooled
        return vectors

    def _open(self) -> Any:
        import onnxruntime

        with self._opening:
            if self._session is None:
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                # The arena kept the peak of the largest request for good (16 texts of 256 tokens:
                # 270 MB); without it, memory goes back after each run, at no measurable cost to a
                # query (13.7 against 13.9 ms, alternated in one process).
                options.enable_cpu_mem_arena = False
                self._session = onnxruntime.InferenceSession(self._graph, options, providers=["CPUExecutionProvider"])
                self._graph = b""  # ~90 MB, in the session now
            return self._session


def _export(transformer: Any, inputs: list[str]) -> bytes:
    import torch

    class MeanPooled(torch.nn.Module):
        """The transformer's token states averaged over the real tokens, as Pooling(mean) does."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            named = dict(zip(inputs, tensors, strict=True))
            states = self.transformer(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled: torch.Tensor = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return pooled

    # A made-up one-text sample (the graph's shapes are dynamic): the tokenizer is not called here,
    # since a fast tokenizer used from two threads at once fails, and the embedder's thread uses it.
    sample = {
        name: (torch.zeros if name == "token_type_ids" else torch.ones)((1, 4), dtype=torch.long) for name in inputs
    }
    with tempfile.TemporaryDirectory(prefix="relais-onnx-") as folder, warnings.catch_warnings():
        graph = Path(folder) / "model.onnx"
        # The tracer's notes on Python branches it fixed; the graph is checked against torch in
        # tests/retrieval/test_embeddings.py.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            MeanPooled().eval(),
            tuple(sample[name] for name in inputs),
            graph,
            input_names=inputs,
            output_names=["pooled"],
            dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in inputs}, "pooled": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        return graph.read_bytes()
