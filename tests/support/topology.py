"""A scaled-out Relais on one machine, behind a real load balancer (HAProxy, from Debian).

    .venv/bin/python -m tests.support.topology      # starts it, prints its addresses, runs until Ctrl-C

What runs, all on loopback:
- three gRPC replicas (`relais serve --only grpc`) and two bridges (`relais serve --only bridge`),
  sharing the local PostgreSQL (a schema of their own), the local Redis (keys and channels under a
  prefix of their own), one Milvus Lite server reached by URI (as a Milvus cluster would be) and
  one inference backend (the Triton stand-in, speaking Triton's gRPC protocol);
- HAProxy in front: HTTP (REST, SSE, WebSocket, Socket.IO) balanced over the bridges, gRPC (HTTP/2)
  balanced per call over the replicas, which is also the bridges' upstream. Its statistics tell
  which replica served what (`Topology.served`).

The tests in tests/scaleout use it; `docs/scaling.md` explains the production shape it stands for.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import psycopg

from server.ports import unused_port
from server.retrieval.lite import server_command
from tests.conftest import POSTGRES_URL
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

RELAIS = Path(sys.executable).parent / "relais"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN = ("scale@relais.test", "scale-admin-pass-1234")
# The stand-in model every replica generates with: 40 tokens, one every 50 ms.
MODEL = StandInModel(name="standin", token_delay=0.05)


class Process:
    """One child process, its output in a log file."""

    def __init__(self, name: str, command: list[str], log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._output = self.log.open("w")
        self.process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=self._output, stderr=subprocess.STDOUT
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        if not self.alive:
            raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n{self.log.read_text()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        self.process.kill()
        self.process.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._output.close()


@dataclass
class Replica:
    """A gRPC replica or a bridge, with the name HAProxy knows it by."""

    name: str
    port: int
    process: Process

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _wait(until: str, ready: Callable[[], bool], processes: list[Process], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.check()
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError(f"{until} not ready after {timeout:.0f} s")


def _grpc_ready(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=1)
        except grpc.FutureTimeoutError:
            return False
        return True


def _http_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.TransportError:
        return False


def haproxy_config(
    http_port: int, grpc_port: int, stats_port: int, bridges: list[Replica], replicas: list[Replica]
) -> str:
    """HAProxy's configuration: what a production balancer needs for Relais (docs/scaling.md)."""
    bridge_lines = "\n".join(
        f"    server {bridge.name} {bridge.target} check inter 500ms fall 2 rise 1" for bridge in bridges
    )
    replica_lines = "\n".join(
        f"    server {replica.name} {replica.target} proto h2 check inter 500ms fall 2 rise 1" for replica in replicas
    )
    return f"""\
global
    # Within the default file-descriptor limit of a test machine (two descriptors per connection).
    maxconn 4000

defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    # WebSockets and Socket.IO, once upgraded.
    timeout tunnel 1h
    timeout http-keep-alive 30s
    # A replica that refuses the connection (killed, restarting): the call goes to another one.
    retries 3
    option redispatch 1

frontend http
    bind 127.0.0.1:{http_port}
    option forwardfor
    default_backend bridges

frontend grpc
    bind 127.0.0.1:{grpc_port} proto h2
    default_backend replicas

backend bridges
    balance roundrobin
    # Which bridge answered, for tests and for operators reading a client's report.
    http-response set-header X-Relais-Bridge %s
{bridge_lines}

backend replicas
    # One gRPC call per choice: HAProxy balances each HTTP/2 stream, not the connection.
    balance roundrobin
{replica_lines}

frontend stats
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"""


@dataclass
class Topology:
    url: str  # the balancer's HTTP address: what clients use
    grpc_target: str  # the balancer's gRPC address
    stats_url: str
    database_url: str
    prefix: str  # of this topology's Redis keys and channels
    replicas: list[Replica]
    bridges: list[Replica]
    triton: LiveTriton
    directory: Path
    milvus: Process
    balancer: Process
    extra: list[Process] = field(default_factory=list)

    def servers(self) -> list[dict[str, str]]:
        """HAProxy's statistics, one row per server (its name in `svname`)."""
        return _servers(self.stats_url)

    def counts(self) -> dict[str, int]:
        """Requests each server has been sent so far, by HAProxy's name for it."""
        return {row["svname"]: int(row["stot"] or 0) for row in self.servers()}

    def serving(self) -> dict[str, int]:
        """Requests each server is serving right now (open streams included)."""
        return {row["svname"]: int(row["scur"] or 0) for row in self.servers()}

    def served(self, before: dict[str, int]) -> set[str]:
        """The gRPC replicas that were sent something since `before` (a `counts()`)."""
        after = self.counts()
        return {replica.name for replica in self.replicas if after[replica.name] > before.get(replica.name, 0)}

    def replica(self, name: str) -> Replica:
        return next(replica for replica in self.replicas if replica.name == name)

    def wait_down(self, name: str, timeout: float = 10) -> None:
        """Until HAProxy's health checks took `name` out of rotation."""

        def down() -> bool:
            return any(row["svname"] == name and row["status"].startswith("DOWN") for row in self.servers())

        _wait(f"{name} down", down, [], timeout)


def _servers(stats_url: str) -> list[dict[str, str]]:
    rows = csv.DictReader(io.StringIO(httpx.get(f"{stats_url};csv").text.lstrip("# ")))
    return [row for row in rows if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] != "stats"]


def _schema(name: str) -> str:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    return f"{POSTGRES_URL}?options={urllib.parse.quote(f'-csearch_path={name}')}"


def _drop_schema(name: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        connection.execute(f'DROP SCHEMA IF EXISTS "{name}_dbos" CASCADE')


@contextlib.contextmanager
def topology(
    directory: Path | None = None, *, replicas: int = 3, bridges: int = 2, **extra_env: str
) -> Iterator[Topology]:
    """Start everything, wait until the balancer answers, stop everything at the end."""
    directory = directory or Path(tempfile.mkdtemp(prefix="relais-topology-"))
    directory.mkdir(parents=True, exist_ok=True)
    schema = f"relais_scale_{uuid.uuid4().hex[:10]}"
    database_url = _schema(schema)
    prefix = f"test:{uuid.uuid4().hex}:"
    triton = LiveTriton([MODEL]).start()
    started: list[Process] = []
    try:
        milvus_port = unused_port()
        milvus = Process("milvus", server_command(directory / "milvus", milvus_port), directory)
        started.append(milvus)
        env = {
            "RELAIS_DATABASE_URL": database_url,
            "RELAIS_REDIS_URL": REDIS_URL,
            "RELAIS_EVENTS_CHANNEL_PREFIX": prefix + "events:",
            "RELAIS_JOURNAL_PREFIX": prefix + "journal:",
            "RELAIS_RATE_LIMIT_PREFIX": prefix + "rl:",
            "RELAIS_MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
            # The volume every replica mounts (docs/scaling.md): documents' bytes and backups.
            "RELAIS_DOCUMENTS_DIR": str(directory / "shared" / "documents"),
            "RELAIS_BACKUPS_DIR": str(directory / "shared" / "backups"),
            "RELAIS_MILVUS_COLLECTION": f"scale_{uuid.uuid4().hex[:10]}",
            "RELAIS_MODELS": json.dumps(
                [{"key": MODEL.name, "backend": "triton", "url": triton.url, "model_name": MODEL.name}]
            ),
            "RELAIS_LLM_PRELOAD": "false",
            "RELAIS_RETRIEVAL_PRELOAD": "false",
            "RELAIS_PLUGINS_SHIPPED": "[]",
            "RELAIS_BRIDGE_SECRET": secrets.token_urlsafe(32),
            "RELAIS_ADMIN_EMAIL": ADMIN[0],
            "RELAIS_ADMIN_PASSWORD": ADMIN[1],
            **extra_env,
        }
        http_port, grpc_port, stats_port = unused_port(), unused_port(), unused_port()

        def grpc_replica(index: int) -> Replica:
            port = unused_port()
            data = str(directory / f"replica-{index}")
            command = [str(RELAIS), "serve", "--only", "grpc", "--grpc-port", str(port), "--data-dir", data]
            process = Process(f"r{index}", command, directory, env)
            started.append(process)
            return Replica(f"r{index}", port, process)

        _wait("milvus", lambda: _grpc_ready(f"127.0.0.1:{milvus_port}"), [milvus], 120)
        # The first replica alone: it runs the migrations and stores the signing key the others read.
        fleet = [grpc_replica(0)]
        _wait("r0", lambda: _grpc_ready(fleet[0].target), [fleet[0].process], 180)
        fleet += [grpc_replica(index) for index in range(1, replicas)]
        front: list[Replica] = []
        for index in range(bridges):
            port = unused_port()
            command = [
                str(RELAIS), "serve", "--only", "bridge", "--upstream", f"127.0.0.1:{grpc_port}",
                "--http-port", str(port), "--data-dir", str(directory / f"bridge-{index}"),
            ]  # fmt: skip
            bridge_env = {**env, "RELAIS_TRUSTED_PROXIES": '["127.0.0.1"]'}
            process = Process(f"b{index}", command, directory, bridge_env)
            started.append(process)
            front.append(Replica(f"b{index}", port, process))
        config = directory / "haproxy.cfg"
        config.write_text(haproxy_config(http_port, grpc_port, stats_port, front, fleet))
        balancer = Process("haproxy", [HAPROXY, "-db", "-f", str(config)], directory)
        started.append(balancer)
        everyone = [replica.process for replica in fleet + front] + [balancer, milvus]
        for replica in fleet[1:]:
            _wait(replica.name, functools.partial(_grpc_ready, replica.target), everyone, 180)
        for bridge in front:
            _wait(bridge.name, functools.partial(_http_ready, f"http://{bridge.target}/openapi.json"), everyone, 180)
        stats_url = f"http://127.0.0.1:{stats_port}/stats"
        result = Topology(
            url=f"http://127.0.0.1:{http_port}",
            grpc_target=f"127.0.0.1:{grpc_port}",
            stats_url=stats_url,
            database_url=database_url,
            prefix=prefix,
            replicas=fleet,
            bridges=front,
            triton=triton,
            directory=directory,
            milvus=milvus,
            balancer=balancer,
        )

        def all_up() -> bool:
            servers = _servers(stats_url)
            return len(servers) == replicas + bridges and all(row["status"] == "UP" for row in servers)

        _wait("the balancer's health checks", lambda: _http_ready(stats_url) and all_up(), everyone, 60)
        yield result
    finally:
        # Bridges first (they hold streams open to the replicas), the balancer, replicas, Milvus.
        for process in sorted(started, key=lambda p: "bhrm".index(p.name[0])):
            process.stop()
        triton.close()
        _drop_schema(schema)


def main() -> None:
    with topology() as running:
        print(f"HTTP (REST, SSE, WebSocket) {running.url}")
        print(f"gRPC                        {running.grpc_target}")
        print(f"HAProxy statistics          {running.stats_url}")
        print(f"administrator               {ADMIN[0]} / {ADMIN[1]}")
        print(f"logs                        {running.directory}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
