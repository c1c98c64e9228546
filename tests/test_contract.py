"""The contract pipeline: buf lint, buf breaking, and gen/ freshness."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / "node_modules" / ".bin" / "buf"
sys.path.insert(0, str(ROOT / "tools"))

import generate  # noqa: E402  (tools/ is a script directory, not a package)


def buf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), *args], cwd=ROOT, capture_output=True, text=True)


def test_buf_lint_passes() -> None:
    result = buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_against_the_baseline() -> None:
    result = buf("breaking", "--against", "proto/baseline.binpb")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_catches_a_removed_field(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    system = tmp_path / "proto" / "relais" / "v1" / "system.proto"
    system.write_text(system.read_text().replace("  string version = 2;\n", "  reserved 2;\n"))

    result = subprocess.run(
        [str(BUF), "breaking", "--against", str(ROOT / "proto" / "baseline.binpb")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0 and "version" in result.stdout


def test_gen_is_fresh() -> None:
    stale = generate.check()
    assert not stale, "gen/ is stale; run `make gen`:\n" + "\n".join(stale)


@pytest.mark.parametrize("tamper", ["edit", "delete", "add"])
def test_stale_gen_is_detected(tmp_path: Path, tamper: str) -> None:
    copy = tmp_path / "gen"
    shutil.copytree(ROOT / "gen", copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "python" / "relais" / "v1" / "system_pb2.pyi"
    if tamper == "edit":
        target.write_text(target.read_text() + "\n# hand edit\n")
    elif tamper == "delete":
        target.unlink()
    else:
        (copy / "ts" / "relais" / "v1" / "extra_pb.ts").write_text("// stray\n")

    stale = generate.check(copy)

    assert len(stale) == 1
    assert ("system_pb2.pyi" in stale[0]) or ("extra_pb.ts" in stale[0])
