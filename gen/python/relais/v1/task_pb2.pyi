import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_TYPE_UNSPECIFIED: _ClassVar[TaskType]
    TASK_TYPE_INTERVAL: _ClassVar[TaskType]
    TASK_TYPE_CRON: _ClassVar[TaskType]
    TASK_TYPE_ONCE: _ClassVar[TaskType]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_SCHEDULED: _ClassVar[TaskStatus]
    TASK_STATUS_RUNNING: _ClassVar[TaskStatus]
    TASK_STATUS_PAUSED: _ClassVar[TaskStatus]
    TASK_STATUS_COMPLETED: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELLED: _ClassVar[TaskStatus]

class TaskRunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_RUN_STATUS_UNSPECIFIED: _ClassVar[TaskRunStatus]
    TASK_RUN_STATUS_QUEUED: _ClassVar[TaskRunStatus]
    TASK_RUN_STATUS_RUNNING: _ClassVar[TaskRunStatus]
    TASK_RUN_STATUS_SUCCESS: _ClassVar[TaskRunStatus]
    TASK_RUN_STATUS_FAILED: _ClassVar[TaskRunStatus]
    TASK_RUN_STATUS_CANCELLED: _ClassVar[TaskRunStatus]

class TaskRunTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_RUN_TRIGGER_UNSPECIFIED: _ClassVar[TaskRunTrigger]
    TASK_RUN_TRIGGER_SCHEDULE: _ClassVar[TaskRunTrigger]
    TASK_RUN_TRIGGER_MANUAL: _ClassVar[TaskRunTrigger]
    TASK_RUN_TRIGGER_CATCH_UP: _ClassVar[TaskRunTrigger]
TASK_TYPE_UNSPECIFIED: TaskType
TASK_TYPE_INTERVAL: TaskType
TASK_TYPE_CRON: TaskType
TASK_TYPE_ONCE: TaskType
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_SCHEDULED: TaskStatus
TASK_STATUS_RUNNING: TaskStatus
TASK_STATUS_PAUSED: TaskStatus
TASK_STATUS_COMPLETED: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_CANCELLED: TaskStatus
TASK_RUN_STATUS_UNSPECIFIED: TaskRunStatus
TASK_RUN_STATUS_QUEUED: TaskRunStatus
TASK_RUN_STATUS_RUNNING: TaskRunStatus
TASK_RUN_STATUS_SUCCESS: TaskRunStatus
TASK_RUN_STATUS_FAILED: TaskRunStatus
TASK_RUN_STATUS_CANCELLED: TaskRunStatus
TASK_RUN_TRIGGER_UNSPECIFIED: TaskRunTrigger
TASK_RUN_TRIGGER_SCHEDULE: TaskRunTrigger
TASK_RUN_TRIGGER_MANUAL: TaskRunTrigger
TASK_RUN_TRIGGER_CATCH_UP: TaskRunTrigger

class Interval(_message.Message):
    __slots__ = ("days", "hours", "minutes", "seconds")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    HOURS_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    days: int
    hours: int
    minutes: int
    seconds: int
    def __init__(self, days: _Optional[int] = ..., hours: _Optional[int] = ..., minutes: _Optional[int] = ..., seconds: _Optional[int] = ...) -> None: ...

class TaskRunStep(_message.Message):
    __slots__ = ("index", "name", "started_at", "finished_at", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    error: str
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class TaskRun(_message.Message):
    __slots__ = ("id", "status", "trigger", "planned_at", "started_at", "finished_at", "duration_seconds", "error", "output", "executor", "steps")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    PLANNED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: TaskRunStatus
    trigger: TaskRunTrigger
    planned_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    duration_seconds: float
    error: str
    output: _struct_pb2.Struct
    executor: str
    steps: _containers.RepeatedCompositeFieldContainer[TaskRunStep]
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[TaskRunStatus, str]] = ..., trigger: _Optional[_Union[TaskRunTrigger, str]] = ..., planned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_seconds: _Optional[float] = ..., error: _Optional[str] = ..., output: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., executor: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[TaskRunStep, _Mapping]]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("id", "name", "type", "status", "schedule", "interval", "cron", "timezone", "run_at", "enabled", "action", "params", "owner_id", "system", "last_run", "next_run", "success_count", "failure_count", "cancel_requested", "last_status", "last_error", "description", "created_at", "updated_at", "history", "running_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: TaskType
    status: TaskStatus
    schedule: str
    interval: Interval
    cron: str
    timezone: str
    run_at: _timestamp_pb2.Timestamp
    enabled: bool
    action: str
    params: _struct_pb2.Struct
    owner_id: int
    system: bool
    last_run: _timestamp_pb2.Timestamp
    next_run: _timestamp_pb2.Timestamp
    success_count: int
    failure_count: int
    cancel_requested: bool
    last_status: TaskRunStatus
    last_error: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    history: _containers.RepeatedCompositeFieldContainer[TaskRun]
    running_count: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[TaskType, str]] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., schedule: _Optional[str] = ..., interval: _Optional[_Union[Interval, _Mapping]] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., enabled: _Optional[bool] = ..., action: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., owner_id: _Optional[int] = ..., system: _Optional[bool] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., success_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., cancel_requested: _Optional[bool] = ..., last_status: _Optional[_Union[TaskRunStatus, str]] = ..., last_error: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., history: _Optional[_Iterable[_Union[TaskRun, _Mapping]]] = ..., running_count: _Optional[int] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("id", "name", "type", "interval", "schedule", "cron", "timezone", "run_at", "enabled", "action", "params", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: TaskType
    interval: Interval
    schedule: str
    cron: str
    timezone: str
    run_at: _timestamp_pb2.Timestamp
    enabled: bool
    action: str
    params: _struct_pb2.Struct
    description: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[TaskType, str]] = ..., interval: _Optional[_Union[Interval, _Mapping]] = ..., schedule: _Optional[str] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., enabled: _Optional[bool] = ..., action: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id", "name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class UpdateTaskRequest(_message.Message):
    __slots__ = ("id", "task_id", "name", "type", "interval", "schedule", "cron", "timezone", "run_at", "enabled", "params", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    RUN_AT_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    task_id: str
    name: str
    type: TaskType
    interval: Interval
    schedule: str
    cron: str
    timezone: str
    run_at: _timestamp_pb2.Timestamp
    enabled: bool
    params: _struct_pb2.Struct
    description: str
    def __init__(self, id: _Optional[str] = ..., task_id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[TaskType, str]] = ..., interval: _Optional[_Union[Interval, _Mapping]] = ..., schedule: _Optional[str] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., run_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., enabled: _Optional[bool] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class RunJobNowRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RunTaskRequest(_message.Message):
    __slots__ = ("task_id", "name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RunTaskResponse(_message.Message):
    __slots__ = ("id", "status", "started_at", "run_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: TaskStatus
    started_at: _timestamp_pb2.Timestamp
    run_id: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., run_id: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class PauseTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ResumeTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteTaskRequest(_message.Message):
    __slots__ = ("task_id", "name")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    name: str
    def __init__(self, task_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteTaskResponse(_message.Message):
    __slots__ = ("id", "deleted", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    deleted: bool
    message: str
    def __init__(self, id: _Optional[str] = ..., deleted: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("limit", "skip", "offset")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    limit: int
    skip: int
    offset: int
    def __init__(self, limit: _Optional[int] = ..., skip: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("limit", "skip", "offset", "owner_id")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    OWNER_ID_FIELD_NUMBER: _ClassVar[int]
    limit: int
    skip: int
    offset: int
    owner_id: int
    def __init__(self, limit: _Optional[int] = ..., skip: _Optional[int] = ..., offset: _Optional[int] = ..., owner_id: _Optional[int] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("total", "items", "has_more", "skip", "limit")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    total: int
    items: _containers.RepeatedCompositeFieldContainer[Task]
    has_more: bool
    skip: int
    limit: int
    def __init__(self, total: _Optional[int] = ..., items: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., has_more: _Optional[bool] = ..., skip: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTaskActionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskAction(_message.Message):
    __slots__ = ("name", "description", "params_schema", "permission", "source")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params_schema: _struct_pb2.Struct
    permission: str
    source: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., permission: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class ListTaskActionsResponse(_message.Message):
    __slots__ = ("total", "actions")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    total: int
    actions: _containers.RepeatedCompositeFieldContainer[TaskAction]
    def __init__(self, total: _Optional[int] = ..., actions: _Optional[_Iterable[_Union[TaskAction, _Mapping]]] = ...) -> None: ...
