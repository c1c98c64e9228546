"""The SDKs as their users get them: each is built with its one command (`python -m build`,
`npm pack`), installed into a clean temporary environment (a fresh virtualenv; a fresh npm project)
and run against a live server: a unary call, a server stream, an error."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support.live import LiveStack

ROOT = Path(__file__).resolve().parents[2]
PYTHON_CLIENT = ROOT / "clients" / "python"
TS_CLIENT = ROOT / "clients" / "ts"
# The versions the package itself is built with (clients/ts/package.json).
TS_TOOLS = ["typescript@~5.9.3", "@types/node@^20.19.0"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    data = tmp_path_factory.mktemp("packages")
    settings = stack_settings(
        data, f"sqlite:///{data / 'relais.db'}", admin_email=ADMIN_EMAIL, admin_password=ADMIN_PASSWORD
    )
    stack = LiveStack(settings).start()
    yield stack
    stack.stop()


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this checkout on the Python path: the installed package or nothing."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def test_the_python_client_builds_installs_alone_and_calls_a_live_server(live: LiveStack, tmp_path: Path) -> None:
    run([sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(PYTHON_CLIENT)], cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("relais_client-*.whl"))
    assert next((tmp_path / "dist").glob("relais_client-*.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith("METADATA"))).decode()
    requires = {
        re.match(r"[\w.-]+", line.removeprefix("Requires-Dist:").strip()).group()  # type: ignore[union-attr]
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:")
    }
    assert requires == {"grpcio", "protobuf", "betterproto2"}

    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)], cwd=tmp_path,
        env=clean_env())  # fmt: skip
    check = shutil.copy(Path(__file__).with_name("python_package_check.py"), tmp_path / "check.py")
    output = run([python, str(check), live.grpc_target, ADMIN_EMAIL, ADMIN_PASSWORD], cwd=tmp_path, env=clean_env())

    assert output.strip().endswith("ok")


def test_the_typescript_client_packs_installs_and_passes_its_tests_against_a_live_server(
    live: LiveStack, tmp_path: Path
) -> None:
    if not (TS_CLIENT / "node_modules" / ".bin" / "tsc").exists():
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TS_CLIENT)
    packed = json.loads(run(["npm", "pack", "--json", "--pack-destination", str(tmp_path)], cwd=TS_CLIENT))
    tarball = tmp_path / packed[0]["filename"]
    shipped = {entry["path"] for entry in packed[0]["files"]}
    assert {"dist/index.js", "dist/index.d.ts", "dist/rest.js", "dist/rest.d.ts"} <= shipped
    assert not any(path.startswith("src/") for path in shipped)

    project = tmp_path / "app"
    (project / "test").mkdir(parents=True)
    (project / "package.json").write_text(json.dumps({"name": "app", "private": True, "type": "module"}))
    (project / "tsconfig.json").write_text(
        json.dumps(
            {
                "compilerOptions": {
                    "target": "ES2022",
                    "module": "NodeNext",
                    "moduleResolution": "NodeNext",
                    "strict": True,
                    "outDir": "out",
                    "types": ["node"],
                    "lib": ["ES2022", "DOM"],
                },
                "include": ["test"],
            }
        )
    )
    shutil.copy(TS_CLIENT / "test" / "client.test.ts", project / "test")
    run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(tarball), *TS_TOOLS], cwd=project)
    run([str(project / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=project)  # the .d.ts type-check the test
    env = {
        **os.environ,
        "RELAIS_GRPC_URL": f"http://{live.grpc_target}",
        "RELAIS_HTTP_URL": live.base_url,
        "RELAIS_EMAIL": ADMIN_EMAIL,
        "RELAIS_PASSWORD": ADMIN_PASSWORD,
    }
    output = run(["node", "--test", "out/client.test.js"], cwd=project, env=env)

    assert "# fail 0" in output and "# pass 4" in output, output
