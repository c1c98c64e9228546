"""Arithmetic from a real parser: the expression is parsed by Python's own grammar (`ast`, in
"eval" mode) and the tree is walked here, allowing numbers, + - * / // % **, parentheses,
a few constants and math functions. Nothing is ever evaluated by Python itself: names,
attributes, calls of anything else, comprehensions, strings are refused. Integers stay
exact (12345 * 6789 = 83810205); results past 10 000 digits or powers past 10 000 are refused.

Also read: "x" or the multiplication sign between numbers, "÷", "^" for powers, "," as a thousands separator
in "1,234,567", and "%" of a number ("20% of 150" is not: write 150 * 20 / 100).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

from server.tools.builtin.base import BuiltinTool, ToolError, schema
from server.tools.registry import CallerContext

MAX_LENGTH = 500
MAX_DIGITS = 10_000
MAX_EXPONENT = 10_000
Number = int | float

BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "degrees": math.degrees,
    "radians": math.radians,
    "factorial": math.factorial,
    "min": min,
    "max": max,
}


def normalise(expression: str) -> str:
    # The multiplication and minus signs people paste, written as escapes (they look like x and -).
    text = expression.strip().replace("\u00d7", "*").replace("÷", "/").replace("^", "**").replace("\u2212", "-")
    text = re.sub(r"(?<=\d)\s*[xX]\s*(?=[\d(])", "*", text)
    # 1,234,567 → 1234567 (a comma elsewhere separates function arguments).
    return re.sub(r"\b(\d{1,3}(?:,\d{3})+)\b(?!\.\d)", lambda m: m.group(1).replace(",", ""), text)


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; ToolError says why one cannot be computed."""
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"The expression is longer than {MAX_LENGTH} characters")
    text = normalise(expression)
    if not text:
        raise ToolError("The expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ToolError(f"Cannot parse {expression!r}: {error.msg} at column {error.offset}") from None
    try:
        return _value(tree.body)
    except ZeroDivisionError:
        raise ToolError("Division by zero") from None
    except (OverflowError, ValueError) as error:
        raise ToolError(f"Cannot compute {expression!r}: {error}") from None


def _value(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value  # type: ignore[return-value]
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_value(node.operand))  # type: ignore[no-any-return]
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ToolError(f"Exponents above {MAX_EXPONENT} are refused")
        return _bounded(BINARY[type(node.op)](left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if node.keywords:
            raise ToolError("Functions take positional arguments only")
        arguments = [_value(argument) for argument in node.args]
        if node.func.id == "factorial" and arguments and arguments[0] > 3000:
            raise ToolError("factorial() is limited to 3000")
        return _bounded(FUNCTIONS[node.func.id](*arguments))
    raise ToolError(f"Not allowed in an expression: {ast.unparse(node)!r} (numbers, + - * / // % **, functions)")


def _bounded(value: Any) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_DIGITS * 3.33:
        raise ToolError(f"The result has more than {MAX_DIGITS} digits")
    if not isinstance(value, int | float):
        raise ToolError("The result is not a real number")
    return value


def formatted(value: Number) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


async def calculate(context: CallerContext, arguments: dict[str, Any]) -> str:
    expression = arguments["expression"]
    return f"{expression} = {formatted(evaluate(expression))}"


TOOLS = [
    BuiltinTool(
        name="calculator",
        description="Evaluate an arithmetic expression exactly, e.g. '12345 * 6789' or 'sqrt(2) * (3 + 4)'.",
        parameters=schema(
            {
                "expression": {
                    "type": "string",
                    "description": "Numbers, + - * / // % ** ( ), pi, e, sqrt, log, sin, cos, round…",
                    "minLength": 1,
                    "maxLength": MAX_LENGTH,
                }
            },
            required=["expression"],
        ),
        category="math",
        run=calculate,
    )
]
