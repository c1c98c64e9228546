"""deploy/ is an example for production (docs/scaling.md): each file must at least be accepted by
the program it configures, and name only settings and options Relais has."""

from __future__ import annotations

import datetime
import re
import shlex
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cli.main import app
from server.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def _self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relais.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_haproxy_accepts_the_example_configuration(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    certificate = tmp_path / "relais.pem"
    certificate.write_bytes(_self_signed_pem())
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        (DEPLOY / "haproxy" / "haproxy.cfg").read_text().replace("/etc/haproxy/certs/relais.pem", str(certificate))
    )
    checked = subprocess.run([haproxy, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _assignments(path: Path) -> dict[str, str]:
    """RELAIS_* variables the file sets, commented-out examples included."""
    found = {}
    for line in path.read_text().splitlines():
        if match := re.fullmatch(r"#?\s*(RELAIS_[A-Z0-9_]+)=(.*)", line.strip()):
            found[match[1]] = match[2]
    return found


def test_the_environment_example_names_only_settings_and_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    example = DEPLOY / "relais.env.example"
    assigned = _assignments(example)
    unknown = {name for name in assigned if name.removeprefix("RELAIS_").lower() not in Settings.model_fields}
    assert unknown == set()
    active = {
        name: value
        for line in example.read_text().splitlines()
        if not line.startswith("#") and "=" in line
        for name, value in [line.split("=", 1)]
    }
    for name, value in active.items():
        monkeypatch.setenv(name, value)
    settings = Settings(admin_email=None, admin_password=None)
    assert settings.documents_path == Path("/srv/relais/documents")


def _serve_options() -> set[str]:
    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]
    return {option for parameter in serve.params for option in parameter.opts}


@pytest.mark.parametrize("unit", sorted((DEPLOY / "systemd").glob("*.service")), ids=lambda path: path.name)
def test_systemd_units_run_relais_serve_with_its_own_options(unit: Path) -> None:
    line = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    arguments = shlex.split(line.removeprefix("ExecStart="))
    assert arguments[1:3] == ["serve", "--only"]
    options = {argument for argument in arguments if argument.startswith("--")}
    assert options <= _serve_options()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_redis_accepts_the_example_and_lets_no_one_in_without_a_password(tmp_path: Path) -> None:
    port = _free_port()
    acl = tmp_path / "users.acl"
    acl.write_text((DEPLOY / "redis" / "users.acl").read_text())
    config = (DEPLOY / "redis" / "redis.conf").read_text()
    config = config.replace("/etc/redis/users.acl", str(acl)).replace("port 6379", f"port {port}")
    config = config.replace("bind 0.0.0.0", "bind 127.0.0.1")
    (tmp_path / "redis.conf").write_text(config)
    log = tmp_path / "redis.log"
    with log.open("wb") as output:
        server = subprocess.Popen(["redis-server", str(tmp_path / "redis.conf")], cwd=tmp_path, stdout=output)
    try:
        client = redis.Redis(port=port, socket_connect_timeout=1, retry_on_error=None, retry=None)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
            except redis.AuthenticationError:
                break  # up, and the default user is off
            except redis.ConnectionError:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, username="relais", password="", retry=None).ping()
    finally:
        server.terminate()
        server.wait(timeout=10)
