"""OpenAI's API over Relais: the model listing, chat completions (chat.py), legacy completions,
embeddings (embeddings.py), and the usage each caller's requests add up to.

Every generation is counted once it has started, whatever ends it (the answer, an error, the
client leaving): requests and tokens per user, day, route and the model that answered (usage.py
writes the counts, off the request's path).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from server.agent.events import Finished, ReplyEvent, Started, TextDelta, Usage
from server.agents.service import AgentService
from server.auth import Principal
from server.errors import PermissionDenied
from server.inference.backend import Finish, GenerationRequest
from server.inference.config import ROUTER_KEY
from server.inference.service import Generation, InferenceService
from server.openai_api.chat import ChatCompletions
from server.openai_api.embeddings import Embedded, Embeddings
from server.openai_api.models import ApiUsage
from server.openai_api.repository import UsageRepository, Use
from server.openai_api.requests import invalid
from server.openai_api.usage import UsageCounter
from server.openai_api.values import AGENT_PREFIX, ChatRequest, CompletionRequest, ModelEntry, ModelNotFound
from server.paging import MAX_PAGE

CHAT, COMPLETIONS, EMBEDDINGS = "chat.completions", "completions", "embeddings"
MAX_USAGE_DAYS = 366


@dataclass(slots=True)
class Watched:
    """What a reply's events said about its cost: the model that answered, the tokens so far."""

    model: str = ""
    usage: Usage | None = None

    def see(self, event: ReplyEvent) -> None:
        if isinstance(event, Started):
            self.model = event.model
        self.usage = event.usage


class OpenAIService:
    def __init__(
        self,
        *,
        inference: InferenceService,
        chat: ChatCompletions,
        agents: AgentService,
        embeddings: Embeddings,
        usage: UsageRepository,
    ) -> None:
        self._inference = inference
        self._chat = chat
        self._agents = agents
        self._embeddings = embeddings
        self._usage = usage
        self.counter = UsageCounter(usage)
        self._started = int(time.time())

    # ------------------------------------------------------------------ models

    def _static_models(self) -> list[ModelEntry]:
        entries = [ModelEntry(id=ROUTER_KEY, created=self._started, owned_by="relais")]
        for served in self._inference.catalogue.models:
            owner = served.config.provider or "relais"
            entries.append(ModelEntry(id=served.key, created=self._started, owned_by=owner))
        entries.append(ModelEntry(id=self._embeddings.model_name, created=self._started, owned_by="relais"))
        return entries

    async def models(self, principal: Principal | None) -> list[ModelEntry]:
        """Every model id a caller may name, agents included (their own, then public ones)."""
        agents = []
        if principal is not None and principal.user_id is not None:
            agents.extend(await self._agents.list_mine(principal))
        agents.extend((await self._agents.list_public(limit=MAX_PAGE, offset=0)).items)
        unique = {agent.id: agent for agent in agents}.values()
        entries = [
            ModelEntry(id=f"{AGENT_PREFIX}{agent.id}", created=int(agent.created_at.timestamp()), owned_by="relais")
            for agent in unique
        ]
        return self._static_models() + entries

    async def model(self, principal: Principal | None, model_id: str) -> ModelEntry:
        if model_id.startswith(AGENT_PREFIX):
            agent = await self._chat.agent(principal, model_id)
            return ModelEntry(id=model_id, created=int(agent.created_at.timestamp()), owned_by="relais")
        for entry in self._static_models():
            if entry.id == model_id:
                return entry
        raise ModelNotFound(f"The model {model_id!r} does not exist")

    # ------------------------------------------------------------------ generation

    async def chat(
        self, principal: Principal, request: ChatRequest, *, request_id: str
    ) -> AsyncGenerator[ReplyEvent, None]:
        watched = Watched()
        try:
            async with contextlib.aclosing(self._chat.reply(principal, request, request_id=request_id)) as events:
                async for event in events:
                    watched.see(event)
                    yield event
        finally:
            self._count(principal, CHAT, watched)

    async def complete(
        self, principal: Principal, request: CompletionRequest, *, request_id: str
    ) -> AsyncGenerator[ReplyEvent, None]:
        """A plain prompt's completion: Started, its text (after the prompt with `echo`), Finished."""
        if request.model.startswith(AGENT_PREFIX):
            raise invalid("model", "agents answer chat completions: use POST /v1/chat/completions")
        if request.model not in self._inference.catalogue.keys:
            raise ModelNotFound(f"The model {request.model!r} does not exist; GET /v1/models lists the models")
        sampling = request.sampling
        generation_request = GenerationRequest(
            request_id=request_id,
            prompt=request.prompt,
            max_tokens=self._inference.max_tokens(sampling.max_tokens),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            stop=sampling.stop,
            seed=sampling.seed,
            caller=principal.subject,
            via=request.via,
        )
        generation = await self._inference.start(generation_request, request.model)
        watched = Watched(model=generation.model.key)
        try:
            async with contextlib.aclosing(completion_events(generation, request.prompt, request.echo)) as events:
                async for event in events:
                    watched.see(event)
                    yield event
        finally:
            self._count(principal, COMPLETIONS, watched)

    # ------------------------------------------------------------------ embeddings

    async def embed(self, principal: Principal, model: str, texts: list[str], *, dimensions: int | None) -> Embedded:
        embedded = await self._embeddings.embed(model, texts, dimensions=dimensions)
        usage = Usage(prompt_tokens=embedded.prompt_tokens)
        self._count(principal, EMBEDDINGS, Watched(model=model, usage=usage))
        return embedded

    @property
    def embedding_model(self) -> str:
        return self._embeddings.model_name

    # ------------------------------------------------------------------ usage

    async def usage(self, principal: Principal, *, user_id: int | None, days: int | None) -> tuple[int, list[ApiUsage]]:
        """(whose, their rows): the caller's, or another user's for callers holding users:read."""
        days = 30 if days is None else days
        if not 1 <= days <= MAX_USAGE_DAYS:
            raise invalid("days", f"must be between 1 and {MAX_USAGE_DAYS}")
        if user_id is None or user_id == principal.user_id:
            if principal.user_id is None:
                raise PermissionDenied("Usage is counted for user accounts; sign in as a user")
            user_id = principal.user_id
        elif not principal.can("users:read"):
            raise PermissionDenied("Permission 'users:read' required to read another user's usage")
        await self.counter.flush()  # what this server holds, so a client reads its own requests
        return user_id, await self._usage.list(user_id, days=days)

    def _count(self, principal: Principal, endpoint: str, watched: Watched) -> None:
        """Add a request's use to its caller's counts (written within a second, see usage.py)."""
        if principal.user_id is None or watched.usage is None or not watched.model:
            return
        self.counter.add(
            Use(
                user_id=principal.user_id,
                endpoint=endpoint,
                model=watched.model,
                prompt_tokens=watched.usage.prompt_tokens,
                completion_tokens=watched.usage.completion_tokens,
            )
        )


async def completion_events(generation: Generation, prompt: str, echo: bool) -> AsyncGenerator[ReplyEvent, None]:
    def usage() -> Usage:
        return Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens)

    yield Started(model=generation.model.key, backend=generation.model.backend.kind, usage=usage())
    if echo:
        yield TextDelta(text=prompt, tokens=0, usage=usage())
    async with contextlib.aclosing(generation.chunks()) as chunks:
        async for chunk in chunks:
            if chunk.text:
                yield TextDelta(text=chunk.text, tokens=chunk.tokens, usage=usage())
    text = (prompt if echo else "") + generation.text
    yield Finished(text=text, finish=generation.finish or Finish.STOP, model=generation.model.key, usage=usage())
