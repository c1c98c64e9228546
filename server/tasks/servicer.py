"""JobService (the caller's own tasks) and TaskService (administrators' view) over gRPC:
convert, delegate, convert back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2
from relais.v1 import task_pb2, task_pb2_grpc

from server.convert import timestamp
from server.errors import FieldViolation, ValidationFailed
from server.interceptors.call import current_principal
from server.paging import Page
from server.tasks.actions import Action
from server.tasks.service import Changes, Draft, Interval, RunStarted, TaskService, TriggerDraft
from server.tasks.triggers import split_interval
from server.tasks.views import RunView, TaskView

TYPES = {
    task_pb2.TASK_TYPE_UNSPECIFIED: "",
    task_pb2.TASK_TYPE_INTERVAL: "interval",
    task_pb2.TASK_TYPE_CRON: "cron",
    task_pb2.TASK_TYPE_ONCE: "once",
}
TYPE_ENUMS = {word: number for number, word in TYPES.items() if word}
STATUS_ENUMS = {
    "scheduled": task_pb2.TASK_STATUS_SCHEDULED,
    "running": task_pb2.TASK_STATUS_RUNNING,
    "paused": task_pb2.TASK_STATUS_PAUSED,
    "completed": task_pb2.TASK_STATUS_COMPLETED,
    "failed": task_pb2.TASK_STATUS_FAILED,
    "cancelled": task_pb2.TASK_STATUS_CANCELLED,
}
RUN_STATUS_ENUMS = {
    "queued": task_pb2.TASK_RUN_STATUS_QUEUED,
    "running": task_pb2.TASK_RUN_STATUS_RUNNING,
    "success": task_pb2.TASK_RUN_STATUS_SUCCESS,
    "failed": task_pb2.TASK_RUN_STATUS_FAILED,
    "cancelled": task_pb2.TASK_RUN_STATUS_CANCELLED,
}
TRIGGER_ENUMS = {
    "schedule": task_pb2.TASK_RUN_TRIGGER_SCHEDULE,
    "manual": task_pb2.TASK_RUN_TRIGGER_MANUAL,
    "catch_up": task_pb2.TASK_RUN_TRIGGER_CATCH_UP,
}


# ---------------------------------------------------------------------- messages → domain


def _json(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as JSON values, whole numbers back as integers (Struct numbers are doubles)."""
    return _integers(json_format.MessageToDict(struct))  # type: ignore[no-any-return]


def _integers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _integers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integers(item) for item in value]
    return value


def _moment(request: Any, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    try:
        moment: datetime = getattr(request, name).ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):  # a Timestamp beyond what a datetime holds (years 1 to 9999)
        violation = FieldViolation(field=name, message="must be a date between years 1 and 9999")
        raise ValidationFailed([violation]) from None
    return moment


def _type(number: int) -> str:
    if number not in TYPES:
        raise ValidationFailed([FieldViolation(field="type", message="must be interval, cron or once")])
    return TYPES[number]


def _interval(request: Any) -> Interval | None:
    if not request.HasField("interval"):
        return None
    given = request.interval
    return Interval(days=given.days, hours=given.hours, minutes=given.minutes, seconds=given.seconds)


def _trigger(request: Any, *, cron: str, timezone: str) -> TriggerDraft:
    return TriggerDraft(
        kind=_type(request.type),
        interval=_interval(request),
        cron=cron,
        timezone=timezone,
        run_at=_moment(request, "run_at"),
    )


def draft(request: task_pb2.CreateTaskRequest) -> Draft:
    return Draft(
        id=request.id.strip(),
        name=request.name,
        description=request.description,
        enabled=request.enabled if request.HasField("enabled") else True,
        action=request.action,
        params=_json(request.params) if request.HasField("params") else {},
        trigger=_trigger(request, cron=request.schedule or request.cron, timezone=request.timezone),
    )


def changes(request: task_pb2.UpdateTaskRequest) -> Changes:
    cron = request.schedule if request.HasField("schedule") else request.cron if request.HasField("cron") else ""
    new_trigger = (
        request.type != task_pb2.TASK_TYPE_UNSPECIFIED
        or request.HasField("interval")
        or bool(cron)
        or request.HasField("run_at")
        or request.HasField("timezone")
    )
    return Changes(
        trigger=_trigger(request, cron=cron, timezone=request.timezone) if new_trigger else None,
        params=_json(request.params) if request.HasField("params") else None,
        name=request.name if request.HasField("name") else None,
        description=request.description if request.HasField("description") else None,
        enabled=request.enabled if request.HasField("enabled") else None,
    )


# ---------------------------------------------------------------------- domain → messages


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(value)
    return struct


def task_message(view: TaskView) -> task_pb2.Task:
    state = view.state
    message = task_pb2.Task(
        id=view.id,
        name=view.name,
        description=view.description,
        type=TYPE_ENUMS.get(view.trigger.kind, task_pb2.TASK_TYPE_UNSPECIFIED),
        status=STATUS_ENUMS[view.status],
        schedule=view.trigger.describe(),
        cron=view.cron or "",
        timezone=view.timezone,
        run_at=timestamp(view.trigger.planned_once) if view.trigger.kind == "once" else None,
        enabled=view.enabled,
        action=view.action,
        params=_struct(view.params),
        system=view.system,
        last_run=timestamp(state.last_run_at),
        next_run=timestamp(view.next_run),
        success_count=state.success_count,
        failure_count=state.failure_count,
        cancel_requested=state.cancel_requested,
        last_status=RUN_STATUS_ENUMS.get(state.last_status or "", task_pb2.TASK_RUN_STATUS_UNSPECIFIED),
        last_error=state.last_error,
        created_at=timestamp(view.created_at),
        updated_at=timestamp(view.updated_at),
        history=[run_message(run) for run in view.history],
        running_count=view.running_count,
    )
    if view.owner_id is not None:
        message.owner_id = view.owner_id
    if view.interval_seconds:
        days, hours, minutes, seconds = split_interval(view.interval_seconds)
        message.interval.CopyFrom(task_pb2.Interval(days=days, hours=hours, minutes=minutes, seconds=seconds))
    return message


def run_message(run: RunView) -> task_pb2.TaskRun:
    return task_pb2.TaskRun(
        id=run.id,
        status=RUN_STATUS_ENUMS[run.status],
        trigger=TRIGGER_ENUMS.get(run.trigger, task_pb2.TASK_RUN_TRIGGER_UNSPECIFIED),
        planned_at=timestamp(run.planned_at),
        started_at=timestamp(run.started_at),
        finished_at=timestamp(run.finished_at),
        duration_seconds=round(run.duration_seconds, 6),
        error=run.error,
        output=_struct(run.output),
        executor=run.executor,
        steps=[
            task_pb2.TaskRunStep(
                index=step.index,
                name=step.name,
                started_at=timestamp(step.started_at),
                finished_at=timestamp(step.finished_at),
                error=step.error,
            )
            for step in run.steps
        ],
    )


def page_message(page: Page[TaskView]) -> task_pb2.ListTasksResponse:
    return task_pb2.ListTasksResponse(
        total=page.total,
        items=[task_message(view) for view in page.items],
        has_more=page.has_more,
        skip=page.skip,
        limit=page.limit,
    )


def started_message(started: RunStarted) -> task_pb2.RunTaskResponse:
    return task_pb2.RunTaskResponse(
        id=started.task_id,
        status=task_pb2.TASK_STATUS_RUNNING,
        started_at=timestamp(started.started_at),
        run_id=started.run_id,
    )


def action_message(action: Action) -> task_pb2.TaskAction:
    return task_pb2.TaskAction(
        name=action.name,
        description=action.description,
        params_schema=_struct(action.params_schema),
        permission=action.permission,
        source=action.source,
    )


def _named(request: Any) -> str:
    """The task a request names: `task_id` (/system/tasks) or `name` (/manager/tasks)."""
    return str(getattr(request, "task_id", "") or getattr(request, "name", "") or getattr(request, "id", "")).strip()


# ---------------------------------------------------------------------- services


class JobServicer(task_pb2_grpc.JobServiceServicer):
    def __init__(self, tasks: TaskService) -> None:
        self._tasks = tasks

    async def ListJobs(self, request: task_pb2.ListJobsRequest, context: Any) -> task_pb2.ListTasksResponse:
        page = await self._tasks.list_tasks(
            current_principal(), skip=request.skip, offset=request.offset, limit=request.limit, admin=False
        )
        return page_message(page)

    async def AddJob(self, request: task_pb2.CreateTaskRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.create(current_principal(), draft(request)))

    async def GetJob(self, request: task_pb2.GetJobRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.get(current_principal(), request.id, admin=False))

    async def RunJobNow(self, request: task_pb2.RunJobNowRequest, context: Any) -> task_pb2.RunTaskResponse:
        return started_message(await self._tasks.run_now(current_principal(), request.id, admin=False))

    async def UpdateJob(self, request: task_pb2.UpdateTaskRequest, context: Any) -> task_pb2.Task:
        view = await self._tasks.update(current_principal(), request.id, changes(request), admin=False)
        return task_message(view)

    async def CancelJob(self, request: task_pb2.CancelJobRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.cancel(current_principal(), request.id, admin=False))

    async def DeleteJob(self, request: task_pb2.DeleteJobRequest, context: Any) -> task_pb2.DeleteTaskResponse:
        await self._tasks.delete(current_principal(), request.id, admin=False)
        return task_pb2.DeleteTaskResponse(id=request.id, deleted=True, message="Task deleted")


class TaskServicer(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, tasks: TaskService) -> None:
        self._tasks = tasks

    async def ListTasks(self, request: task_pb2.ListTasksRequest, context: Any) -> task_pb2.ListTasksResponse:
        owner = request.owner_id if request.HasField("owner_id") else None
        page = await self._tasks.list_tasks(
            current_principal(),
            skip=request.skip,
            offset=request.offset,
            limit=request.limit,
            admin=True,
            owner_id=owner,
        )
        return page_message(page)

    async def GetTask(self, request: task_pb2.GetTaskRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.get(current_principal(), _named(request), admin=True))

    async def CreateTask(self, request: task_pb2.CreateTaskRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.create(current_principal(), draft(request)))

    async def UpdateTask(self, request: task_pb2.UpdateTaskRequest, context: Any) -> task_pb2.Task:
        view = await self._tasks.update(current_principal(), _named(request), changes(request), admin=True)
        return task_message(view)

    async def RunTask(self, request: task_pb2.RunTaskRequest, context: Any) -> task_pb2.RunTaskResponse:
        return started_message(await self._tasks.run_now(current_principal(), _named(request), admin=True))

    async def PauseTask(self, request: task_pb2.PauseTaskRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.set_enabled(current_principal(), request.task_id, False, admin=True))

    async def ResumeTask(self, request: task_pb2.ResumeTaskRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.set_enabled(current_principal(), request.task_id, True, admin=True))

    async def CancelTask(self, request: task_pb2.CancelTaskRequest, context: Any) -> task_pb2.Task:
        return task_message(await self._tasks.cancel(current_principal(), request.task_id, admin=True))

    async def DeleteTask(self, request: task_pb2.DeleteTaskRequest, context: Any) -> task_pb2.DeleteTaskResponse:
        task_id = _named(request)
        await self._tasks.delete(current_principal(), task_id, admin=True)
        return task_pb2.DeleteTaskResponse(id=task_id, deleted=True, message="Task deleted")

    async def ListTaskActions(
        self, request: task_pb2.ListTaskActionsRequest, context: Any
    ) -> task_pb2.ListTaskActionsResponse:
        actions = self._tasks.actions(current_principal())
        return task_pb2.ListTaskActionsResponse(total=len(actions), actions=[action_message(a) for a in actions])
