"""betterproto2's protoc plugin, with Relais' sync stub template (service_stub_sync.py.j2 beside
this file) looked up before betterproto2's own templates. buf.gen.yaml runs it; everything
else is betterproto2's (pinned < 0.11 in pyproject.toml, whose template names this relies on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from betterproto2_compiler.plugin import compiler, main

OVERRIDES = Path(__file__).resolve().parent


class _JinjaWithOverrides:
    """Stands in for the `jinja2` module inside betterproto2's compiler: the same module,
    except that FileSystemLoader searches this folder first."""

    def __getattr__(self, name: str) -> Any:
        return getattr(jinja2, name)

    @staticmethod
    def FileSystemLoader(folder: str) -> jinja2.FileSystemLoader:
        return jinja2.FileSystemLoader([str(OVERRIDES), folder])


compiler.jinja2 = _JinjaWithOverrides()  # type: ignore[assignment]

if __name__ == "__main__":
    main()
