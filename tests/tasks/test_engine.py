"""The engine's process model: DBOS is one instance per process, launched with the first server
and destroyed with the last, any number of times; servers of one process share it, each
running its own deployment's tasks; its database sits beside Relais' own."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx

from server.config import Settings
from server.tasks.domain import engine_config
from tests.identity.helpers import admin
from tests.support.live import LiveStack
from tests.support.triton_live import LiveTriton
from tests.tasks.conftest import task_settings
from tests.tasks.support import finished_runs, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_the_engines_database_sits_beside_relais_own(tmp_path: Path) -> None:
    sqlite = engine_config(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/x/relais.db"))
    default = engine_config(Settings(data_dir=tmp_path))
    postgres = engine_config(
        Settings(data_dir=tmp_path, database_url="postgresql://relais@db:5432/relais?options=-csearch_path%3Dtenant7")
    )
    plain = engine_config(Settings(data_dir=tmp_path, database_url="postgresql://relais:secret@db/relais"))
    chosen = engine_config(
        Settings(data_dir=tmp_path, tasks_database_url="postgresql://ops@other/dbos", tasks_schema="scheduler")
    )

    assert (sqlite.database_url, sqlite.dialect) == (f"sqlite:///{tmp_path}/x/relais.dbos.sqlite", "sqlite")
    assert default.database_url == f"sqlite:///{tmp_path}/relais.dbos.sqlite"
    assert (postgres.schema, postgres.dialect) == ("tenant7_dbos", "postgresql")
    assert postgres.database_url.startswith("postgresql://relais@db:5432/relais?options=")
    assert (plain.schema, plain.database_url) == ("dbos", "postgresql://relais:secret@db/relais")
    assert (chosen.schema, chosen.database_url) == ("scheduler", "postgresql://ops@other/dbos")


LAUNCH_TWICE = """
import asyncio, sys, tempfile
from datetime import UTC, datetime
from pathlib import Path

from server.tasks import engine as tasks_engine
from server.tasks.engine import Engine, EngineConfig, RunRequest

class Runtime:
    def __init__(self):
        self.loop = asyncio.get_running_loop()
        self.ran = []

    async def execute(self, request, run_id, steps):
        async def work(text):
            return text.upper()
        result = await steps.step("shout", work, request.task_id)
        self.ran.append(run_id)
        return {"said": result}

async def cycle(url, schema):
    runtime = Runtime()
    engine = await Engine.attach(EngineConfig(database_url=url, schema=schema, application_version="t"), "dep", runtime)
    now = datetime.now(UTC)
    request = RunRequest(deployment="dep", task_id="hello", incarnation="1", trigger="schedule", planned_at=now)
    await engine.start(request)
    await engine.start(request)  # the same tick again: not run twice
    for _ in range(200):
        runs = await engine.runs("task:dep:hello:")
        if runs and runs[0].status == "SUCCESS":
            break
        await asyncio.sleep(0.02)
    await engine.detach()
    assert tasks_engine._HOST.loop is None, "DBOS left running"
    return len(runtime.ran), runs[0].output

folder = Path(tempfile.mkdtemp())
results = [
    asyncio.run(cycle(f"sqlite:///{folder}/a.sqlite", "dbos")),
    asyncio.run(cycle(sys.argv[1], sys.argv[2])),
    asyncio.run(cycle(f"sqlite:///{folder}/b.sqlite", "dbos")),
]
print(results)
"""


def test_dbos_launches_and_stops_again_and_again_in_one_process(postgres_schema_url: str) -> None:
    """In a process of its own, so that no other server shares the engine."""
    schema = postgres_schema_url.rsplit("%3D", 1)[-1] + "_dbos"
    plain = postgres_schema_url.split("?", 1)[0]
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LAUNCH_TWICE), plain, schema],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    # Each of the three lives ran its tick once, and kept its output.
    assert result.stdout.strip().splitlines()[-1] == str([(1, {"said": "HELLO"})] * 3)


def test_servers_of_one_process_share_the_engine_each_running_its_tasks(
    task_triton: LiveTriton, tmp_path: Path
) -> None:
    stacks = [
        LiveStack(task_settings(tmp_path / name, f"sqlite:///{tmp_path / name}/relais.db", task_triton)).start()  # type: ignore[arg-type]
        for name in ("first", "second")
    ]
    try:
        for stack in stacks:
            with httpx.Client(base_url=stack.base_url, timeout=30) as http:
                root = admin(http)
                body = {"id": "here", "type": "once", "action": "llm.prompt", "params": {"prompt": "où suis-je ?"}}
                assert http.post("/system/tasks", json=body, headers=root.bearer).status_code == 201
        for stack in stacks:
            with httpx.Client(base_url=stack.base_url, timeout=30) as http:
                root = admin(http)
                [run] = wait_for(lambda http=http, root=root: finished_runs(http, root, "here", "/system/tasks"))  # type: ignore[misc]
                assert run["status"] == "success"
        deployments = {stack.server.tasks.deployment for stack in stacks}
        assert (
            len(deployments) == 2
            and stacks[0].server.tasks.engine.executor_id == stacks[1].server.tasks.engine.executor_id
        )
    finally:
        stacks[0].stop()
    # The first server gone, the second still runs tasks on the shared engine.
    try:
        with httpx.Client(base_url=stacks[1].base_url, timeout=30) as http:
            root = admin(http)
            http.post("/system/tasks/here/run", headers=root.bearer)
            wait_for(lambda: len(finished_runs(http, root, "here", "/system/tasks")) == 2)
    finally:
        stacks[1].stop()
