"""A plugin's manifest: who it is, what it serves, and the sha256 of every file of its bundle.

Authors write `plugin.toml` (everything but `files`, `services`, `routes` and `format`);
`relais plugin pack` adds those and writes `manifest.json` into the bundle:

    {"format": 1, "id": "hello", "name": "Hello", "version": "1.0.0", "author": "…",
     "description": "…", "tags": ["example"], "api_prefix": "/hello", "dependencies": [],
     "permissions": [], "entry_point": "hello_plugin.main", "environment": [],
     "requirements": [], "tools": [{"name": "greet", "description": "…"}],
     "actions": [{"name": "greet", "description": "…", "params_schema": {…}}],
     "descriptor_set": "descriptors.binpb", "services": ["hello.v1.HelloService"],
     "files": {"hello_plugin/main.py": "<sha256>", …}}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from packaging.requirements import InvalidRequirement, Requirement

from server.errors import InvalidArgument

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
DESCRIPTOR_SET = "descriptors.binpb"
WHEELHOUSE = "wheelhouse"

ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
PREFIX = re.compile(r"^(/[A-Za-z0-9][A-Za-z0-9._~-]{0,63}){1,8}$")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
SERVICE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# What a plugin may ask for. Anything else is refused: an administrator must know what a
# permission means before granting it by installing the plugin.
PERMISSIONS = {
    "routes:public": "its routes may be marked public (callable without credentials) or open to anonymous callers",
}
# Names no plugin receives from Relais' environment, whatever it declares.
FORBIDDEN_ENV_PREFIXES = ("RELAIS_",)
TEXT_LIMIT = 4096


class ManifestInvalid(InvalidArgument):
    """The manifest breaks a rule; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("The plugin manifest is invalid: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    name: str
    description: str = ""
    params_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    id: str
    name: str
    version: str
    entry_point: str
    author: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    api_prefix: str = ""
    dependencies: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    actions: tuple[ActionSpec, ...] = ()
    descriptor_set: str = ""
    services: tuple[str, ...] = ()
    # Bundle path → sha256 of every file but manifest.json and manifest.sig.
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "author": self.author,
            "description": self.description,
            "tags": list(self.tags),
            "api_prefix": self.api_prefix,
            "dependencies": list(self.dependencies),
            "permissions": list(self.permissions),
            "entry_point": self.entry_point,
            "environment": list(self.environment),
            "requirements": list(self.requirements),
            "tools": [{"name": t.name, "description": t.description} for t in self.tools],
            "actions": [
                {"name": a.name, "description": a.description, "params_schema": a.params_schema} for a in self.actions
            ],
            "descriptor_set": self.descriptor_set,
            "services": list(self.services),
            "files": dict(sorted(self.files.items())),
        }


class _Reader:
    """Reads one manifest, collecting every problem rather than stopping at the first."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []

    def text(self, key: str, *, pattern: re.Pattern[str] | None = None, required: bool = False) -> str:
        value: object = self.data.get(key, "")
        if not isinstance(value, str) or len(value) > TEXT_LIMIT:
            self.problems.append(f"{key} must be a string of at most {TEXT_LIMIT} characters")
            return ""
        if required and not value:
            self.problems.append(f"{key} is required")
        elif value and pattern is not None and not pattern.match(value):
            self.problems.append(f"{key} {value[:80]!r} does not match {pattern.pattern}")
        return value

    def texts(self, key: str, *, pattern: re.Pattern[str] | None = None, limit: int = 64) -> tuple[str, ...]:
        values = self.data.get(key, [])
        if not isinstance(values, list) or len(values) > limit or not all(isinstance(v, str) for v in values):
            self.problems.append(f"{key} must be a list of at most {limit} strings")
            return ()
        for value in values:
            if pattern is not None and not pattern.match(value):
                self.problems.append(f"{key}: {value[:80]!r} does not match {pattern.pattern}")
        if len(set(values)) != len(values):
            self.problems.append(f"{key} lists a value twice")
        return tuple(values)

    def objects(self, key: str, limit: int = 64) -> list[dict[str, Any]]:
        values = self.data.get(key, [])
        if not isinstance(values, list) or len(values) > limit or not all(isinstance(v, dict) for v in values):
            self.problems.append(f"{key} must be a list of at most {limit} tables")
            return []
        names = [value.get("name") for value in values]
        if len(set(map(str, names))) != len(names):
            self.problems.append(f"{key} names one entry twice")
        return values


def parse_manifest(data: Any, *, packed: bool = True) -> Manifest:
    """The manifest of `data` (manifest.json, or plugin.toml when not `packed`); ManifestInvalid
    lists every problem."""
    if not isinstance(data, dict):
        raise ManifestInvalid(["it must be a JSON object"])
    reader = _Reader(data)
    if packed and data.get("format") != FORMAT:
        reader.problems.append(f"format must be {FORMAT}")
    manifest = Manifest(
        id=reader.text("id", pattern=ID, required=True),
        name=reader.text("name") or str(data.get("id", "")),
        version=reader.text("version", pattern=VERSION, required=True),
        entry_point=reader.text("entry_point", pattern=MODULE, required=True),
        author=reader.text("author"),
        description=reader.text("description"),
        tags=reader.texts("tags", pattern=re.compile(r"^[^\x00-\x1f]{1,64}$")),
        api_prefix=reader.text("api_prefix", pattern=PREFIX),
        dependencies=reader.texts("dependencies", pattern=ID),
        permissions=reader.texts("permissions"),
        environment=reader.texts("environment", pattern=ENV_NAME),
        requirements=reader.texts("requirements", limit=256),
        tools=_tools(reader),
        actions=_actions(reader),
        descriptor_set=reader.text("descriptor_set") if packed else "",
        services=reader.texts("services", pattern=SERVICE) if packed else (),
        files=_files(reader) if packed else {},
    )
    _check_rules(manifest, reader.problems, packed=packed)
    if reader.problems:
        raise ManifestInvalid(reader.problems)
    return manifest


def _tools(reader: _Reader) -> tuple[ToolSpec, ...]:
    tools = []
    for value in reader.objects("tools"):
        name, description = value.get("name"), value.get("description", "")
        if not isinstance(name, str) or not NAME.match(name) or not isinstance(description, str):
            reader.problems.append(f"tools: {str(name)[:80]!r} needs a name matching {NAME.pattern} and a description")
            continue
        tools.append(ToolSpec(name=name, description=description[:TEXT_LIMIT]))
    return tuple(tools)


def _actions(reader: _Reader) -> tuple[ActionSpec, ...]:
    actions = []
    for value in reader.objects("actions"):
        name, description = value.get("name"), value.get("description", "")
        schema = value.get("params_schema", {"type": "object"})
        if not isinstance(name, str) or not NAME.match(name) or not isinstance(description, str):
            reader.problems.append(
                f"actions: {str(name)[:80]!r} needs a name matching {NAME.pattern} and a description"
            )
            continue
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            reader.problems.append(f"actions: {name}'s params_schema must be a JSON Schema of an object")
            continue
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            reader.problems.append(f"actions: {name}'s params_schema is not a valid JSON Schema ({error.message})")
            continue
        actions.append(ActionSpec(name=name, description=description[:TEXT_LIMIT], params_schema=schema))
    return tuple(actions)


def _files(reader: _Reader) -> dict[str, str]:
    files = reader.data.get("files", {})
    if not isinstance(files, dict) or not all(
        isinstance(path, str) and isinstance(digest, str) and SHA256.match(digest) for path, digest in files.items()
    ):
        reader.problems.append("files must map each bundle path to its sha256 (64 lowercase hex digits)")
        return {}
    return dict(files)


def _check_rules(manifest: Manifest, problems: list[str], *, packed: bool) -> None:
    for permission in manifest.permissions:
        if permission not in PERMISSIONS:
            problems.append(f"permissions: unknown {permission[:80]!r}; known: {', '.join(sorted(PERMISSIONS))}")
    for name in manifest.environment:
        if name.startswith(FORBIDDEN_ENV_PREFIXES):
            problems.append(f"environment: {name} is Relais' own; no plugin receives RELAIS_* variables")
    if manifest.id in manifest.dependencies:
        problems.append("dependencies: a plugin cannot depend on itself")
    for requirement in manifest.requirements:
        try:
            Requirement(requirement)
        except InvalidRequirement as error:
            problems.append(f"requirements: {requirement[:80]!r} is not a valid requirement ({error})")
    if packed and manifest.services and manifest.descriptor_set not in manifest.files:
        problems.append("descriptor_set must name a file of the bundle when services are listed")
