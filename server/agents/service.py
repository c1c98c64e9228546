"""Agents: who may see, change and create them, and what a valid agent is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.agents import repository
from server.agents.access import may_use
from server.agents.models import Agent
from server.agents.views import AgentView
from server.auth import Principal
from server.errors import FailedPrecondition, FieldViolation, NotFound, PermissionDenied, ValidationFailed
from server.identity.locks import lock_account
from server.paging import Page, page_window
from server.storage import Database
from server.storage.queries import page_of

if TYPE_CHECKING:
    from server.retrieval.service import KnowledgeBase

MAX_AGENTS_PER_USER = 50
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MODEL = "auto"
LIMITS = {"name": 100, "system_prompt": 20_000, "model": 100, "avatar_url": 500}


class AgentQuotaReached(FailedPrecondition):
    reason = "AGENT_LIMIT_REACHED"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentFields:
    """Values given for an agent; None means "not given" (kept on update, defaulted on create)."""

    name: str | None = None
    system_prompt: str | None = None
    learn_from_interaction: bool | None = None
    is_public: bool | None = None
    model: str | None = None
    temperature: float | None = None
    avatar_url: str | None = None


def _violations(fields: AgentFields, *, creating: bool, model_keys: list[str] | None = None) -> list[FieldViolation]:
    violations = []
    for name in ("name", "system_prompt"):
        value = getattr(fields, name)
        if (creating and value is None) or (value is not None and not value.strip()):
            violations.append(FieldViolation(field=name, message="is required"))
    for name, limit in LIMITS.items():
        value = getattr(fields, name)
        if value is not None and len(value) > limit:
            violations.append(FieldViolation(field=name, message=f"must be at most {limit} characters"))
    if fields.temperature is not None and not 0 <= fields.temperature <= 2:
        violations.append(FieldViolation(field="temperature", message="must be between 0 and 2"))
    avatar = fields.avatar_url
    if avatar and not (
        (avatar.startswith("/") and not avatar.startswith("//")) or avatar.startswith(("https://", "http://"))
    ):
        violations.append(FieldViolation(field="avatar_url", message="must be an absolute path or an http(s) URL"))
    if fields.model is not None and fields.model and not fields.model.isprintable():
        violations.append(FieldViolation(field="model", message="must be a model key"))
    elif fields.model and model_keys is not None and fields.model.strip() not in model_keys:
        # Refused, not silently served by another model: the valid keys are listed, as chat does.
        valid = ", ".join(model_keys)
        violations.append(
            FieldViolation(field="model", message=f"unknown model {fields.model.strip()!r}; valid models: {valid}")
        )
    return violations


class AgentService:
    def __init__(
        self,
        database: Database,
        knowledge: KnowledgeBase | None = None,
        *,
        model_keys: Callable[[], list[str]] | None = None,
    ) -> None:
        self._knowledge = knowledge
        self._database = database
        # The model keys this deployment serves ("auto" included); any key when not given.
        self._model_keys = model_keys

    def _keys(self) -> list[str] | None:
        return self._model_keys() if self._model_keys is not None else None

    async def list_public(self, *, limit: int, offset: int) -> Page[AgentView]:
        offset, limit = page_window(skip=0, offset=offset, limit=limit)
        async with self._database.sessions() as session:
            page = await page_of(session, repository.public_agents(), skip=offset, limit=limit)
            return page.map(AgentView.of)

    async def list_mine(self, principal: Principal) -> list[AgentView]:
        async with self._database.sessions() as session:
            return [AgentView.of(agent) for agent in await repository.agents_owned_by(session, _user_id(principal))]

    async def create(self, principal: Principal, fields: AgentFields) -> AgentView:
        if violations := _violations(fields, creating=True, model_keys=self._keys()):
            raise ValidationFailed(violations)
        owner_id = _user_id(principal)
        async with self._database.sessions() as session, session.begin():
            await lock_account(session, owner_id)  # concurrent creations cannot both pass the quota
            if await repository.owned_count(session, owner_id) >= MAX_AGENTS_PER_USER:
                raise AgentQuotaReached(f"A user may own at most {MAX_AGENTS_PER_USER} agents; delete one first")
            agent = Agent(
                owner_id=owner_id,
                name=(fields.name or "").strip(),
                system_prompt=fields.system_prompt or "",
                learn_from_interaction=bool(fields.learn_from_interaction),
                is_public=bool(fields.is_public),
                model=(fields.model or DEFAULT_MODEL).strip(),
                temperature=DEFAULT_TEMPERATURE if fields.temperature is None else fields.temperature,
                avatar_url=fields.avatar_url or None,
            )
            session.add(agent)
        return await self.get(principal, agent.id)

    async def get(self, principal: Principal | None, agent_id: int) -> AgentView:
        """A public agent, or one of the caller's; 404 for anything else, so that private
        agents cannot even be discovered."""
        async with self._database.sessions() as session:
            agent = await repository.get_agent(session, agent_id)
            if agent is None or not may_use(agent, principal.user_id if principal is not None else None):
                raise NotFound(f"No agent {agent_id}")
            return AgentView.of(agent)

    async def update(self, principal: Principal, agent_id: int, fields: AgentFields) -> AgentView:
        if violations := _violations(fields, creating=False, model_keys=self._keys()):
            raise ValidationFailed(violations)
        async with self._database.sessions() as session, session.begin():
            agent = await self._owned(session, principal, agent_id)
            changes: dict[str, Any] = {
                "name": fields.name.strip() if fields.name is not None else None,
                "system_prompt": fields.system_prompt,
                "learn_from_interaction": fields.learn_from_interaction,
                "is_public": fields.is_public,
                "model": (fields.model.strip() or DEFAULT_MODEL) if fields.model is not None else None,
                "temperature": fields.temperature,
            }
            for name, value in changes.items():
                if value is not None:
                    setattr(agent, name, value)
            if fields.avatar_url is not None:
                agent.avatar_url = fields.avatar_url or None
        return await self.get(principal, agent_id)

    async def delete(self, principal: Principal, agent_id: int) -> None:
        if self._knowledge is not None:
            async with self._database.sessions() as session:
                await self._owned(session, principal, agent_id)
            # Its documents and memories first: their files and passages are not rows a cascade could remove.
            await self._knowledge.forget_entity("agent", agent_id)
        async with self._database.sessions() as session, session.begin():
            await session.delete(await self._owned(session, principal, agent_id))

    @staticmethod
    async def _owned(session: AsyncSession, principal: Principal, agent_id: int) -> Agent:
        agent = await repository.lock_agent(session, agent_id)
        if not may_use(agent, principal.user_id):
            raise NotFound(f"No agent {agent_id}")
        assert agent is not None
        if not _owns(principal, agent):
            raise PermissionDenied("Only the agent's owner may change or delete it")
        return agent


def _owns(principal: Principal | None, agent: Agent) -> bool:
    return principal is not None and principal.user_id is not None and principal.user_id == agent.owner_id


def _user_id(principal: Principal) -> int:
    if principal.user_id is None:
        raise PermissionDenied("Agents belong to user accounts; sign in as a user")
    return principal.user_id
