"""Regenerate gen/ from proto/, or check that gen/ is fresh.

    python tools/generate.py            # rewrite gen/
    python tools/generate.py --check    # exit 1 and list the differences if gen/ is stale

Outputs (all under gen/, never edited by hand):
  python/relais/...            grpcio messages (*_pb2.py, *.pyi) and services (*_pb2_grpc.py)
  python/relais_typed/...      betterproto2 typed messages and clients
  ts/...                       protobuf-es TypeScript
  ts/openapi.ts                the REST routes' types (openapi-typescript), from the bridge's /openapi.json
  python/relais/descriptors.binpb  FileDescriptorSet with source info (comments feed OpenAPI)
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GEN = ROOT / "gen"
WELL_KNOWN = Path(grpc_tools.__file__).parent / "_proto"
BUF = ROOT / "node_modules" / ".bin" / "buf"
OPENAPI_TYPESCRIPT = ROOT / "node_modules" / ".bin" / "openapi-typescript"
# Prints the bridge's OpenAPI document; run with the fresh gen/python first on the path, so the
# document describes the protos being generated, not the modules already imported here.
PRINT_OPENAPI = (
    "import json, sys; from bridge.app import create_app; "
    "json.dump(create_app(upstream='127.0.0.1:1').state.openapi, sys.stdout, indent=1, sort_keys=True)"
)


def own_protos() -> list[str]:
    """Relais' proto files, relative to proto/ (vendored google/ excluded)."""
    files = sorted(PROTO_ROOT.glob("relais/**/*.proto"))
    return [str(path.relative_to(PROTO_ROOT)) for path in files]


def run(command: list[str], cwd: Path = ROOT) -> None:
    # The betterproto2 plugin formats its output with ruff, found on PATH next to python.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")


def generate_python(out: Path) -> None:
    python_out = out / "python"
    python_out.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{WELL_KNOWN}",
            f"--python_out={python_out}",
            f"--pyi_out={python_out}",
            f"--grpc_python_out={python_out}",
            f"--descriptor_set_out={python_out / 'relais' / 'descriptors.binpb'}",
            "--include_source_info",
            "--include_imports",
            *own_protos(),
        ],
        cwd=PROTO_ROOT,
    )
    # protoc writes no __init__.py; regular packages keep setuptools and mypy simple.
    for directory in (python_out / "relais").rglob("*"):
        if directory.is_dir() and directory.name != "__pycache__":
            (directory / "__init__.py").touch()
    (python_out / "relais" / "__init__.py").touch()


def generate_with_buf(out: Path) -> None:
    if not BUF.exists():
        raise SystemExit("buf is missing: run `npm ci` at the repository root")
    run([str(BUF), "generate", "--template", "buf.gen.yaml", "--output", str(out.parent)])


def generate_openapi_types(out: Path) -> None:
    """gen/ts/openapi.ts: `paths`, `components` and `operations` of every REST route, for
    @relais/client's REST client (openapi-fetch)."""
    if not OPENAPI_TYPESCRIPT.exists():
        raise SystemExit("openapi-typescript is missing: run `npm ci` at the repository root")
    python_path = os.pathsep.join(str(path) for path in (out / "python", ROOT, ROOT / "clients" / "python"))
    env = {**os.environ, "PYTHONPATH": python_path}
    printed = subprocess.run(
        [sys.executable, "-c", PRINT_OPENAPI], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if printed.returncode != 0:
        raise SystemExit(f"building the OpenAPI document failed:\n{printed.stderr}")
    with tempfile.TemporaryDirectory() as scratch:
        document = Path(scratch) / "openapi.json"
        document.write_text(printed.stdout, encoding="utf-8")
        run([str(OPENAPI_TYPESCRIPT), str(document), "--output", str(out / "ts" / "openapi.ts"), "--silent"])


def generate(out: Path) -> None:
    """Write every generated file under `out` (which is replaced)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    generate_python(out)
    generate_with_buf(out)
    generate_openapi_types(out)
    for cache in out.rglob("__pycache__"):
        shutil.rmtree(cache)


def differences(expected: Path, actual: Path) -> list[str]:
    """Relative paths that differ between two trees (missing, extra or changed)."""
    found: list[str] = []

    def walk(comparison: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(f"{prefix}{name} (only in fresh output)" for name in comparison.left_only)
        found.extend(f"{prefix}{name} (stale extra file)" for name in comparison.right_only)
        _, mismatch, errors = filecmp.cmpfiles(
            comparison.left, comparison.right, comparison.common_files, shallow=False
        )
        found.extend(f"{prefix}{name} (content differs)" for name in mismatch + errors)
        for name, sub in comparison.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    ignore = ["__pycache__"]
    walk(filecmp.dircmp(str(expected), str(actual), ignore=ignore), "")
    return sorted(found)


def check(gen_dir: Path = GEN) -> list[str]:
    """Regenerate into a temporary directory and compare it with `gen_dir`."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "gen"
        generate(fresh)
        return differences(fresh, gen_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if gen/ is not what proto/ generates")
    args = parser.parse_args()
    if args.check:
        stale = check()
        if stale:
            print("gen/ is stale; run `make gen`. Differences:", *stale, sep="\n  ")
            raise SystemExit(1)
        print("gen/ is fresh")
        return
    generate(GEN)
    print(f"generated {GEN.relative_to(ROOT)}/ from {len(own_protos())} proto files")


if __name__ == "__main__":
    main()
