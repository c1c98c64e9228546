"""Unit conversion with pint's unit registry (lengths, masses, temperatures, speeds, data…)."""

from __future__ import annotations

import functools
import math
from typing import Any

import pint

from server.tools.builtin.base import BuiltinTool, ToolError, schema
from server.tools.registry import CallerContext


@functools.cache
def registry() -> pint.UnitRegistry:  # type: ignore[type-arg]
    # Built once (it parses pint's definitions file), on first use.
    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def convert(value: float, source: str, target: str) -> float:
    units = registry()
    try:
        quantity = units.Quantity(value, source.strip())
        return float(quantity.to(target.strip()).magnitude)
    except pint.errors.UndefinedUnitError as error:
        raise ToolError(f"Unknown unit {error.unit_names!s}") from None
    except pint.errors.DimensionalityError as error:
        raise ToolError(f"Cannot convert {error.units1} to {error.units2}: they measure different things") from None
    except (pint.errors.PintError, AssertionError, AttributeError, TypeError, ValueError) as error:
        raise ToolError(f"Cannot read the units {source!r} → {target!r}: {error}") from None


async def convert_units(context: CallerContext, arguments: dict[str, Any]) -> dict[str, Any]:
    value = float(arguments["value"])
    if not math.isfinite(value):
        raise ToolError("The value must be a finite number")
    result = convert(value, arguments["from_unit"], arguments["to_unit"])
    return {"value": value, "from_unit": arguments["from_unit"], "to_unit": arguments["to_unit"], "result": result}


TOOLS = [
    BuiltinTool(
        name="convert_units",
        description="Convert a quantity between units, e.g. 10 km to mile, 100 degC to degF, 5 GB to MiB.",
        parameters=schema(
            {
                "value": {"type": "number"},
                "from_unit": {"type": "string", "description": "e.g. 'km', 'degC', 'lb', 'km/h', 'GB'"},
                "to_unit": {"type": "string", "description": "e.g. 'mile', 'degF', 'kg', 'm/s', 'MiB'"},
            },
            required=["value", "from_unit", "to_unit"],
        ),
        category="units",
        run=convert_units,
    )
]
