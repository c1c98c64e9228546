"""Date, time and time zones (IANA names, from the tz database Python ships or tzdata)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.tools.builtin.base import BuiltinTool, ToolError, schema
from server.tools.registry import CallerContext

ZONE = {"type": "string", "description": "IANA time zone, e.g. 'Europe/Paris', 'America/Montreal', 'UTC'"}


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"Unknown time zone {name!r}: use an IANA name such as 'Europe/Paris'") from None


def describe(moment: datetime) -> dict[str, Any]:
    offset = moment.utcoffset()
    return {
        "iso": moment.isoformat(timespec="seconds"),
        "date": moment.date().isoformat(),
        "time": moment.strftime("%H:%M:%S"),
        "weekday": moment.strftime("%A"),
        "timezone": str(moment.tzinfo),
        "utc_offset": moment.strftime("%z") if offset is not None else "",
        "unix": int(moment.timestamp()),
    }


async def current_time(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
    return describe(datetime.now(UTC).astimezone(zone(arguments.get("timezone", "UTC"))))


async def convert_time(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
    source, target = zone(arguments.get("from_timezone", "UTC")), zone(arguments["to_timezone"])
    try:
        moment = datetime.fromisoformat(arguments["time"].strip())
    except ValueError:
        raise ToolError(
            f"Cannot read {arguments['time']!r} as a date and time: use ISO 8601, e.g. 2025-06-01T14:30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=source)
    return {"from": describe(moment), "to": describe(moment.astimezone(target))}


TOOLS = [
    BuiltinTool(
        name="current_time",
        description="The current date and time in a time zone (UTC by default).",
        parameters=schema({"timezone": ZONE}),
        category="time",
        run=current_time,
    ),
    BuiltinTool(
        name="convert_time",
        description="Convert a date and time (ISO 8601) from one time zone to another.",
        parameters=schema(
            {
                "time": {"type": "string", "description": "ISO 8601 date and time, e.g. 2025-06-01T14:30"},
                "from_timezone": {**ZONE, "description": "Zone of `time` when it has no offset (UTC by default)"},
                "to_timezone": ZONE,
            },
            required=["time", "to_timezone"],
        ),
        category="time",
        run=convert_time,
    ),
]
