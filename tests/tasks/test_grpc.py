"""The same operations over gRPC: JobService, TaskService and SystemService.GetManagerHealth,
with the typed messages the bridge transcodes."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from relais.v1 import system_pb2, system_pb2_grpc, task_pb2, task_pb2_grpc

from tests.identity.helpers import Account, admin, new_account
from tests.support.live import LiveStack
from tests.tasks.support import SYSTEM_TASKS, wait_for


@pytest.fixture
def channel(tasks_stack: LiveStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(tasks_stack.grpc_target) as opened:
        yield opened


def auth(account: Account) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {account.tokens['access_token']}")]


def params(**values: object) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def test_job_service_end_to_end(channel: grpc.Channel, http: httpx.Client) -> None:
    owner = auth(new_account(http))
    jobs = task_pb2_grpc.JobServiceStub(channel)

    added = jobs.AddJob(
        task_pb2.CreateTaskRequest(
            name="Bonjour", interval=task_pb2.Interval(minutes=45), action="llm.prompt", params=params(prompt="Bonjour")
        ),
        metadata=owner,
    )
    assert (added.type, added.status, added.schedule) == (
        task_pb2.TASK_TYPE_INTERVAL,
        task_pb2.TASK_STATUS_SCHEDULED,
        "every 45m",
    )
    assert [job.id for job in jobs.ListJobs(task_pb2.ListJobsRequest(), metadata=owner).items] == [added.id]

    started = jobs.RunJobNow(task_pb2.RunJobNowRequest(id=added.id), metadata=owner)
    assert started.status == task_pb2.TASK_STATUS_RUNNING and started.run_id
    done = wait_for(
        lambda: [
            run
            for run in jobs.GetJob(task_pb2.GetJobRequest(id=added.id), metadata=owner).history
            if run.status == task_pb2.TASK_RUN_STATUS_SUCCESS
        ]
    )
    assert done[0].trigger == task_pb2.TASK_RUN_TRIGGER_MANUAL and done[0].output["chat_id"] > 0
    assert [step.name for step in done[0].steps] == ["conversation", "reply"]

    changed = jobs.UpdateJob(
        task_pb2.UpdateTaskRequest(id=added.id, cron="0 7 * * *", timezone="Asia/Tokyo", enabled=False), metadata=owner
    )
    assert (changed.type, changed.status, changed.schedule) == (
        task_pb2.TASK_TYPE_CRON,
        task_pb2.TASK_STATUS_PAUSED,
        "0 7 * * * (Asia/Tokyo)",
    )
    with pytest.raises(grpc.RpcError) as nothing:
        jobs.CancelJob(task_pb2.CancelJobRequest(id=added.id), metadata=owner)
    assert nothing.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    assert jobs.DeleteJob(task_pb2.DeleteJobRequest(id=added.id), metadata=owner).deleted
    with pytest.raises(grpc.RpcError) as gone:
        jobs.GetJob(task_pb2.GetJobRequest(id=added.id), metadata=owner)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_task_service_end_to_end(channel: grpc.Channel, http: httpx.Client) -> None:
    root = auth(admin(http))
    tasks = task_pb2_grpc.TaskServiceStub(channel)

    created = tasks.CreateTask(
        task_pb2.CreateTaskRequest(
            id="grpc-nettoyage", type=task_pb2.TASK_TYPE_CRON, schedule="15 3 * * *", action="rag.reindex"
        ),
        metadata=root,
    )
    assert created.id == "grpc-nettoyage" and created.owner_id > 0 and not created.system
    listed = tasks.ListTasks(task_pb2.ListTasksRequest(limit=100), metadata=root)
    assert "grpc-nettoyage" in [task.id for task in listed.items] and listed.total >= 3

    ran = tasks.RunTask(task_pb2.RunTaskRequest(name="grpc-nettoyage"), metadata=root)
    assert ran.id == "grpc-nettoyage" and ran.status == task_pb2.TASK_STATUS_RUNNING
    wait_for(lambda: tasks.GetTask(task_pb2.GetTaskRequest(name="grpc-nettoyage"), metadata=root).success_count == 1)

    paused = tasks.PauseTask(task_pb2.PauseTaskRequest(task_id="grpc-nettoyage"), metadata=root)
    resumed = tasks.ResumeTask(task_pb2.ResumeTaskRequest(task_id="grpc-nettoyage"), metadata=root)
    assert (paused.status, resumed.status) == (task_pb2.TASK_STATUS_PAUSED, task_pb2.TASK_STATUS_SCHEDULED)
    changed = tasks.UpdateTask(
        task_pb2.UpdateTaskRequest(task_id="grpc-nettoyage", params=params(full=False)), metadata=root
    )
    assert dict(changed.params) == {"full": False}
    with pytest.raises(grpc.RpcError) as idle:
        tasks.CancelTask(task_pb2.CancelTaskRequest(task_id="grpc-nettoyage"), metadata=root)
    assert idle.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    actions = tasks.ListTaskActions(task_pb2.ListTaskActionsRequest(), metadata=root)
    assert {"rag.reindex", "backup.export", "llm.prompt"} <= {action.name for action in actions.actions}
    assert tasks.DeleteTask(task_pb2.DeleteTaskRequest(name="grpc-nettoyage"), metadata=root).deleted

    user = auth(new_account(http))
    with pytest.raises(grpc.RpcError) as refused:
        tasks.ListTasks(task_pb2.ListTasksRequest(), metadata=user)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_manager_health_over_grpc(channel: grpc.Channel, http: httpx.Client) -> None:
    reply = system_pb2_grpc.SystemServiceStub(channel).GetManagerHealth(
        system_pb2.GetManagerHealthRequest(), metadata=auth(new_account(http))
    )

    assert reply.status == system_pb2.HEALTH_STATUS_HEALTHY and reply.running and reply.engine == "dbos"
    assert reply.executors_alive == 1 and reply.executor_id in {executor.id for executor in reply.executors}
    assert {task.name for task in reply.tasks} == SYSTEM_TASKS
