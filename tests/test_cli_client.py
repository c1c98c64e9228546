"""The client commands of `relais`, driven in a real terminal (pexpect's pty) against a live stack."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pexpect
import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.live import LiveStack

RELAIS = str(Path(sys.executable).parent / "relais")


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return tmp_path / "config"


def cli_env(config_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RELAIS_API_KEY", "RELAIS_TOKEN", "RELAIS_SERVER")}
    return {**env, "RELAIS_CONFIG_DIR": str(config_dir), "COLUMNS": "200"}


def spawn(config_dir: Path, *args: str) -> pexpect.spawn:
    return pexpect.spawn(RELAIS, list(args), env=cli_env(config_dir), encoding="utf-8", timeout=60)


def run(config_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RELAIS, *args], input=stdin, env=cli_env(config_dir), capture_output=True, text=True, timeout=300
    )


def login(stack: LiveStack, config_dir: Path) -> None:
    terminal = spawn(config_dir, "login", "--server", stack.grpc_target)
    terminal.expect("Email")
    terminal.sendline(ADMIN_EMAIL)
    terminal.expect("Password")
    terminal.sendline(ADMIN_PASSWORD)
    terminal.expect("logged in to")
    terminal.expect(pexpect.EOF)
    terminal.close()
    assert terminal.exitstatus == 0


def test_login_prompts_hides_the_password_and_saves_a_private_token(stack: LiveStack, config_dir: Path) -> None:
    terminal = spawn(config_dir, "login", "--server", stack.grpc_target)
    terminal.expect("Email")
    terminal.sendline(ADMIN_EMAIL)
    terminal.expect("Password")
    terminal.sendline(ADMIN_PASSWORD)
    terminal.expect(pexpect.EOF)
    terminal.close()

    assert terminal.exitstatus == 0
    assert ADMIN_PASSWORD not in (terminal.before or "")  # not echoed
    saved = config_dir / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert ADMIN_PASSWORD not in saved.read_text()


def test_a_wrong_password_is_one_clear_line(stack: LiveStack, config_dir: Path) -> None:
    result = run(config_dir, "login", "--server", stack.grpc_target, "--email", ADMIN_EMAIL, "--password-stdin",
                 stdin="not-the-password\n")  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert not (config_dir / "credentials.json").exists()


def test_a_password_is_never_taken_from_a_flag(config_dir: Path) -> None:
    result = run(config_dir, "login", "--password", ADMIN_PASSWORD)
    assert result.returncode == 2


def test_commands_without_a_login_say_how_to_sign_in(stack: LiveStack, config_dir: Path) -> None:
    result = run(config_dir, "keys", "list", "--server", stack.grpc_target)
    assert result.returncode == 1
    assert "relais login" in result.stderr


def test_models_users_and_health_after_login(stack: LiveStack, config_dir: Path) -> None:
    login(stack, config_dir)

    models = run(config_dir, "models")
    users = run(config_dir, "users", "list", "--search", "admin@")
    health = run(config_dir, "health")

    assert models.returncode == 0 and "auto" in models.stdout.split()
    assert users.returncode == 0 and ADMIN_EMAIL in users.stdout
    assert "version" in health.stdout and health.returncode in (0, 1)


def test_keys_create_list_and_revoke(stack: LiveStack, config_dir: Path) -> None:
    login(stack, config_dir)

    created = run(config_dir, "keys", "create", "cli-test", "--scope", "users:read")
    secret = created.stdout.strip()
    listed = run(config_dir, "keys", "list")
    key_line = next(line for line in listed.stdout.splitlines() if "cli-test" in line)
    key_id = key_line.split()[0]
    revoked = run(config_dir, "keys", "revoke", key_id)
    after = run(config_dir, "keys", "list", "--revoked")

    assert created.returncode == 0 and secret and "not shown again" in created.stderr
    assert "users:read" in key_line and secret not in listed.stdout
    assert revoked.returncode == 0
    assert "revoked" in next(line for line in after.stdout.splitlines() if line.startswith(key_id + " "))
    # The secret works as a credential, and a revoked one no longer does.
    env_run = subprocess.run(
        [RELAIS, "keys", "list"], env={**cli_env(config_dir), "RELAIS_API_KEY": secret}, capture_output=True, text=True
    )
    assert env_run.returncode == 1


def test_logout_ends_the_session_and_forgets_the_token(stack: LiveStack, config_dir: Path) -> None:
    login(stack, config_dir)
    token = (config_dir / "credentials.json").read_text()

    result = run(config_dir, "logout")

    assert result.returncode == 0 and not (config_dir / "credentials.json").exists()
    assert "access_token" in token


@pytest.mark.slow
def test_ask_reads_a_piped_question_and_streams_the_answer(stack: LiveStack, config_dir: Path) -> None:
    login(stack, config_dir)

    result = run(config_dir, "ask", "--max-tokens", "8", stdin="The capital of France is\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.slow
def test_chat_streams_replies_and_ctrl_c_stops_one(stack: LiveStack, config_dir: Path) -> None:
    login(stack, config_dir)
    terminal = spawn(config_dir, "chat")
    terminal.timeout = 240

    terminal.expect("you> ")
    terminal.sendline("Say hello.")
    terminal.expect("assistant> ")
    terminal.expect("you> ")  # the whole reply came back
    reply = terminal.before or ""
    terminal.sendline("Write a very long story about a lighthouse keeper and the sea.")
    terminal.expect("assistant> ")
    terminal.expect(r"\S")  # a first token arrived
    terminal.sendintr()
    terminal.expect(r"\[stopped\]")
    terminal.expect("you> ")  # still in the conversation
    terminal.sendline("/new")
    terminal.expect("new conversation")
    terminal.sendline("/exit")
    terminal.expect(pexpect.EOF)
    terminal.close()

    assert reply.strip()
    assert terminal.exitstatus == 0


def test_agents_lists_public_agents_and_your_own(stack: LiveStack, config_dir: Path) -> None:
    from relais_client import connect
    from relais_typed.relais.v1 import CreateAgentRequest, LoginRequest

    suffix = uuid.uuid4().hex[:6]
    with connect(stack.grpc_target) as anonymous:
        token = anonymous.auth.login(LoginRequest(email=ADMIN_EMAIL, password=ADMIN_PASSWORD)).access_token
    with connect(stack.grpc_target, token=token) as relais:
        relais.agents.create_agent(CreateAgentRequest(name=f"public-{suffix}", system_prompt="Hi.", is_public=True))
        relais.agents.create_agent(CreateAgentRequest(name=f"private-{suffix}", system_prompt="Hi.", is_public=False))
    login(stack, config_dir)

    public = run(config_dir, "agents")
    mine = run(config_dir, "agents", "--mine")

    assert public.returncode == 0 and f"public-{suffix}" in public.stdout and f"private-{suffix}" not in public.stdout
    assert mine.returncode == 0 and f"private-{suffix}" in mine.stdout
    assert "private" in next(line for line in mine.stdout.splitlines() if f"private-{suffix}" in line).split()


def test_users_deactivate_stops_a_sign_in_and_activate_restores_it(stack: LiveStack, config_dir: Path) -> None:
    from relais_client import connect
    from relais_typed.relais.v1 import RegisterRequest

    email, password = f"cli-{uuid.uuid4().hex[:8]}@relais.test", "cli-password-42"
    with connect(stack.grpc_target) as anonymous:
        user_id = anonymous.auth.register(RegisterRequest(email=email, password=password)).id
    login(stack, config_dir)

    def sign_in() -> int:
        return run(config_dir, "login", "--email", email, "--password-stdin", stdin=password + "\n").returncode

    deactivated = run(config_dir, "users", "deactivate", str(user_id))
    refused = sign_in()
    listed = run(config_dir, "users", "list", "--search", email)
    activated = run(config_dir, "users", "activate", str(user_id))

    assert deactivated.returncode == 0 and refused == 1
    assert "inactive" in listed.stdout
    assert activated.returncode == 0 and sign_in() == 0


def test_admin_create_states_the_password_rules_before_asking(tmp_path: Path, config_dir: Path) -> None:
    terminal = spawn(config_dir, "admin", "create", "--data-dir", str(tmp_path / "data"))
    terminal.timeout = 120

    terminal.expect("Email")
    terminal.sendline("first-admin@relais.test")
    terminal.expect(r"The password needs 8 to \d+ characters, at least one letter and one digit")
    terminal.expect("Password")
    terminal.sendline("short")
    terminal.expect("confirmation")
    terminal.sendline("short")
    terminal.expect("must be at least 8 characters")
    terminal.expect("Password")
    terminal.sendline("a-good-password-7")
    terminal.expect("confirmation")
    terminal.sendline("a-good-password-7")
    terminal.expect("administrator first-admin@relais.test created")
    terminal.expect(pexpect.EOF)
    terminal.close()

    assert terminal.exitstatus == 0


def test_admin_create_takes_no_password_flag(tmp_path: Path, config_dir: Path) -> None:
    result = run(config_dir, "admin", "create", "--email", "a@relais.test", "--password", "a-good-password-7")
    assert result.returncode == 2 and "No such option" in result.stderr


def test_serve_on_a_port_in_use_is_one_clear_line(tmp_path: Path, config_dir: Path) -> None:
    import socket

    from server.ports import unused_port

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", unused_port()))
        holder.listen()
        busy = holder.getsockname()[1]
        result = run(config_dir, "serve", "--http-port", str(busy), "--grpc-port", str(unused_port()),
                     "--data-dir", str(tmp_path))  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: 127.0.0.1:{busy} is already in use; choose another with --http-port (or stop what holds it)"
    ]
