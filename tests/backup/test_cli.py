"""`relais backup export|import` against a running server over gRPC."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.backup.conftest import Populated
from tests.backup.support import entries, rows
from tests.support.live import LiveStack


def test_the_command_line_exports_then_plans_and_applies_an_import(
    source: Populated, target: LiveStack, tmp_path: Path
) -> None:
    runner = CliRunner()
    output = tmp_path / "relais.zip"
    credentials = ["--token", "admin-token"]
    exported = runner.invoke(
        app, ["backup", "export", "-o", str(output), "--server", source.stack.grpc_target, *credentials]
    )
    planned = runner.invoke(app, ["backup", "import", str(output), "--server", target.grpc_target, *credentials])
    refused = runner.invoke(
        app, ["backup", "import", str(output), "--server", target.grpc_target, "--token", "user-token"]
    )

    assert exported.exit_code == 0, exported.output
    assert "manifest.json" in entries(output.read_bytes())
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.output)
    assert plan["dry_run"] is True and plan["plan"]["tables"]
    assert refused.exit_code == 1 and "required" in refused.output
    # A dry run into the fresh instance: still no account there.
    assert not (tmp_path / "relais.zip.part").exists() and rows(target)["users"] == []
