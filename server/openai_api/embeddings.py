"""POST /v1/embeddings: the retrieval embedding model, under its own name, for any text.

Each text is checked whole before anything is embedded: none empty, none longer than the model
reads (all-MiniLM-L6-v2 reads 256 word pieces and would silently drop the rest; OpenAI's API
refuses such input too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from server.openai_api.requests import invalid
from server.openai_api.values import ModelNotFound
from server.retrieval.embeddings import Embedder

MAX_INPUTS = 2048
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class Embedded:
    """Unit vectors, one row per text, and the tokens the model read."""

    vectors: np.ndarray
    prompt_tokens: int


class Embeddings:
    def __init__(self, embedder: Embedder, model_name: str) -> None:
        self.embedder = embedder
        self.model_name = model_name

    async def embed(self, model: str, texts: list[str], *, dimensions: int | None) -> Embedded:
        if model != self.model_name:
            raise ModelNotFound(f"The model {model!r} does not exist; the embedding model is {self.model_name!r}")
        if len(texts) > MAX_INPUTS:
            raise invalid("input", f"must hold at most {MAX_INPUTS} texts")
        for index, text in enumerate(texts):
            if not text.strip():
                raise invalid(f"input[{index}]", "must not be empty")
        if dimensions is not None and dimensions != self.embedder.dimension:
            size = self.embedder.dimension
            raise invalid("dimensions", f"{self.model_name} writes vectors of {size} dimensions only")
        counted = await self.embedder.count_tokens(texts)
        if counted.limit is not None:
            for index, count in enumerate(counted.counts):
                if count > counted.limit:
                    raise invalid(
                        f"input[{index}]", f"is {count} tokens long; {self.model_name} reads at most {counted.limit}"
                    )
        vectors = await self.embedder.embed(texts)
        return Embedded(vectors=vectors, prompt_tokens=sum(counted.counts))
