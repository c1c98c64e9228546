"""Triggers as arithmetic: intervals from their anchor, cron in a time zone (DST included),
one-time tasks; and the words the contract shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.tasks.triggers import Trigger, cron_violations, duration_words, interval_violations

ANCHOR = datetime(2024, 3, 30, 12, 0, 0, 250000, tzinfo=UTC)


def test_interval_ticks_count_from_the_anchor() -> None:
    trigger = Trigger.interval(90, anchor=ANCHOR)

    assert trigger.next_after(ANCHOR) == ANCHOR + timedelta(seconds=90)
    assert trigger.next_after(ANCHOR + timedelta(seconds=90)) == ANCHOR + timedelta(seconds=180)
    assert trigger.last_at_or_before(ANCHOR + timedelta(seconds=89)) is None
    assert trigger.last_at_or_before(ANCHOR + timedelta(seconds=400)) == ANCHOR + timedelta(seconds=360)
    assert trigger.describe() == "every 1m30s"


def test_cron_ticks_in_a_time_zone_across_the_change_to_summer_time() -> None:
    paris = ZoneInfo("Europe/Paris")
    trigger = Trigger.crontab("30 2 * * *", "Europe/Paris", anchor=ANCHOR)

    first = trigger.next_after(ANCHOR)
    # 02:30 does not exist that night: the tick comes once, when the clock jumps to 03:00.
    assert first is not None and first.astimezone(paris).replace(tzinfo=None) == datetime(2024, 3, 31, 3, 0)
    assert trigger.next_after(first) == datetime(2024, 4, 1, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert trigger.describe() == "30 2 * * * (Europe/Paris)"


def test_six_field_cron_has_seconds_first() -> None:
    trigger = Trigger.crontab("*/15 * * * * *", anchor=ANCHOR)

    assert trigger.next_after(ANCHOR) == datetime(2024, 3, 30, 12, 0, 15, tzinfo=UTC)
    assert trigger.last_at_or_before(datetime(2024, 3, 30, 12, 0, 59, tzinfo=UTC)) == datetime(
        2024, 3, 30, 12, 0, 45, tzinfo=UTC
    )
    # A tick exactly now counts as due; none before the anchor does.
    assert trigger.last_at_or_before(datetime(2024, 3, 30, 12, 0, 30, tzinfo=UTC)) == datetime(
        2024, 3, 30, 12, 0, 30, tzinfo=UTC
    )
    assert trigger.last_at_or_before(ANCHOR) is None


def test_a_one_time_trigger_is_due_once_its_time_has_come() -> None:
    at = ANCHOR + timedelta(minutes=5)
    trigger = Trigger.once(at, anchor=ANCHOR)

    assert trigger.next_after(ANCHOR) == at and trigger.next_after(at) is None
    assert trigger.last_at_or_before(at - timedelta(seconds=1)) is None
    assert trigger.last_at_or_before(at + timedelta(hours=1)) == at
    assert trigger.describe() == "once at 2024-03-30T12:05:00Z"
    assert Trigger.once(None, anchor=ANCHOR).last_at_or_before(ANCHOR) == ANCHOR


@pytest.mark.parametrize(
    "expression, zone, problem",
    [
        ("0 9 * * 1-5", "Europe/Paris", None),
        ("0 0 * * *", "UTC", None),
        ("*/5 * * * * *", "UTC", None),
        ("61 * * * *", "UTC", "is not a valid cron expression"),
        ("* * * *", "UTC", "must have 5 fields"),
        ("* * * * * * *", "UTC", "must have 5 fields"),
        ("0 0 31 2 *", "UTC", "never matches a date"),
        ("", "UTC", "is required"),
        ("0 9 * * *", "Nowhere/City", "is not an IANA time zone"),
    ],
)
def test_cron_checks(expression: str, zone: str, problem: str | None) -> None:
    found = cron_violations(expression, zone, field="schedule")

    if problem is None:
        assert found == []
    else:
        assert any(problem in violation.message for violation in found), found


def test_interval_checks_and_words() -> None:
    assert [v.field for v in interval_violations(0, 0, 0, 0)] == ["interval"]
    assert [v.field for v in interval_violations(0, -1, 0, 30)] == ["interval.hours"]
    assert [v.field for v in interval_violations(367, 0, 0, 0)] == ["interval"]
    assert interval_violations(0, 0, 0, 1) == []
    assert [duration_words(n) for n in (1, 3600, 5415, 90000)] == ["1s", "1h", "1h30m15s", "1d1h"]
