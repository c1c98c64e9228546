"""When a task runs: every interval from an anchor, at a cron expression's times in a time zone,
or once. Parsing reports every bad field by name; the planner asks for the ticks due.

    trigger = Trigger.interval(90, anchor=created)     # created+90s, created+180s, ...
    trigger = Trigger.cron("0 9 * * 1-5", "Europe/Paris", anchor=created)
    trigger.next_after(now); trigger.last_at_or_before(now); trigger.describe()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from server.errors import FieldViolation

MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 366 * 86400
MAX_CRON_LENGTH = 120
KINDS = ("interval", "cron", "once")


def utc(value: datetime) -> datetime:
    """Aware UTC (SQLite hands datetimes back naive; they are UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    kind: str
    anchor: datetime
    interval_seconds: int | None = None
    cron: str | None = None
    timezone: str = "UTC"
    run_at: datetime | None = None

    @classmethod
    def interval(cls, seconds: int, *, anchor: datetime) -> Trigger:
        return cls(kind="interval", interval_seconds=seconds, anchor=utc(anchor))

    @classmethod
    def crontab(cls, expression: str, timezone: str = "UTC", *, anchor: datetime) -> Trigger:
        return cls(kind="cron", cron=expression, timezone=timezone, anchor=utc(anchor))

    @classmethod
    def once(cls, run_at: datetime | None, *, anchor: datetime) -> Trigger:
        return cls(kind="once", run_at=utc(run_at) if run_at else None, anchor=utc(anchor))

    # ------------------------------------------------------------------ ticks

    def next_after(self, moment: datetime) -> datetime | None:
        """The first tick strictly after `moment` (and after the anchor); None if there is none."""
        if self.kind == "once":
            return self.planned_once if self.planned_once > utc(moment) else None
        moment = max(utc(moment), self.anchor)
        if self.kind == "interval":
            assert self.interval_seconds
            period = timedelta(seconds=self.interval_seconds)
            elapsed = (moment - self.anchor) // period
            return self.anchor + (elapsed + 1) * period
        return self._cron_step(moment, forward=True)

    def last_at_or_before(self, moment: datetime) -> datetime | None:
        """The latest tick at or before `moment` and after the anchor; None if there is none."""
        moment = utc(moment)
        if moment <= self.anchor and self.kind != "once":
            return None
        if self.kind == "interval":
            assert self.interval_seconds
            period = timedelta(seconds=self.interval_seconds)
            elapsed = (moment - self.anchor) // period
            return self.anchor + elapsed * period if elapsed >= 1 else None
        if self.kind == "cron":
            found = self._cron_step(moment + timedelta(microseconds=1), forward=False)
            return found if found is not None and found > self.anchor else None
        planned = self.planned_once
        return planned if planned <= moment else None

    @property
    def planned_once(self) -> datetime:
        return self.run_at or self.anchor

    def _cron_step(self, moment: datetime, *, forward: bool) -> datetime | None:
        assert self.cron
        zone = ZoneInfo(self.timezone)
        seconds_first = len(self.cron.split()) == 6
        iterator = croniter(self.cron, moment.astimezone(zone), second_at_beginning=seconds_first)
        try:
            found = iterator.get_next(datetime) if forward else iterator.get_prev(datetime)
        except CroniterBadDateError:
            return None
        return utc(found)

    # ------------------------------------------------------------------ words

    def describe(self) -> str:
        """ "*/5 * * * *", "every 1h30m", "once at 2024-01-15T10:30:00Z"."""
        if self.kind == "interval":
            assert self.interval_seconds
            return "every " + duration_words(self.interval_seconds)
        if self.kind == "cron":
            assert self.cron
            return self.cron if self.timezone == "UTC" else f"{self.cron} ({self.timezone})"
        return "once at " + self.planned_once.strftime("%Y-%m-%dT%H:%M:%SZ")


def duration_words(seconds: int) -> str:
    """3600 → "1h"; 5415 → "1h30m15s"; 90000 → "1d1h"."""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def split_interval(seconds: int) -> tuple[int, int, int, int]:
    """(days, hours, minutes, seconds)."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    return days, hours, minutes, rest


# ---------------------------------------------------------------------- checks


def interval_violations(
    days: int, hours: int, minutes: int, seconds: int, field: str = "interval"
) -> list[FieldViolation]:
    parts = {"days": days, "hours": hours, "minutes": minutes, "seconds": seconds}
    violations = [
        FieldViolation(field=f"{field}.{name}", message="must be zero or more")
        for name, value in parts.items()
        if value < 0
    ]
    if violations:
        return violations
    total = days * 86400 + hours * 3600 + minutes * 60 + seconds
    if total < MIN_INTERVAL_SECONDS:
        return [FieldViolation(field="interval", message="must be at least 1 second (give hours, minutes or seconds)")]
    if total > MAX_INTERVAL_SECONDS:
        return [FieldViolation(field="interval", message="must be at most 366 days")]
    return []


def cron_violations(expression: str, timezone: str, *, field: str) -> list[FieldViolation]:
    """Problems of a cron expression (5 fields, or 6 with seconds first) and its time zone."""
    violations = timezone_violations(timezone)
    expression = expression.strip()
    if not expression:
        return [*violations, FieldViolation(field=field, message="is required for a cron task")]
    if len(expression) > MAX_CRON_LENGTH:
        return [*violations, FieldViolation(field=field, message=f"must be at most {MAX_CRON_LENGTH} characters")]
    fields = expression.split()
    if len(fields) not in (5, 6):
        message = f"must have 5 fields (minute hour day month weekday) or 6 (seconds first), not {len(fields)}"
        return [*violations, FieldViolation(field=field, message=message)]
    try:
        iterator = croniter(expression, datetime.now(UTC), second_at_beginning=len(fields) == 6)
        iterator.get_next(datetime)
    except CroniterBadDateError:
        return [*violations, FieldViolation(field=field, message=f"{expression!r} never matches a date")]
    except (CroniterBadCronError, ValueError, KeyError) as error:
        return [*violations, FieldViolation(field=field, message=f"is not a valid cron expression: {error}")]
    return violations


def timezone_violations(timezone: str) -> list[FieldViolation]:
    if timezone == "UTC":
        return []
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [FieldViolation(field="timezone", message=f"{timezone[:64]!r} is not an IANA time zone")]
    return []
