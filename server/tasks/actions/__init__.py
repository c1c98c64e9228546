"""What a task can run: named, typed actions, each with a JSON Schema for its params.

    registry.add(Action(name="rag.reindex", description=..., params_schema={...},
                        permission="corpus:write", run=reindex))
    registry.add_plugin_action(plugin="weather", name="weather.fetch", description=...,
                               params_schema={...}, run=fetch)       # run(params, principal)
    registry.violations("rag.reindex", {"full": "yes"})  # [FieldViolation("params.full", ...)]

An action's `run` receives an ActionContext and does its work in checkpointed steps
(`await context.step("name", function, *args)`): a cancelled run stops before its next step,
a run interrupted by a crash resumes after its last finished step. The owner's principal is
built again from their account when the run begins, so a permission they lost is refused then.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from server.auth import Principal
from server.errors import FieldViolation, ValidationFailed

T = TypeVar("T")
Json = dict[str, Any]
ActionRun = Callable[["ActionContext"], Awaitable[Any]]
# Creation-time checks beyond the schema (the conversation exists, the tool may be called...).
ActionCheck = Callable[[Principal, Json], Awaitable[None]]
PluginRun = Callable[[Json, Principal], Awaitable[Any]]

ACTION_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}(\.[a-z0-9][a-z0-9_-]{0,63}){1,3}$")
# Who built-in tasks run as: the server itself.
SYSTEM = Principal(subject="system", roles=frozenset({"admin"}), permissions=frozenset({"*"}))


class StepRunner:
    """How an action runs a checkpointed step (the engine's, see server/tasks/engine.py)."""

    async def step(self, name: str, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionContext:
    params: Json
    # The owner as they are now (SYSTEM for built-in tasks).
    principal: Principal
    task_id: str
    task_name: str
    run_id: str
    planned_at: datetime
    steps: StepRunner

    async def step(self, name: str, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run `function(*args)` as a checkpointed step on the server's loop; its result (a JSON
        value) is recorded, and a cancelled run stops here instead of starting it."""
        return await self.steps.step(name, function, *args)


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    name: str
    description: str
    params_schema: Json
    run: ActionRun
    # What the owner must hold when the task is created and each time it runs; "" for anyone
    # signed in, "*" for administrators.
    permission: str = ""
    check: ActionCheck | None = None
    # "relais", or the plugin that contributed it.
    source: str = "relais"
    # Built-in housekeeping: run by system tasks only, never offered to users.
    system_only: bool = False
    _validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not ACTION_NAME.match(self.name):
            raise ValueError(f"action name {self.name!r} must look like 'domain.verb' (lowercase, dotted)")
        try:
            Draft202012Validator.check_schema(self.params_schema)
        except SchemaError as error:
            raise ValueError(f"action {self.name}: invalid params schema: {error.message}") from error
        if self.params_schema.get("type") != "object":
            raise ValueError(f"action {self.name}: params must be a JSON object ('type': 'object')")
        object.__setattr__(self, "_validator", Draft202012Validator(self.params_schema))

    def violations(self, params: Json, *, field: str = "params") -> list[FieldViolation]:
        """Every way `params` breaks the schema, each named by its path ("params.keep")."""
        found = []
        for error in sorted(self._validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path))):
            path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
            missing = error.validator == "required" and isinstance(error.instance, dict)
            if missing:
                names = [name for name in error.validator_value if name not in error.instance]
                path += f".{names[0]}" if names else ""
            found.append(FieldViolation(field=f"{field}{path}", message=error.message))
        return found

    def allowed(self, principal: Principal) -> bool:
        if self.system_only:
            return False
        return not self.permission or principal.can(self.permission)


class ActionRegistry:
    """Every action, built-in or contributed; plugins add theirs at load and remove them at unload."""

    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._lock = threading.Lock()

    def add(self, action: Action) -> None:
        with self._lock:
            if action.name in self._actions:
                raise ValueError(f"action {action.name!r} is already registered")
            self._actions[action.name] = action

    def add_plugin_action(
        self,
        *,
        plugin: str,
        name: str,
        description: str,
        params_schema: Json,
        run: PluginRun,
        permission: str = "",
    ) -> Action:
        """A plugin's action: its run(params, principal) is one checkpointed step."""

        async def run_plugin(context: ActionContext) -> Any:
            return await context.step(name, run, context.params, context.principal)

        action = Action(
            name=name,
            description=description,
            params_schema=params_schema,
            run=run_plugin,
            permission=permission,
            source=plugin,
        )
        self.add(action)
        return action

    def remove(self, name: str) -> None:
        with self._lock:
            self._actions.pop(name, None)

    def remove_source(self, source: str) -> None:
        """Every action a plugin contributed (when it is unloaded)."""
        with self._lock:
            for name in [name for name, action in self._actions.items() if action.source == source]:
                del self._actions[name]

    def get(self, name: str) -> Action | None:
        return self._actions.get(name)

    def available_to(self, principal: Principal) -> list[Action]:
        return sorted((a for a in self._actions.values() if a.allowed(principal)), key=lambda a: a.name)

    def checked(self, name: str, params: Json, principal: Principal) -> Action:
        """The action `name` if `principal` may use it with these params; else 422 (or 403)."""
        if not name.strip():
            raise ValidationFailed([FieldViolation(field="action", message="is required (see /system/tasks/actions)")])
        action = self._actions.get(name.strip())
        if action is None or action.system_only:
            known = ", ".join(a.name for a in self.available_to(principal)) or "none"
            message = f"unknown action {name[:128]!r}; the actions you may use: {known}"
            raise ValidationFailed([FieldViolation(field="action", message=message)])
        if not action.allowed(principal):
            message = f"needs the permission {action.permission!r}, which you do not hold"
            raise ValidationFailed([FieldViolation(field="action", message=message)])
        violations = action.violations(params)
        if violations:
            raise ValidationFailed(violations)
        return action


def summary(value: Any, *, limit: int = 4000) -> Json:
    """An action's result as a small JSON object for the run's history (cut beyond `limit`
    characters of JSON: {"summary": "<the start of it>…"})."""
    if value is None:
        value = {}
    elif not isinstance(value, Mapping):
        value = {"result": value}
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) > limit:
        return {"summary": text[:limit] + "…"}
    result: Json = json.loads(text)
    return result
