"""Helpers for the tools tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.identity.helpers import Account


def call(http: httpx.Client, account: Account, tool: str, /, **arguments: Any) -> httpx.Response:
    return http.post(f"/tools/{tool}/call", headers=account.bearer, json={"arguments": arguments})


def result(http: httpx.Client, account: Account, tool: str, /, **arguments: Any) -> dict[str, Any]:
    response = call(http, account, tool, **arguments)
    assert response.status_code == 200, response.text
    return dict(response.json())


def tool_names(http: httpx.Client, account: Account) -> list[str]:
    response = http.get("/tools", headers=account.bearer)
    assert response.status_code == 200, response.text
    return [tool["name"] for tool in response.json()["tools"]]


def wait_for(condition: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def store_message(stack: Any, chat_id: int, content: str) -> None:
    """A user message written straight into the stack's database (no model runs)."""
    from server.chats.models import Message

    async def insert() -> None:
        async with stack.server.database.sessions() as session, session.begin():
            session.add(Message(chat_id=chat_id, role="user", content=content, status="complete"))

    stack.run(insert())
