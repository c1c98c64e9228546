"""The configured models, their backends, and the `auto` router.

The router's rule, in order:
1. candidates are the configured models, in configuration order;
2. a model whose backend failed with UNAVAILABLE in the last `cooldown` seconds is
   skipped while another candidate remains;
3. a request with tools (tool_choice other than "none") only goes to models that can call
   tools (`ModelConfig.tool_calls`); none configured is a 400;
4. the first candidate whose context window holds the prompt (estimated at one token
   per 4 characters) plus the requested max_tokens wins;
5. if none fits, the candidate with the largest context window is used (the backend
   then reports the overflow).

A model named explicitly that cannot call tools is a 400 for a request with tools.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from server.errors import InvalidArgument
from server.inference.backend import Backend
from server.inference.config import ROUTER_KEY, ModelConfig
from server.inference.local import LocalBackend
from server.inference.openai_compat import OpenAIBackend
from server.inference.triton import TritonBackend


@dataclass(frozen=True, slots=True)
class ServedModel:
    config: ModelConfig
    backend: Backend

    @property
    def key(self) -> str:
        return self.config.key

    def size(self) -> str | None:
        """The configured size, or the size of the local weights file once it exists."""
        if self.config.size:
            return self.config.size
        path = getattr(self.backend, "weights_path", None)
        if isinstance(path, Path) and path.is_file():
            return f"{round(path.stat().st_size / 1e6)}MB"
        return None


class UnknownModel(InvalidArgument):
    reason = "UNKNOWN_MODEL"


def build_backend(
    config: ModelConfig,
    *,
    models_dir: Path,
    parallel: int,
    max_waiting: int,
    preload: bool = True,
    threads: int | None = None,
) -> Backend:
    if config.backend == "local":
        return LocalBackend(
            model_path=config.path,
            models_dir=models_dir,
            context_window=config.context_window,
            parallel=parallel,
            max_waiting=max_waiting,
            preload=preload,
            threads=threads,
            key=config.key,
            chat_template=config.chat_template,
        )
    if config.backend == "triton":
        assert config.url is not None
        return TritonBackend(
            url=config.url, model_name=config.remote_name, convention=config.convention, timeout=config.timeout
        )
    assert config.base_url is not None
    return OpenAIBackend(
        base_url=config.base_url,
        model_name=config.remote_name,
        api_key=config.api_key.get_secret_value() if config.api_key else None,
        api=config.api,
        timeout=config.timeout,
    )


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


class Catalogue:
    def __init__(
        self,
        models: list[ServedModel],
        *,
        default: str | None = None,
        cooldown: float = 30.0,
        aliases: dict[str, str] | None = None,
    ) -> None:
        if not models:
            raise ValueError("at least one model must be configured")
        keys = [model.key for model in models]
        if len(set(keys)) != len(keys):
            raise ValueError(f"model keys must be unique: {keys}")
        if default is not None and default != ROUTER_KEY and default not in keys:
            raise ValueError(f"default_model {default!r} is not a configured model ({', '.join(keys)})")
        self.models = models
        self._by_key = {model.key: model for model in models}
        self._default = default or ROUTER_KEY
        # Other names the operator lets clients use (a document's "mistral-medium"): alias → served key.
        self.aliases = dict(aliases or {})
        for alias, target in self.aliases.items():
            if target != ROUTER_KEY and target not in keys:
                raise ValueError(f"model alias {alias!r} names {target!r}, which is not a configured model")
            if alias in keys or alias == ROUTER_KEY:
                raise ValueError(f"model alias {alias!r} is already a model key")
        self._cooldown = cooldown
        self._failed_at: dict[str, float] = {}

    @property
    def keys(self) -> list[str]:
        return [ROUTER_KEY, *self._by_key]

    def resolve(self, key: str, *, prompt_chars: int, max_tokens: int, needs_tools: bool = False) -> ServedModel:
        """The model serving `key` ("" means the default); 400 with the valid keys if unknown."""
        key = self.aliases.get(key, key) if key else self._default
        if key == ROUTER_KEY:
            return self.route(prompt_chars=prompt_chars, max_tokens=max_tokens, needs_tools=needs_tools)
        model = self._by_key.get(key)
        if model is None:
            raise UnknownModel(
                f"Unknown model {key!r}; valid models: {', '.join(self.names)}",
                metadata={"valid_models": ",".join(self.names)},
            )
        if needs_tools and model.config.tool_calls == "none":
            raise InvalidArgument(f"Model {key!r} cannot call tools; use one that can, or 'auto'")
        return model

    @property
    def names(self) -> list[str]:
        """Every name a client may give: the keys, then the aliases."""
        return [*self.keys, *self.aliases]

    def canonical(self, name: str) -> str | None:
        """The served key `name` stands for (itself or its alias's target); None if unknown."""
        key = self.aliases.get(name, name)
        return key if key in self._by_key or key == ROUTER_KEY else None

    def route(self, *, prompt_chars: int, max_tokens: int, needs_tools: bool = False) -> ServedModel:
        now = time.monotonic()
        models = [m for m in self.models if m.config.tool_calls != "none"] if needs_tools else self.models
        if not models:
            raise InvalidArgument("No configured model can call tools")
        healthy = [m for m in models if now - self._failed_at.get(m.key, -math.inf) >= self._cooldown]
        candidates = healthy or models
        needed = math.ceil(prompt_chars / 4) + max_tokens
        for model in candidates:
            if model.config.context_window >= needed:
                return model
        return max(candidates, key=lambda model: model.config.context_window)

    def describe_models(self) -> list[dict[str, object]]:
        """The served models as the list_models tool reports them."""
        return [
            {
                "key": model.key,
                "name": model.config.display_name,
                "backend": model.config.backend,
                "type": model.config.location,
                "context_window": model.config.context_window,
                "tool_calls": model.config.tool_calls,
            }
            for model in self.models
        ]

    def mark_unavailable(self, key: str) -> None:
        self._failed_at[key] = time.monotonic()

    def mark_available(self, key: str) -> None:
        self._failed_at.pop(key, None)
