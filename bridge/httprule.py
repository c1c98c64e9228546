"""Path templates of google.api.HttpRule, compiled once into regular expressions.

Template = "/" Segments [ Verb ] ;
Segments = Segment { "/" Segment } ;
Segment  = "*" | "**" | LITERAL | Variable ;
Variable = "{" FieldPath [ "=" Segments ] "}" ;
Verb     = ":" LITERAL ;

>>> t = PathTemplate.parse("/v1/{name=shelves/*/books/*}:publish")
>>> t.match("/v1/shelves/1/books/2:publish")
{'name': 'shelves/1/books/2'}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_LITERAL = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")


class TemplateError(ValueError):
    """A binding's path template is malformed (raised at start-up, never per request)."""


@dataclass(frozen=True, slots=True)
class Variable:
    field_path: str
    # Segments the variable spans; ("*",) for a plain {field}.
    segments: tuple[str, ...]

    @property
    def multi_segment(self) -> bool:
        return len(self.segments) > 1 or "**" in self.segments


@dataclass(frozen=True, slots=True)
class PathTemplate:
    source: str
    # Each top-level segment: a literal string, "*", "**" or a Variable.
    segments: tuple[str | Variable, ...]
    verb: str
    regex: re.Pattern[str]
    variables: tuple[Variable, ...]
    # The template with its variables anonymised: equal shapes match the same URLs. Computed once:
    # the route table compares shapes for every URL it has not seen yet.
    shape: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", self.openapi_path(tuple("{}" for _ in self.variables)))

    @classmethod
    def parse(cls, source: str) -> PathTemplate:
        if not source.startswith("/"):
            raise TemplateError(f"{source!r}: a template starts with '/'")
        body, verb = _split_verb(source[1:], source)
        segments = tuple(_segments(body, source))
        variables = tuple(s for s in segments if isinstance(s, Variable))
        names = [v.field_path for v in variables]
        if len(names) != len(set(names)):
            raise TemplateError(f"{source!r}: a field is bound twice")
        pattern = "^/" + "/".join(_segment_regex(s, variables) for s in segments)
        pattern += (":" + re.escape(verb) if verb else "") + "$"
        return cls(source, segments, verb, re.compile(pattern), variables)

    def match(self, path: str) -> dict[str, str] | None:
        """Field path → decoded value, or None when `path` does not match."""
        found = self.regex.match(path)
        if found is None:
            return None
        return {v.field_path: unquote(found.group(f"v{i}")) for i, v in enumerate(self.variables)}

    @property
    def specificity(self) -> tuple[int, ...]:
        """Sort key: literal segments before variables before wildcards, left to right,
        so /api/agents/my wins over /api/agents/{agent_id}."""
        ranks = []
        for segment in self.segments:
            if isinstance(segment, Variable):
                ranks.append(3 if segment.multi_segment else 1)
            else:
                ranks.append({"*": 1, "**": 3}.get(segment, 0))
        return (*ranks, 2 if not self.verb else 0)

    def openapi_path(self, names: tuple[str, ...] | None = None) -> str:
        """The template in OpenAPI form, /v1/{name}:publish, with the variables
        renamed to `names` (OpenAPI forbids two paths differing only in names)."""
        names = names or self.parameter_names
        rename = dict(zip(self.variables, names, strict=True))
        parts = [f"{{{rename[s]}}}" if isinstance(s, Variable) else s for s in self.segments]
        return "/" + "/".join(parts) + (f":{self.verb}" if self.verb else "")

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """OpenAPI parameter names of the variables (dots become underscores)."""
        return tuple(v.field_path.replace(".", "_") for v in self.variables)


def _split_verb(body: str, source: str) -> tuple[str, str]:
    depth = 0
    for index, char in enumerate(body):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == ":" and depth == 0:
            verb = body[index + 1 :]
            if not _LITERAL.match(verb):
                raise TemplateError(f"{source!r}: bad verb {verb!r}")
            return body[:index], verb
    return body, ""


def _segments(body: str, source: str) -> list[str | Variable]:
    segments: list[str | Variable] = []
    for raw in re.findall(r"\{[^}]*\}|[^/]+", body):
        if raw.startswith("{"):
            field_path, _, sub = raw[1:-1].partition("=")
            if not _IDENT.match(field_path):
                raise TemplateError(f"{source!r}: bad field path {field_path!r}")
            parts = tuple(sub.split("/")) if sub else ("*",)
            for part in parts:
                if part not in ("*", "**") and not _LITERAL.match(part):
                    raise TemplateError(f"{source!r}: bad segment {part!r}")
            segments.append(Variable(field_path, parts))
        elif raw in ("*", "**") or _LITERAL.match(raw):
            segments.append(raw)
        else:
            raise TemplateError(f"{source!r}: bad segment {raw!r}")
    wildcards = [p for s in segments for p in (s.segments if isinstance(s, Variable) else (s,)) if p == "**"]
    if len(wildcards) > 1:
        raise TemplateError(f"{source!r}: at most one '**'")
    if body and not segments:
        raise TemplateError(f"{source!r}: empty template")
    return segments


def _wildcard(part: str) -> str:
    if part == "*":
        return r"[^/]+?"
    if part == "**":
        return r".+?"
    return re.escape(part)


def _segment_regex(segment: str | Variable, variables: tuple[Variable, ...]) -> str:
    if isinstance(segment, Variable):
        inner = "/".join(_wildcard(part) for part in segment.segments)
        return f"(?P<v{variables.index(segment)}>{inner})"
    return _wildcard(segment)
