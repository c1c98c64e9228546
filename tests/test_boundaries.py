"""ARCHITECTURE §1 and §5: the bridge knows nothing of the domain (it imports nothing from
server/), and the server knows nothing of Socket.IO (or of any HTTP framework)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(directory: Path) -> dict[str, set[str]]:
    """Every module each file of `package` imports, at any depth (functions included)."""
    found: dict[str, set[str]] = {}
    for path in sorted(directory.rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path.name] = names
    return found


def offenders(directory: Path, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path}: {name}"
        for path, names in imported_modules(directory).items()
        for name in sorted(names)
        if name.split(".")[0] in forbidden
    ]


def test_the_bridge_imports_nothing_from_the_server() -> None:
    assert offenders(ROOT / "bridge", ("server",)) == []


def test_the_server_imports_no_socketio_nor_http_framework() -> None:
    assert offenders(ROOT / "server", ("socketio", "engineio", "fastapi", "starlette", "bridge")) == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    (tmp_path / "late.py").write_text("def f():\n    from server.errors import NotFound\n    import socketio.client\n")
    assert offenders(tmp_path, ("server", "socketio")) == ["late.py: server.errors", "late.py: socketio.client"]
