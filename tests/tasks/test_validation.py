"""Bad input: 422 naming the field, and nothing stored; the same over gRPC (INVALID_ARGUMENT
with the fields in BadRequest)."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from relais.v1 import task_pb2, task_pb2_grpc

from tests.identity.helpers import Account, admin, new_account
from tests.support.live import LiveStack

PROMPT = {"action": "llm.prompt", "params": {"prompt": "Bonjour"}}
INVALID = [
    ({"schedule": "61 * * * *", **PROMPT}, "schedule"),
    ({"schedule": "* * * *", **PROMPT}, "schedule"),
    ({"cron": "0 0 31 2 *", **PROMPT}, "schedule"),
    ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus", **PROMPT}, "timezone"),
    ({"interval": {"seconds": 0}, **PROMPT}, "interval"),
    ({"type": "interval", **PROMPT}, "interval"),
    ({"interval": {"minutes": -5}, **PROMPT}, "interval.minutes"),
    ({"interval": {"days": 400}, **PROMPT}, "interval"),
    ({"type": "once", "run_at": "2020-01-01T00:00:00Z", **PROMPT}, "run_at"),
    ({**PROMPT}, "type"),
    ({"interval": {"hours": 1}, "action": "rag.explode", "params": {}}, "action"),
    ({"interval": {"hours": 1}, "params": {}}, "action"),
    ({"interval": {"hours": 1}, "action": "system.disk_usage", "params": {}}, "action"),
    ({"interval": {"hours": 1}, "action": "llm.prompt", "params": {}}, "params.prompt"),
    ({"interval": {"hours": 1}, "action": "llm.prompt", "params": {"prompt": "x", "colour": "red"}}, "params"),
    ({"interval": {"hours": 1}, "action": "llm.prompt", "params": {"prompt": 42}}, "params.prompt"),
    (
        {"interval": {"hours": 1}, "action": "llm.prompt", "params": {"prompt": "x", "chat_id": 999999}},
        "params.chat_id",
    ),
    ({"interval": {"hours": 1}, "action": "llm.prompt", "params": {"prompt": "x", "model": "gpt-9"}}, "params.model"),
    ({"id": "Not An Id!", "interval": {"hours": 1}, **PROMPT}, "id"),
    ({"name": "n" * 201, "interval": {"hours": 1}, **PROMPT}, "name"),
]


@pytest.fixture(scope="module")
def refused_user(tasks_stack: LiveStack) -> Account:
    """One account for every refused creation (signing up costs a password hash): it never owns a job."""
    with httpx.Client(base_url=tasks_stack.base_url, timeout=30) as client:
        return new_account(client)


@pytest.mark.parametrize("body, field", INVALID, ids=[f"{field}:{i}" for i, (_, field) in enumerate(INVALID)])
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    http: httpx.Client, refused_user: Account, body: dict[str, Any], field: str
) -> None:
    user = refused_user

    response = http.post("/jobs/add", json=body, headers=user.bearer)

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "VALIDATION_ERROR"
    assert field in [detail["field"] for detail in error["error"]["details"]], error
    assert http.get("/jobs", headers=user.bearer).json()["total"] == 0


def test_system_tasks_refuse_the_same_way(http: httpx.Client) -> None:
    root = admin(http)
    before = http.get("/system/tasks", headers=root.bearer).json()["total"]
    bad = {"id": "bad", "type": "interval", "interval": {"hours": 0}, "action": "backup.export", "params": {"keep": 0}}

    response = http.post("/system/tasks", json=bad, headers=root.bearer)

    assert response.status_code == 422
    assert {d["field"] for d in response.json()["error"]["details"]} == {"interval", "params.keep"}
    assert http.get("/system/tasks", headers=root.bearer).json()["total"] == before
    assert http.get("/system/tasks/bad", headers=root.bearer).status_code == 404


def test_an_update_is_checked_like_a_creation_and_changes_nothing_when_refused(http: httpx.Client) -> None:
    user = new_account(http)
    job_id = http.post("/jobs/add", json={"interval": {"hours": 1}, **PROMPT}, headers=user.bearer).json()["id"]

    refused = http.post(
        f"/jobs/{job_id}/update", json={"schedule": "bogus", "params": {"prompt": ""}}, headers=user.bearer
    )

    assert refused.status_code == 422
    assert {d["field"] for d in refused.json()["error"]["details"]} == {"schedule", "params.prompt"}
    kept = http.get(f"/jobs/{job_id}", headers=user.bearer).json()
    assert (kept["schedule"], kept["params"]) == ("every 1h", {"prompt": "Bonjour"})


def test_grpc_callers_get_the_fields_in_bad_request(tasks_stack: LiveStack, http: httpx.Client) -> None:
    user = new_account(http)
    metadata = [("authorization", f"Bearer {user.tokens['access_token']}")]
    with grpc.insecure_channel(tasks_stack.grpc_target) as channel:
        stub = task_pb2_grpc.JobServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.AddJob(task_pb2.CreateTaskRequest(schedule="99 * * * *", action="nope"), metadata=metadata, timeout=10)
        listed = stub.ListJobs(task_pb2.ListJobsRequest(), metadata=metadata, timeout=10)

    status = rpc_status.from_call(raised.value)
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    next(detail for detail in status.details if detail.Is(bad.DESCRIPTOR)).Unpack(bad)
    assert {violation.field for violation in bad.field_violations} == {"schedule", "action"}
    assert listed.total == 0
