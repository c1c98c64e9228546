"""`relais plugin new | keygen | pack | sign`, and what they make installing and running; a
plugin with a requirement packs its wheel and installs it offline from its wheelhouse."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from cli.main import app
from server.auth import Principal
from server.plugins.signing import private_key_pem
from tests.plugins.support import entries, upload, wait_until, write_plugin
from tests.support.live import LiveStack

runner = CliRunner()


def test_keygen_writes_a_private_key_and_prints_the_public_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plugin", "keygen", "-o", str(tmp_path / "key.pem")])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "key.pem").stat().st_mode & 0o777 == 0o600
    assert len(result.output.strip()) == 44  # base64 of 32 bytes
    again = runner.invoke(app, ["plugin", "keygen", "-o", str(tmp_path / "key.pem")])
    assert again.exit_code != 0 and "refusing to overwrite" in again.output


@pytest.mark.slow
def test_new_then_pack_and_sign_then_install_and_run(
    tmp_path: Path, plugin_key: Ed25519PrivateKey, http: httpx.Client, stack: LiveStack
) -> None:
    key = tmp_path / "key.pem"
    key.write_bytes(private_key_pem(plugin_key))

    created = runner.invoke(app, ["plugin", "new", "weather", "--dir", str(tmp_path / "weather")])
    packed = runner.invoke(app, ["plugin", "pack", str(tmp_path / "weather"), "-o", str(tmp_path / "w.zip")])
    signed = runner.invoke(app, ["plugin", "sign", str(tmp_path / "w.zip"), "--key", str(key)])

    assert created.exit_code == packed.exit_code == signed.exit_code == 0, (
        created.output + packed.output + signed.output
    )
    assert "unsigned" in packed.output and "signed by" in signed.output
    bundle = (tmp_path / "w.zip").read_bytes()
    assert {"manifest.json", "manifest.sig", "descriptors.binpb", "weather_plugin/main.py"} <= set(entries(bundle))
    assert upload(http, bundle).status_code == 201
    try:
        assert http.post("/plugins/weather/enable").json()["state"] == "running"
        wait_until(lambda: http.post("/weather/echo", json={"text": "hi"}).status_code == 200)
        assert http.post("/weather/echo", json={"text": "hi"}).json() == {"text": "hi", "caller": "admin"}
        assert stack.server.plugins is not None
        [action] = [a for a in stack.server.plugins.actions() if a.name == "weather.echo"]
        assert stack.run(action.run({"text": "x"}, Principal(subject="user:1"))) == {"text": "x"}
    finally:
        http.delete("/plugins/weather")


def test_pack_reports_what_is_wrong(tmp_path: Path) -> None:
    assert runner.invoke(app, ["plugin", "new", "bad", "--dir", str(tmp_path / "bad")]).exit_code == 0
    toml = tmp_path / "bad" / "plugin.toml"
    toml.write_text(toml.read_text().replace('api_prefix = "/bad"', 'api_prefix = "/elsewhere"'))

    result = runner.invoke(app, ["plugin", "pack", str(tmp_path / "bad")])

    assert result.exit_code == 1 and "/bad/echo lies outside the plugin's api_prefix /elsewhere" in result.output


def _greeting_wheel(folder: Path) -> Path:
    """A tiny pure-Python distribution, built into a wheel offline."""
    source = folder / "greeting-src"
    (source / "relais_test_greeting").mkdir(parents=True)
    (source / "relais_test_greeting" / "__init__.py").write_text("def greet(name):\n    return f'Hi {name}!'\n")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "relais-test-greeting"\nversion = "1.0"\n'
    )
    wheels = folder / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-index", "--no-build-isolation", "--no-deps", "-w"]
    subprocess.run([*command, str(wheels), str(source)], check=True, capture_output=True)
    return wheels


@pytest.mark.slow
def test_requirements_install_offline_from_the_wheelhouse(
    tmp_path: Path, plugin_key: Ed25519PrivateKey, http: httpx.Client, stack: LiveStack
) -> None:
    wheels = _greeting_wheel(tmp_path)
    main = (
        "from relais_plugin import Plugin\nfrom relais_test_greeting import greet\nplugin = Plugin()\n"
        "@plugin.action('greet')\nasync def run(params, caller):\n    return greet(params['name'])\nplugin.run()\n"
    )
    toml = 'requirements = ["relais-test-greeting==1.0"]\n[[actions]]\nname = "greet"\n'
    folder = write_plugin(tmp_path / "wheely", "wheely", main, toml=toml)
    key = tmp_path / "key.pem"
    key.write_bytes(private_key_pem(plugin_key))

    offline = ["--find-links", str(wheels), "--no-index"]
    result = runner.invoke(
        app, ["plugin", "pack", str(folder), "-o", str(tmp_path / "wheely.zip"), "-k", str(key), *offline]
    )

    assert result.exit_code == 0, result.output
    bundle = (tmp_path / "wheely.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert "wheelhouse/relais_test_greeting-1.0-py3-none-any.whl" in manifest["files"]
    assert upload(http, bundle).status_code == 201
    try:
        assert http.post("/plugins/wheely/enable").json()["state"] == "running"
        assert stack.server.plugins is not None
        [action] = [a for a in stack.server.plugins.actions() if a.name == "wheely.greet"]
        assert stack.run(action.run({"name": "Ann"}, Principal(subject="user:1"))) == "Hi Ann!"
    finally:
        http.delete("/plugins/wheely")
