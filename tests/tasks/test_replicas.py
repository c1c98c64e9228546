"""Exactly once across replicas: three `relais serve --only grpc` processes on one PostgreSQL
database (a schema of their own) run a 1-second interval task for 30 seconds. Every tick runs
once, none twice, none missed, also when one replica is killed (SIGKILL) while it runs a tick.

What is counted: each finished run publishes one task.completed on Redis (read here from the
channel itself) and is kept in the task's history (read over gRPC from a surviving replica)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
import redis
from relais.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc

from server.ports import unused_port
from tests.conftest import POSTGRES_URL
from tests.support.triton_live import LiveTriton
from tests.support.triton_standin import StandInModel

RELAIS = Path(sys.executable).parent / "relais"
ADMIN = ("replicas@relais.test", "replicas-pass-1234")
SECONDS = 30


@contextlib.contextmanager
def schema() -> Iterator[str]:
    name = f"relais_replicas_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE')
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}_dbos" CASCADE')


class Replica:
    def __init__(self, index: int, env: dict[str, str], data: Path) -> None:
        self.port = unused_port()
        self.log = data / f"replica-{index}.log"
        self._output = self.log.open("w")
        self.process = subprocess.Popen(
            [
                str(RELAIS),
                "serve",
                "--only",
                "grpc",
                "--grpc-port",
                str(self.port),
                "--data-dir",
                str(data / str(index)),
            ],
            env={**os.environ, **env},
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            with grpc.insecure_channel(self.target) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=1)
                    return
                except grpc.FutureTimeoutError:
                    continue
        raise AssertionError(f"replica on {self.target} never came up:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


def executor_of(replica: Replica, database_url: str) -> str:
    """The executor id a replica beats under (host:pid:random)."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT id FROM task_executors").fetchall()
    return next(row[0] for row in rows if row[0].split(":")[1] == str(replica.process.pid))


def running_on(database_url: str, executor: str, task_id: str) -> str | None:
    """The run of `task_id` the executor is running now, if any (not a built-in task's: their
    runs are kept in their own task's history)."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT run_id FROM task_running WHERE executor_id = %s AND run_id LIKE %s",
            (executor, f"%:{task_id}:%"),
        ).fetchone()
    return str(row[0]) if row else None


class Heard:
    """task.completed and task.failed as published on Redis, read from the channels directly."""

    def __init__(self, prefix: str) -> None:
        self._client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(f"{prefix}task.completed", f"{prefix}task.failed")
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message:
                self.events.append((message["channel"].decode(), json.loads(message["data"])))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pubsub.close()
        self._client.close()


def payload(wire: dict[str, Any]) -> dict[str, Any]:
    """The event's fields (the bus sends {"origin", "ts", "data"})."""
    return dict(wire["data"])


@pytest.mark.slow
def test_three_replicas_run_each_tick_exactly_once_even_when_one_is_killed(tmp_path: Path) -> None:
    triton = LiveTriton([StandInModel(name="slow", token_delay=0.04)]).start()
    prefix = f"test:{uuid.uuid4().hex}:"
    heard = Heard(prefix)
    replicas: list[Replica] = []
    try:
        with schema() as name:
            database_url = f"{POSTGRES_URL}?options={urllib.parse.quote(f'-csearch_path={name}')}"
            env = {
                "RELAIS_DATABASE_URL": database_url,
                "RELAIS_REDIS_URL": "redis://127.0.0.1:6379/0",
                "RELAIS_EVENTS_CHANNEL_PREFIX": prefix,
                "RELAIS_ADMIN_EMAIL": ADMIN[0],
                "RELAIS_ADMIN_PASSWORD": ADMIN[1],
                "RELAIS_LLM_PRELOAD": "false",
                "RELAIS_RETRIEVAL_PRELOAD": "false",
                "RELAIS_MODELS": json.dumps(
                    [{"key": "slow", "backend": "triton", "url": triton.url, "model_name": "slow"}]
                ),
                "RELAIS_LLM_DEFAULT_MAX_TOKENS": "8",
                "RELAIS_TASKS_HEARTBEAT_SECONDS": "0.5",
                "RELAIS_TASKS_DEAD_AFTER_SECONDS": "3",
                "RELAIS_TASKS_REFRESH_SECONDS": "0.5",
                "RELAIS_RATE_LIMIT_ADMIN": "100000/minute",
            }
            # One after the other: the first runs the migrations.
            for index in range(3):
                replicas.append(Replica(index, env, tmp_path))
                replicas[-1].wait_ready()
            result = _run_for_30_seconds(replicas, database_url)
    finally:
        heard.close()
        for replica in replicas:
            replica.stop()
        triton.close()

    runs, killed, executors, paused_at, created_at = result
    per_replica = Counter(executors.index(run.executor) for run in runs if run.executor in executors)
    print(f"ticks={len(runs)} per replica={dict(per_replica)} killed run={killed}")
    planned = sorted(datetime.fromisoformat(run.planned_at.ToJsonString().replace("Z", "+00:00")) for run in runs)
    # None twice: one history entry per tick (run ids are the ticks), one event per run.
    assert len(planned) == len(set(planned))
    events = Counter(
        payload(data)["result"]["run_id"] for _, data in heard.events if payload(data)["task_id"] == "tick"
    )
    assert set(events.values()) == {1}, events
    assert set(events) == {run.id for run in runs}
    # None missed: every second from the first tick to the pause (a tick due at the very
    # moment of the pause may find the task paused: the second before it is the last counted).
    first = created_at + timedelta(seconds=1)
    last = paused_at - timedelta(seconds=1)
    expected = [first + timedelta(seconds=n) for n in range(int((last - first).total_seconds()) + 1)]
    assert planned[: len(expected)] == expected, (planned, expected)
    assert len(expected) >= SECONDS - 2
    assert {run.status for run in runs} == {task_pb2.TASK_RUN_STATUS_SUCCESS}
    # The killed replica's tick was resumed by another one, and finished there.
    resumed = [run for run in runs if run.id == killed]
    assert resumed and resumed[0].executor != executors[1], (killed, [(run.id, run.executor) for run in runs])
    # All three ran ticks.
    assert {run.executor for run in runs} >= set(executors)


def _run_for_30_seconds(
    replicas: list[Replica], database_url: str
) -> tuple[list[task_pb2.TaskRun], str, list[str], datetime, datetime]:
    survivor = replicas[0]
    executors = [executor_of(replica, database_url) for replica in replicas]
    with grpc.insecure_channel(survivor.target) as channel:
        token = auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(email=ADMIN[0], password=ADMIN[1]), timeout=30
        )
        auth = [("authorization", f"Bearer {token.access_token}")]
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        prompt = task_pb2.CreateTaskRequest(
            id="tick", interval=task_pb2.Interval(seconds=1), action="llm.prompt", name="Tick"
        )
        prompt.params.update({"prompt": "tic", "model": "slow"})
        created = tasks.CreateTask(prompt, metadata=auth, timeout=30)
        created_at = created.created_at.ToDatetime(tzinfo=UTC)
        started = time.monotonic()

        time.sleep(SECONDS / 2)
        # Kill replica 1 while it runs a tick.
        deadline = time.monotonic() + 10
        while (killed := running_on(database_url, executors[1], "tick")) is None:
            assert time.monotonic() < deadline, "replica 1 never ran a tick"
            time.sleep(0.005)
        replicas[1].process.send_signal(signal.SIGKILL)
        replicas[1].process.wait()

        time.sleep(max(0.0, SECONDS - (time.monotonic() - started)))
        paused = tasks.PauseTask(task_pb2.PauseTaskRequest(task_id="tick"), metadata=auth, timeout=30)
        paused_at = paused.updated_at.ToDatetime(tzinfo=UTC)
        # The runs under way finish; the killed replica's is resumed (dead after 3 s).
        deadline = time.monotonic() + 30
        while True:
            detail = tasks.GetTask(task_pb2.GetTaskRequest(task_id="tick"), metadata=auth, timeout=30)
            if detail.running_count == 0 and any(
                run.id == killed and run.finished_at.seconds for run in detail.history
            ):
                break
            history = [(run.id, run.status) for run in detail.history]
            assert time.monotonic() < deadline, (killed, detail.running_count, history)
            time.sleep(0.5)
        time.sleep(1)  # the last events cross Redis
        detail = tasks.GetTask(task_pb2.GetTaskRequest(task_id="tick"), metadata=auth, timeout=30)
    return list(detail.history), killed, executors, paused_at, created_at
