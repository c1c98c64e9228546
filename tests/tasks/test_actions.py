"""The actions: llm.prompt through the chat domain (its live watchers see the answer), tool.call
through a ToolInvoker, actions plugins contribute, backup.export and rag.reindex."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from relais.v1 import chat_pb2, live_pb2, live_pb2_grpc

from server.auth import Principal
from server.errors import FieldViolation, NotFound, PermissionDenied, ValidationFailed
from server.tasks.actions.tools import tool_call_action
from tests.identity.helpers import admin, new_account
from tests.support.live import LiveStack
from tests.tasks.support import add_job, finished_runs, job, wait_for


class EchoTools:
    """A ToolInvoker as the tool registry implements it: tools, each with the permission it needs."""

    TOOLS = {"echo": "", "host.restart": "*"}

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def check(self, principal: Principal, name: str, params: dict[str, Any]) -> None:
        if name not in self.TOOLS:
            raise NotFound(f"No tool {name!r}")
        permission = self.TOOLS[name]
        if permission and not principal.can(permission):
            raise PermissionDenied(f"The tool {name!r} needs the permission {permission!r}")
        if name == "echo" and not isinstance(params.get("text"), str):
            raise ValidationFailed([FieldViolation(field="text", message="is required")])

    async def call(self, principal: Principal, name: str, params: dict[str, Any]) -> Any:
        await self.check(principal, name, params)
        self.calls.append((principal.subject, name, params))
        return {"echo": params.get("text", ""), "caller": principal.subject}


@pytest.fixture(scope="module")
def tools(tasks_stack: LiveStack) -> Iterator[EchoTools]:
    """tool.call over EchoTools instead of the tool registry, for the module's remaining tests."""
    invoker = EchoTools()
    registry = tasks_stack.server.tasks.registry
    real = registry.get("tool.call")
    registry.remove("tool.call")
    registry.add(tool_call_action(invoker))
    yield invoker
    registry.remove("tool.call")
    if real is not None:
        registry.add(real)


def test_tool_call_runs_a_real_tool_through_the_tool_registry(http: httpx.Client) -> None:
    owner = new_account(http)
    params = {"tool": "calculator", "arguments": {"expression": "12345 * 6789"}}
    job_id = add_job(http, owner, type="once", action="tool.call", params=params)["id"]

    [run] = wait_for(lambda: finished_runs(http, owner, job_id))

    assert run["status"] == "success", run
    assert run["output"]["tool"] == "calculator" and "83810205" in run["output"]["content"]


def test_a_tool_call_the_tool_refuses_fails_the_run_with_its_message(http: httpx.Client) -> None:
    owner = new_account(http)
    params = {"tool": "calculator", "arguments": {"expression": "1 / 0"}}
    job_id = add_job(http, owner, type="once", action="tool.call", params=params)["id"]

    [run] = wait_for(lambda: finished_runs(http, owner, job_id))

    assert run["status"] == "failed" and "zero" in run["error"].lower(), run


def test_the_task_status_tool_reports_the_callers_tasks(http: httpx.Client) -> None:
    owner = new_account(http)
    job_id = add_job(http, owner, name="Veille", interval={"hours": 1}, action="llm.prompt", params={"prompt": "Hi"})[
        "id"
    ]

    answer = http.post("/tools/task_status/call", json={"arguments": {}}, headers=owner.bearer)

    assert answer.status_code == 200, answer.text
    assert "Veille" in answer.json()["content"] and job_id in answer.json()["content"]


def test_llm_prompt_answers_in_a_conversation_its_watchers_see(tasks_stack: LiveStack, http: httpx.Client) -> None:
    owner = new_account(http)
    chat_id = http.post("/api/chats", json={"title": "Veille"}, headers=owner.bearer).json()["id"]
    metadata = [("authorization", f"Bearer {owner.tokens['access_token']}")]
    with grpc.insecure_channel(tasks_stack.grpc_target) as channel:
        watch = live_pb2_grpc.LiveServiceStub(channel).WatchChat(
            live_pb2.WatchChatRequest(chat_id=chat_id), metadata=metadata, timeout=30
        )
        assert next(watch).WhichOneof("update") == "watching"
        job_id = add_job(
            http, owner, type="once", action="llm.prompt", params={"prompt": "Quoi de neuf ?", "chat_id": chat_id}
        )["id"]
        roles = []
        for update in watch:
            roles.append(update.new_message.role)
            if len(roles) == 2:
                break
        watch.cancel()

    [run] = wait_for(lambda: finished_runs(http, owner, job_id))
    assert run["output"]["chat_id"] == chat_id and run["output"]["status"] == "complete"
    messages = http.get(f"/api/chats/{chat_id}", headers=owner.bearer).json()["messages"]
    assert (messages[0]["role"], messages[0]["content"]) == ("user", "Quoi de neuf ?")
    assert messages[1]["role"] == "assistant" and messages[1]["content"] == run["output"]["reply"]
    # The user's message and the stored answer reached the conversation's watcher.
    assert roles == [chat_pb2.MESSAGE_ROLE_USER, chat_pb2.MESSAGE_ROLE_ASSISTANT]


def test_llm_prompt_starts_a_conversation_named_after_the_task(http: httpx.Client) -> None:
    owner = new_account(http)
    job_id = add_job(http, owner, name="Revue de presse", type="once", action="llm.prompt", params={"prompt": "Go"})[
        "id"
    ]

    [run] = wait_for(lambda: finished_runs(http, owner, job_id))

    chat = http.get(f"/api/chats/{run['output']['chat_id']}", headers=owner.bearer).json()
    assert chat["title"] == "Revue de presse" and len(chat["messages"]) == 2


def test_tool_call_runs_a_tool_the_owner_may_call(tools: EchoTools, http: httpx.Client) -> None:
    owner = new_account(http)
    listed = [action["name"] for action in http.get("/jobs/actions", headers=owner.bearer).json()["actions"]]
    assert "tool.call" in listed

    job_id = add_job(
        http, owner, type="once", action="tool.call", params={"tool": "echo", "arguments": {"text": "salut"}}
    )["id"]

    [run] = wait_for(lambda: finished_runs(http, owner, job_id))
    assert run["status"] == "success"
    assert run["output"] == {"tool": "echo", "echo": "salut", "caller": str(owner.user_id)}
    assert [step["name"] for step in run["steps"]] == ["call echo"]
    assert tools.calls[-1] == (str(owner.user_id), "echo", {"text": "salut"})


@pytest.mark.parametrize(
    "params, field",
    [
        ({"tool": "host.restart"}, "params.tool"),
        ({"tool": "nope"}, "params.tool"),
        ({"tool": "echo", "arguments": {}}, "params.arguments.text"),
        ({"tool": "bad name!"}, "params.tool"),
    ],
)
def test_tool_call_refuses_at_creation_what_the_tool_would_refuse(
    tools: EchoTools, http: httpx.Client, params: dict[str, Any], field: str
) -> None:
    owner = new_account(http)

    refused = http.post(
        "/jobs/add", json={"interval": {"hours": 1}, "action": "tool.call", "params": params}, headers=owner.bearer
    )

    assert refused.status_code == 422
    assert field in [detail["field"] for detail in refused.json()["error"]["details"]]


def test_an_administrators_tool_job_runs_their_tool(tools: EchoTools, http: httpx.Client) -> None:
    root = admin(http)
    created = http.post(
        "/system/tasks",
        json={"type": "once", "action": "tool.call", "params": {"tool": "host.restart"}},
        headers=root.bearer,
    )
    assert created.status_code == 201

    [run] = wait_for(lambda: finished_runs(http, root, created.json()["id"], "/system/tasks"))
    assert run["status"] == "success" and tools.calls[-1][1] == "host.restart"


def test_actions_a_plugin_contributes_are_listed_run_and_go_with_it(tasks_stack: LiveStack, http: httpx.Client) -> None:
    registry = tasks_stack.server.tasks.registry
    seen: list[tuple[dict[str, Any], int | None]] = []

    async def forecast(params: dict[str, Any], principal: Principal) -> dict[str, Any]:
        seen.append((params, principal.user_id))
        return {"city": params["city"], "sky": "clair"}

    registry.add_plugin_action(
        plugin="weather",
        name="weather.forecast",
        description="Today's forecast for a city.",
        params_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        run=forecast,
    )
    try:
        owner = new_account(http)
        offered = {a["name"]: a for a in http.get("/jobs/actions", headers=owner.bearer).json()["actions"]}
        assert offered["weather.forecast"]["source"] == "weather"
        assert (
            http.post(
                "/jobs/add", json={"interval": {"hours": 1}, "action": "weather.forecast"}, headers=owner.bearer
            ).status_code
            == 422
        )
        job_id = add_job(http, owner, interval={"hours": 1}, action="weather.forecast", params={"city": "Lyon"})["id"]
        http.post(f"/jobs/{job_id}/run-now", headers=owner.bearer)
        [run] = wait_for(lambda: finished_runs(http, owner, job_id))
        assert run["output"] == {"city": "Lyon", "sky": "clair"} and seen == [({"city": "Lyon"}, owner.user_id)]
    finally:
        registry.remove_source("weather")

    http.post(f"/jobs/{job_id}/run-now", headers=owner.bearer)
    failed = wait_for(lambda: (found := job(http, owner, job_id))["failure_count"] and found)
    assert failed["last_error"] == "The action 'weather.forecast' is no longer available"


@pytest.mark.slow
def test_backup_export_writes_archives_and_keeps_the_newest(tasks_stack: LiveStack, http: httpx.Client) -> None:
    root = admin(http)
    task_id = http.post(
        "/system/tasks",
        json={"interval": {"days": 1}, "action": "backup.export", "params": {"keep": 2, "directory": "nightly"}},
        headers=root.bearer,
    ).json()["id"]

    for count in (1, 2, 3):
        http.post(f"/system/tasks/{task_id}/run", headers=root.bearer)
        wait_for(lambda count=count: len(finished_runs(http, root, task_id, "/system/tasks")) == count, 120)  # type: ignore[misc]

    runs = finished_runs(http, root, task_id, "/system/tasks")
    assert {run["status"] for run in runs} == {"success"}
    folder = Path(tasks_stack.settings.data_dir) / "backups" / "nightly"
    archives = sorted(path.name for path in folder.glob("relais-backup-*.zip"))
    assert len(archives) == 2 and Path(runs[0]["output"]["path"]).name == archives[-1]
    assert runs[0]["output"]["bytes"] == (folder / archives[-1]).stat().st_size


@pytest.mark.slow
def test_rag_reindex_indexes_the_corpus(tasks_stack: LiveStack, http: httpx.Client) -> None:
    root = admin(http)
    corpus = tasks_stack.settings.corpus_path
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "routeur.txt").write_text("Pour réinitialiser le routeur, maintenez reset dix secondes.\n" * 5)

    task_id = http.post(
        "/system/tasks", json={"type": "once", "action": "rag.reindex", "params": {"full": True}}, headers=root.bearer
    ).json()["id"]

    [run] = wait_for(lambda: finished_runs(http, root, task_id, "/system/tasks"), 180)
    assert run["status"] == "success" and run["output"]["indexed"] >= 1 and run["output"]["chunks"] >= 1
    found = http.post("/rag/query", json={"query": "réinitialiser le routeur", "top_k": 1}, headers=root.bearer)
    assert found.json()["results"][0]["source"]["path"] == "routeur.txt"
