"""The tasks table (what to run, when, for whom), its runs' bookkeeping, and the replicas running them.

Runs themselves live in the engine (DBOS workflows, see server/tasks/engine.py): their
status, timing, error, output and steps are read from there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.identity.models import Id
from server.storage.models import Base, UtcDateTime, utcnow


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Null for built-in (system) tasks, which run with the server's own authority.
    owner_id: Mapped[int | None] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    system: Mapped[bool] = mapped_column(Boolean, default=False)
    # Each replica runs each tick of its own (per-process housekeeping) instead of one for all.
    every_replica: Mapped[bool] = mapped_column(Boolean, default=False)
    # Random per creation: a task deleted and created again under its id shares no run ids.
    incarnation: Mapped[str] = mapped_column(String(16))
    # "interval", "cron" or "once", and what that trigger needs.
    trigger: Mapped[str] = mapped_column(String(16))
    interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cron: Mapped[str | None] = mapped_column(String(120), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    run_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # Where interval ticks are counted from: creation, or the last trigger change or resume.
    anchor_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(128))
    # The action's params as JSON.
    params: Mapped[str] = mapped_column(Text, default="{}")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # A one-time task's outcome once it ran: "success", "failed" or "cancelled".
    finished: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Definition changes only (runs never touch this row but for `finished`): planners reload on it.
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    state: Mapped[TaskState | None] = relationship(
        lazy="joined", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )

    def current_state(self) -> TaskState:
        """Its run bookkeeping, to change (created, in the task's session, before its first run)."""
        if self.state is None:
            self.state = blank_state(self.id)
        return self.state

    def read_state(self) -> TaskState:
        """Its run bookkeeping, to read (a blank one, attached to nothing, before its first run)."""
        return self.state or blank_state(self.id)


class TaskState(Base):
    """What this instance's runs of a task did: counters, last run, a cancel under way.

    Kept apart from the definition (`tasks`, backed up and restored) because it is this
    instance's and changes with every run."""

    __tablename__ = "task_state"

    task_id: Mapped[str] = mapped_column(String(64), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True)
    success_count: Mapped[int] = mapped_column(Integer, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The latest tick a run began for: ticks after it that are past due were missed.
    last_planned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    # The last run counted in success_count/failure_count: a run finishing twice counts once.
    last_counted_run: Mapped[str | None] = mapped_column(String(200), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


def blank_state(task_id: str) -> TaskState:
    return TaskState(task_id=task_id, success_count=0, failure_count=0, last_error="", cancel_requested=False)


class TaskExecutor(Base):
    """A replica's scheduler, and its last heartbeat."""

    __tablename__ = "task_executors"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class TaskRunning(Base):
    """A run in progress: written when it begins, removed when it ends (whatever the outcome).

    Runs of a replica that died are removed once the engine has resumed or given them up."""

    __tablename__ = "task_running"

    run_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(64), ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    executor_id: Mapped[str] = mapped_column(String(160))
    begun_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
