"""llm.prompt: ask a model (or an agent) a prompt and keep the answer in a conversation, an
existing one of the owner's or a new one (Open WebUI's "automations"). The answer is stored
through the chat domain, so the conversation's live watchers (Socket.IO room) see it arrive."""

from __future__ import annotations

from typing import Any

from server.agents.access import usable_agent
from server.auth import Principal
from server.chats.replies import ReplyOptions
from server.chats.service import MAX_CONTENT, MAX_TITLE, ChatService
from server.errors import DomainError, FieldViolation, NotFound, ValidationFailed
from server.storage import Database
from server.tasks.actions import Action, ActionContext

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT, "description": "What to ask."},
        "model": {
            "type": "string",
            "maxLength": 100,
            "description": "Model key (see /api/models); the router's choice when absent.",
        },
        "agent_id": {
            "type": "integer",
            "minimum": 1,
            "description": "Answer as this agent (a new conversation with it).",
        },
        "chat_id": {
            "type": "integer",
            "minimum": 1,
            "description": "Add to this conversation of yours instead of a new one.",
        },
        "title": {
            "type": "string",
            "maxLength": MAX_TITLE,
            "description": "Title of the new conversation; the task's name when absent.",
        },
    },
    "required": ["prompt"],
    "additionalProperties": False,
}
REPLY_PREVIEW = 500


def prompt_action(chats: ChatService, database: Database) -> Action:
    prompting = _Prompting(chats, database)
    return Action(
        name="llm.prompt",
        description="Ask a model or an agent a prompt and store the answer in a conversation (yours, or a new one).",
        params_schema=SCHEMA,
        run=prompting.run,
        check=prompting.check,
    )


class _Prompting:
    """The action's work: its checks when a task is created, then its two steps when it runs."""

    def __init__(self, chats: ChatService, database: Database) -> None:
        self._chats = chats
        self._database = database

    async def check(self, principal: Principal, params: dict[str, Any]) -> None:
        violations = []
        if "chat_id" in params:
            try:
                await self._chats.get(principal, int(params["chat_id"]))
            except NotFound:
                violations.append(FieldViolation(field="params.chat_id", message="is not one of your conversations"))
        elif "agent_id" in params and not await _agent_visible(self._database, principal, int(params["agent_id"])):
            violations.append(FieldViolation(field="params.agent_id", message="is not an agent you may use"))
        if params.get("model"):
            try:
                self._chats.check_model(str(params["model"]))
            except DomainError as error:
                violations.append(FieldViolation(field="params.model", message=error.message))
        if violations:
            raise ValidationFailed(violations)

    async def run(self, context: ActionContext) -> dict[str, Any]:
        params = context.params
        chat_id = await context.step("conversation", self._conversation, context.principal, params, context.task_name)
        prompt, model = str(params["prompt"]), str(params.get("model") or "")
        return await context.step("reply", self._reply, context.principal, chat_id, prompt, model, context.run_id)

    async def _conversation(self, principal: Principal, params: dict[str, Any], task_name: str) -> int:
        if "chat_id" in params:
            return (await self._chats.get(principal, int(params["chat_id"]))).id
        title = str(params.get("title") or task_name)[:MAX_TITLE]
        agent = int(params["agent_id"]) if "agent_id" in params else None
        return (await self._chats.create(principal, agent_id=agent, title=title)).id

    async def _reply(self, principal: Principal, chat_id: int, prompt: str, model: str, run: str) -> dict[str, Any]:
        options = ReplyOptions(model=model, content_field="params.prompt")
        exchange = await self._chats.send(principal, chat_id, prompt, request_id=run[-64:], options=options)
        message = exchange.assistant_message
        return {
            "chat_id": chat_id,
            "message_id": message.id,
            "model": message.llm_model or "",
            "status": message.status,
            "reply": message.content[:REPLY_PREVIEW],
            "completion_tokens": message.completion_tokens,
        }


async def _agent_visible(database: Database, principal: Principal, agent_id: int) -> bool:
    async with database.sessions() as session:
        return await usable_agent(session, agent_id, principal.user_id) is not None
