"""Configuration of the generation models, one entry per model, each naming its backend.

In the TOML config file:

    [[models]]
    key = "qwen-coder"                 # what callers pass as `model`
    name = "qwen2.5-coder:32b-instruct-q4_K_M"
    backend = "openai"                 # local | triton | openai
    base_url = "http://ollama:11434/v1"
    model_name = "qwen2.5-coder:32b-instruct-q4_K_M"
    context_window = 32768

or as JSON in RELAIS_MODELS. With no models configured, Relais serves the packaged
Gemma 3 270M with llama.cpp under the key "gemma3-270m".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

DEFAULT_LOCAL_KEY = "gemma3-270m"
ROUTER_KEY = "auto"


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
    name: str = ""
    backend: Literal["local", "triton", "openai"]
    # "local" (this deployment's hardware) or "cloud"; by default cloud for openai, local otherwise.
    type: Literal["local", "cloud"] | None = None
    size: str | None = None
    provider: str | None = None
    context_window: int = Field(default=2048, gt=0)
    # local: a GGUF file; the packaged Gemma 3 270M when unset. Its turns are rendered with the
    # chat template its GGUF carries, or this Jinja template, or "transcript" for Relais' own
    # transcript (also used when the GGUF has none, as the packaged model's has not).
    path: Path | None = None
    chat_template: str | None = None
    # triton: "host:port" of Triton's gRPC endpoint, and its tensor convention.
    url: str | None = None
    convention: Literal["vllm", "tensorrtllm"] = "vllm"
    # openai: the API root (e.g. "http://localhost:11434/v1"), key, and which API to call.
    base_url: str | None = None
    api_key: SecretStr | None = None
    api: Literal["chat", "completions"] = "chat"
    # triton and openai: the server's name for the model (defaults to `key`).
    model_name: str | None = None
    # Seconds a whole generation may take on a remote backend.
    timeout: float = Field(default=300.0, gt=0)
    # Whether the model is offered tools; by default every backend that can constrain or
    # natively emit tool calls is (see `tool_calls`). False keeps a model out of tool requests.
    supports_tools: bool = True

    @model_validator(mode="after")
    def _backend_fields(self) -> ModelConfig:
        if self.key == ROUTER_KEY:
            raise ValueError(f"{ROUTER_KEY!r} is the router's key; choose another")
        if self.backend == "triton" and not self.url:
            raise ValueError(f"model {self.key!r}: a triton model needs `url` (host:port of Triton's gRPC port)")
        if self.backend == "openai" and not self.base_url:
            raise ValueError(f"model {self.key!r}: an openai model needs `base_url`")
        return self

    @property
    def display_name(self) -> str:
        return self.name or self.model_name or self.key

    @property
    def location(self) -> str:
        return self.type or ("cloud" if self.backend == "openai" else "local")

    @property
    def tool_calls(self) -> str:
        """How this model is made to call tools: "grammar" (llama.cpp constrained to the
        tool-call JSON Schema), "native" (an OpenAI-compatible server's tool calling),
        "structured" (Triton's vLLM backend, structured-output sampling), or "none"."""
        if not self.supports_tools:
            return "none"
        if self.backend == "local":
            return "grammar"
        if self.backend == "openai":
            return "native" if self.api == "chat" else "none"
        return "structured" if self.convention == "vllm" else "none"

    @property
    def remote_name(self) -> str:
        return self.model_name or self.key


def default_models(context_window: int) -> list[ModelConfig]:
    return [
        ModelConfig(
            key=DEFAULT_LOCAL_KEY,
            name="Gemma 3 270M (Q4_K_M, llama.cpp)",
            backend="local",
            provider="Google",
            context_window=context_window,
        )
    ]
