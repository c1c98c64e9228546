from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from relais.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConflictPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONFLICT_POLICY_UNSPECIFIED: _ClassVar[ConflictPolicy]
    CONFLICT_POLICY_KEEP: _ClassVar[ConflictPolicy]
    CONFLICT_POLICY_REPLACE: _ClassVar[ConflictPolicy]
CONFLICT_POLICY_UNSPECIFIED: ConflictPolicy
CONFLICT_POLICY_KEEP: ConflictPolicy
CONFLICT_POLICY_REPLACE: ConflictPolicy

class ExportBackupRequest(_message.Message):
    __slots__ = ("without_logs",)
    WITHOUT_LOGS_FIELD_NUMBER: _ClassVar[int]
    without_logs: bool
    def __init__(self, without_logs: _Optional[bool] = ...) -> None: ...

class ImportBackupRequest(_message.Message):
    __slots__ = ("file", "dry_run", "conflict_policy")
    FILE_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_POLICY_FIELD_NUMBER: _ClassVar[int]
    file: _options_pb2.UploadedFile
    dry_run: bool
    conflict_policy: ConflictPolicy
    def __init__(self, file: _Optional[_Union[_options_pb2.UploadedFile, _Mapping]] = ..., dry_run: _Optional[bool] = ..., conflict_policy: _Optional[_Union[ConflictPolicy, str]] = ...) -> None: ...

class TablePlan(_message.Message):
    __slots__ = ("table", "insert", "update", "skip", "conflicts")
    TABLE_FIELD_NUMBER: _ClassVar[int]
    INSERT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    table: str
    insert: int
    update: int
    skip: int
    conflicts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, table: _Optional[str] = ..., insert: _Optional[int] = ..., update: _Optional[int] = ..., skip: _Optional[int] = ..., conflicts: _Optional[_Iterable[str]] = ...) -> None: ...

class SettingDifference(_message.Message):
    __slots__ = ("name", "archived", "current")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    archived: str
    current: str
    def __init__(self, name: _Optional[str] = ..., archived: _Optional[str] = ..., current: _Optional[str] = ...) -> None: ...

class ImportPlan(_message.Message):
    __slots__ = ("archive_revision", "current_revision", "migrated", "archive_dialect", "conflict_policy", "tables", "vectors_restore", "vectors_reembed", "files_write", "files_bytes", "settings", "safety_export")
    ARCHIVE_REVISION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_REVISION_FIELD_NUMBER: _ClassVar[int]
    MIGRATED_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_DIALECT_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_POLICY_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    VECTORS_RESTORE_FIELD_NUMBER: _ClassVar[int]
    VECTORS_REEMBED_FIELD_NUMBER: _ClassVar[int]
    FILES_WRITE_FIELD_NUMBER: _ClassVar[int]
    FILES_BYTES_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SAFETY_EXPORT_FIELD_NUMBER: _ClassVar[int]
    archive_revision: str
    current_revision: str
    migrated: bool
    archive_dialect: str
    conflict_policy: ConflictPolicy
    tables: _containers.RepeatedCompositeFieldContainer[TablePlan]
    vectors_restore: int
    vectors_reembed: int
    files_write: int
    files_bytes: int
    settings: _containers.RepeatedCompositeFieldContainer[SettingDifference]
    safety_export: str
    def __init__(self, archive_revision: _Optional[str] = ..., current_revision: _Optional[str] = ..., migrated: _Optional[bool] = ..., archive_dialect: _Optional[str] = ..., conflict_policy: _Optional[_Union[ConflictPolicy, str]] = ..., tables: _Optional[_Iterable[_Union[TablePlan, _Mapping]]] = ..., vectors_restore: _Optional[int] = ..., vectors_reembed: _Optional[int] = ..., files_write: _Optional[int] = ..., files_bytes: _Optional[int] = ..., settings: _Optional[_Iterable[_Union[SettingDifference, _Mapping]]] = ..., safety_export: _Optional[str] = ...) -> None: ...

class ImportBackupResponse(_message.Message):
    __slots__ = ("version", "plan", "dry_run", "relais_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    RELAIS_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    plan: ImportPlan
    dry_run: bool
    relais_version: str
    def __init__(self, version: _Optional[str] = ..., plan: _Optional[_Union[ImportPlan, _Mapping]] = ..., dry_run: _Optional[bool] = ..., relais_version: _Optional[str] = ...) -> None: ...
