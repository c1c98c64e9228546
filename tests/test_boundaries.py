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


# ARCHITECTURE §1: a rule about a resource is written once, by its domain, and the others call it.
# A domain is a package under server/; these are the infrastructure every domain stands on (the
# database, the interceptors and what they keep), whose models and queries anyone may use.
INFRASTRUCTURE = {"storage", "interceptors", "ratelimit", "idempotency"}
# Files allowed to read another domain's tables, and why.
EXEMPT = {
    # A backup is every table of the one schema, read and written whole.
    "server/backup/tables.py",
}


def domains(server: Path) -> set[str]:
    return {path.parent.name for path in server.glob("*/__init__.py")} - INFRASTRUCTURE


def reached_modules(tree: ast.AST) -> set[str]:
    """The modules an import names, `from server.x import models` counted as server.x.models."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def foreign_tables(root: Path) -> list[str]:
    """`file: module` for each file of a domain that imports another domain's models or
    repository. models.py files may: their foreign keys name other domains' tables (one schema)."""
    server = root / "server"
    owners = domains(server)
    found = []
    for path in sorted(server.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        parts = path.relative_to(server).parts
        if len(parts) < 2 or parts[0] not in owners or path.name == "models.py" or relative in EXEMPT:
            continue
        for name in sorted(reached_modules(ast.parse(path.read_text(), filename=str(path)))):
            pieces = name.split(".")
            if (
                len(pieces) == 3
                and pieces[0] == "server"
                and pieces[1] in owners
                and pieces[1] != parts[0]
                and pieces[2] in ("models", "repository")
            ):
                found.append(f"{relative}: {name}")
    return found


def test_a_domain_reaches_another_domains_tables_only_through_its_functions() -> None:
    assert foreign_tables(ROOT) == []


def test_the_table_check_sees_every_import_form(tmp_path: Path) -> None:
    for package in ("server", "server/chats", "server/agents", "server/storage"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "server/chats/models.py").write_text("from server.agents.models import Agent\n")
    (tmp_path / "server/chats/service.py").write_text(
        "from server.agents import repository\nfrom server.storage.models import Base\n"
        "def f():\n    import server.agents.models\n    from server.chats.models import Chat\n"
    )
    assert foreign_tables(tmp_path) == [
        "server/chats/service.py: server.agents.models",
        "server/chats/service.py: server.agents.repository",
    ]


# A servicer turns protobuf into calls and views into protobuf: it never sees a table row, so a
# lazy attribute read after the session closed cannot happen in one, nor a query written there.
def rows_in_servicers(root: Path) -> list[str]:
    server = root / "server"
    found = []
    for path in sorted(server.rglob("servicer.py")):
        for name in sorted(reached_modules(ast.parse(path.read_text(), filename=str(path)))):
            pieces = name.split(".")
            if pieces[0] == "server" and pieces[-1] in ("models", "repository"):
                found.append(f"{path.relative_to(root).as_posix()}: {name}")
    return found


def test_servicers_see_views_never_table_rows() -> None:
    assert rows_in_servicers(ROOT) == []


def test_the_servicer_check_sees_its_own_domains_tables_too(tmp_path: Path) -> None:
    (tmp_path / "server/chats").mkdir(parents=True)
    (tmp_path / "server/chats/servicer.py").write_text("from server.chats.models import Chat\n")
    assert rows_in_servicers(tmp_path) == ["server/chats/servicer.py: server.chats.models"]
