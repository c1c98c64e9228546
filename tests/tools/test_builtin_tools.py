"""Every built-in tool on good and bad input, called over HTTP as a plain user (or an
administrator for theirs)."""

from __future__ import annotations

import httpx
import pytest

from tests.identity.helpers import Account
from tests.support.live import LiveStack
from tests.tools.support import call, result, store_message


def test_tools_are_listed_as_the_orchestrator_documents(http: httpx.Client, user: Account) -> None:
    body = http.get("/tools", headers=user.bearer).json()
    assert body["count"] == len(body["tools"]) >= 10
    calculator = next(tool for tool in body["tools"] if tool["name"] == "calculator")
    assert calculator["category"] == "math"
    assert calculator["parameters"]["properties"]["expression"]["type"] == "string"
    assert calculator["parameters"]["required"] == ["expression"]
    assert calculator["source"] == "builtin"
    assert calculator["read_only"] is True and calculator["permission"] == "tools:calculator"
    assert http.get("/tools/calculator", headers=user.bearer).json() == calculator
    assert http.get("/api/tools/calculator", headers=user.bearer).json() == calculator


def test_unknown_tool_is_404(http: httpx.Client, user: Account) -> None:
    assert http.get("/tools/no_such_tool", headers=user.bearer).status_code == 404
    assert call(http, user, "no_such_tool").status_code == 404


def test_tools_need_credentials(http: httpx.Client) -> None:
    assert http.get("/tools").status_code == 401


@pytest.mark.parametrize(
    ("expression", "answer"),
    [
        ("12345 * 6789", "83810205"),
        ("12345 x 6789", "83810205"),
        ("2 ** 100", str(2**100)),
        ("(1 + 2) * 3 - 4 / 8", "8.5"),
        ("sqrt(16) + 2^3", "12"),
        ("1,234,567 + 1", "1234568"),
        ("-7 // 2 + 7 % 3", "-3"),
    ],
)
def test_calculator_computes_exactly(http: httpx.Client, user: Account, expression: str, answer: str) -> None:
    body = result(http, user, "calculator", expression=expression)
    assert body["is_error"] is False
    assert body["content"].endswith(f"= {answer}")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('id')", "Not allowed"),
        ("1 / 0", "Division by zero"),
        ("2 ** 99999999", "Exponents above"),
        ("9 ** 9 ** 9", "Exponents above"),
        ("open('x')", "Not allowed"),
        ("1 +", "Cannot parse"),
        ("[x for x in range(9)]", "Not allowed"),
        ("'a' * 3", "Not allowed"),
        ("factorial(100000)", "limited"),
    ],
)
def test_calculator_refuses_what_is_not_arithmetic(
    http: httpx.Client, user: Account, expression: str, reason: str
) -> None:
    body = result(http, user, "calculator", expression=expression)
    assert body["is_error"] is True
    assert reason in body["content"]


def test_calculator_arguments_are_checked_against_its_schema(http: httpx.Client, user: Account) -> None:
    response = call(http, user, "calculator", formula="1+1")
    assert response.status_code == 422
    fields = {detail["field"] for detail in response.json()["error"]["details"]}
    assert "arguments" in fields


def test_current_time_in_a_zone(http: httpx.Client, user: Account) -> None:
    body = result(http, user, "current_time", timezone="America/Montreal")["structured_content"]
    assert body["timezone"] == "America/Montreal"
    assert body["utc_offset"] in ("-0500", "-0400")
    assert result(http, user, "current_time")["structured_content"]["utc_offset"] == "+0000"


def test_convert_time_between_zones(http: httpx.Client, user: Account) -> None:
    body = result(
        http, user, "convert_time", time="2025-06-01T14:30", from_timezone="Europe/Paris", to_timezone="Asia/Tokyo"
    )["structured_content"]
    assert body["to"]["iso"] == "2025-06-01T21:30:00+09:00"


def test_time_tools_refuse_unknown_zones_and_dates(http: httpx.Client, user: Account) -> None:
    unknown = result(http, user, "current_time", timezone="Mars/Olympus")
    assert unknown["is_error"] and "Unknown time zone" in unknown["content"]
    bad_date = result(http, user, "convert_time", time="yesterday", to_timezone="UTC")
    assert bad_date["is_error"] and "ISO 8601" in bad_date["content"]


def test_convert_units(http: httpx.Client, user: Account) -> None:
    km = result(http, user, "convert_units", value=10, from_unit="km", to_unit="mile")["structured_content"]
    assert km["result"] == pytest.approx(6.21371, rel=1e-5)
    boiling = result(http, user, "convert_units", value=100, from_unit="degC", to_unit="degF")["structured_content"]
    assert boiling["result"] == pytest.approx(212)


def test_convert_units_refuses_nonsense(http: httpx.Client, user: Account) -> None:
    mismatch = result(http, user, "convert_units", value=1, from_unit="kg", to_unit="meter")
    assert mismatch["is_error"] and "different things" in mismatch["content"]
    unknown = result(http, user, "convert_units", value=1, from_unit="florps", to_unit="meter")
    assert unknown["is_error"] and "Unknown unit" in unknown["content"]
    assert call(http, user, "convert_units", value="ten", from_unit="km", to_unit="m").status_code == 422


def test_list_models(http: httpx.Client, user: Account) -> None:
    body = result(http, user, "list_models")["structured_content"]
    assert body["count"] >= 1
    assert {"key", "backend", "context_window", "tool_calls"} <= set(body["models"][0])
    assert body["models"][0]["tool_calls"] == "grammar"


def test_task_status(http: httpx.Client, user: Account, root: Account) -> None:
    # The housekeeping tasks are the system's: an administrator sees them, a plain user only their own.
    system = result(http, root, "task_status")["structured_content"]
    assert "retrieval-cleanup" in {task["id"] for task in system["tasks"]}
    assert result(http, user, "task_status")["structured_content"]["tasks"] == []
    one = result(http, root, "task_status", name="disk-usage")["structured_content"]
    assert [task["id"] for task in one["tasks"]] == ["disk-usage"]
    missing = result(http, user, "task_status", name="nope")
    assert missing["is_error"] and "No scheduled task" in missing["content"]


def test_conversation_search_finds_only_the_callers_messages(
    http: httpx.Client, tools_stack: LiveStack, user: Account, root: Account
) -> None:
    chat = http.post("/api/chats", headers=user.bearer, json={"title": "Voyage"}).json()
    other = http.post("/api/chats", headers=root.bearer, json={"title": "Secret"}).json()
    store_message(tools_stack, chat["id"], "We leave for Lisbon-zq7 on Friday")
    store_message(tools_stack, other["id"], "Admin note about Lisbon-zq7")
    body = result(http, user, "search_conversations", query="lisbon-ZQ7")["structured_content"]
    assert body["count"] == 1
    assert body["results"][0]["conversation_id"] == chat["id"]
    assert "Lisbon-zq7" in body["results"][0]["excerpt"]
    empty = call(http, user, "search_conversations", query="")
    assert empty.status_code == 422


@pytest.mark.slow
def test_memory_store_then_search(http: httpx.Client, user: Account, root: Account) -> None:
    stored = result(http, user, "memory_store", content="The JSR project uses React and TailwindCSS")
    assert stored["is_error"] is False, stored
    assert stored["structured_content"]["stored"] is True
    found = result(http, user, "memory_search", query="JSR project stack")["structured_content"]
    assert found["results"][0]["content"] == "The JSR project uses React and TailwindCSS"
    # Another user's search never sees it.
    theirs = result(http, root, "memory_search", query="JSR project stack")["structured_content"]
    assert all("JSR" not in hit["content"] for hit in theirs["results"])
    assert call(http, user, "memory_store", content="").status_code == 422


@pytest.mark.slow
def test_search_documents_cites_the_callers_documents(http: httpx.Client, user: Account, root: Account) -> None:
    text = b"The harbour of Quillbridge opens at dawn. Boats pay a toll of three silver coins."
    uploaded = http.post(
        "/api/documents/upload", headers=user.bearer, files={"file": ("quillbridge.txt", text, "text/plain")}
    )
    assert uploaded.status_code == 201, uploaded.text
    body = result(http, user, "search_documents", query="toll at Quillbridge harbour", scope="documents")
    found = body["structured_content"]["results"]
    assert found and found[0]["ref"] == "[1]" and "three silver coins" in found[0]["text"]
    source = found[0]["source"]
    assert source["path"] == "quillbridge.txt" and source["document_id"] == uploaded.json()["id"]
    assert found[0]["text"] in text.decode() and source["end"] > source["start"] >= 0
    others = result(http, root, "search_documents", query="toll at Quillbridge harbour", scope="documents")
    assert others["structured_content"]["count"] == 0
    assert call(http, user, "search_documents", query="x", scope="everything").status_code == 422
