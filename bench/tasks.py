"""Scheduled tasks: how late ticks start at 100 ticks a second, and what the engine costs a run.

    .venv/bin/python -m bench tasks            # 200 runs, then 20 and 100 ticks/s, 30 s each; SQLite, PostgreSQL
    .venv/bin/python -m bench tasks --quick    # 50 runs, 10 s each, SQLite only

In this process, per database: the tasks domain as the server assembles it (TasksDomain: DBOS
Transact, the planner, the heartbeat) on a fresh database, with a no-op action, `bench.noop`
(one checkpointed step that returns at once), so what is measured is the scheduler and the
engine, not an action. The engine's own database is the server's default for that backend (a
SQLite file beside Relais', or a schema of the PostgreSQL database).

    latency    N interval tasks of 1 second, their anchors 1/N s apart: N ticks a second, evenly
               spread, for N = 20 and 100. For every run begun, its start (its begin) minus its
               planned tick: p50, p99, max; the ticks that began against the ticks due in the
               window; the process's CPU a run. Each scenario's backlog drains before the next.
    overhead   `--requests` runs started one after the other ("run now") and each awaited to its
               end (its task.completed event), against the same action called directly, without
               the engine (the baseline): milliseconds a run, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import urllib.parse
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import common

NAME = "tasks"
# Ticks a second: the rate asked for, and one this machine sustains, for the latency unsaturated.
RATES = (20, 100)
OWNER = 1


def _noop_action() -> Any:
    from server.tasks.actions import Action, ActionContext

    async def nothing() -> dict[str, bool]:
        return {"ok": True}

    async def run(context: ActionContext) -> Any:
        return await context.step("noop", nothing)

    return Action(name="bench.noop", description="Does nothing.", params_schema={"type": "object"}, run=run), nothing


async def _domain(root: Path, database_url: str) -> Any:
    from server.auth import Principal
    from server.config import Settings
    from server.events import LocalBus
    from server.identity.models import User
    from server.storage import create_database
    from server.tasks.domain import TasksDomain

    settings = Settings(data_dir=root, database_url=database_url, llm_preload=False, retrieval_preload=False)
    database = create_database(settings.sqlalchemy_url)
    await database.migrate()
    async with database.sessions() as session, session.begin():
        session.add(User(id=OWNER, email="bench@relais.test", username="bench", password_hash="-"))

    async def owner(user_id: int) -> Principal:
        return Principal(subject=str(user_id), user_id=user_id, permissions=frozenset({"*"}))

    domain = TasksDomain(settings, database, LocalBus(), owner)
    action, direct = _noop_action()
    domain.registry.add(action)
    await domain.start()
    return domain, database, direct


async def _latency(domain: Any, rate: int, seconds: float) -> dict[str, Any]:
    """`rate` tasks of 1 s, anchors 1/rate s apart; the lateness of every run begun in the window."""
    from server.auth import Principal
    from server.tasks.engine import run_prefix
    from server.tasks.models import Task
    from server.tasks.service import Draft, Interval, TriggerDraft

    owner = Principal(subject=str(OWNER), user_id=OWNER, permissions=frozenset({"*"}))
    ids = []
    for _ in range(rate):
        view = await domain.service.create(
            owner, Draft(action="bench.noop", trigger=TriggerDraft(interval=Interval(seconds=1)))
        )
        ids.append(view.id)
    # Spread the anchors: one tick every 1/rate s rather than `rate` at once.
    async with domain.database.sessions() as session, session.begin():
        first = None
        for index, task_id in enumerate(ids):
            task = await session.get(Task, task_id)
            first = first or task.anchor_at
            task.anchor_at = first + timedelta(seconds=1 + index / rate)
            task.updated_at = task.updated_at + timedelta(microseconds=index + 1)
    domain.changed()
    await asyncio.sleep(3)  # the planners read the new anchors; the first ticks go by
    runtime = domain.runtime
    runtime.lateness.clear()
    cpu, started = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    late = sorted(value * 1000 for value in runtime.lateness)
    async with domain.database.sessions() as session, session.begin():
        for task_id in ids:
            (await session.get(Task, task_id)).enabled = False
    domain.changed()
    # Let the backlog drain before the next scenario.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        active = await domain.engine.runs(run_prefix(domain.deployment), active_only=True, with_data=False)
        if not active and not runtime.in_progress:
            break
        await asyncio.sleep(1)
    return {
        "ticks_per_second": rate,
        "seconds": round(elapsed, 2),
        "ticks_due": round(rate * elapsed),
        "runs_begun": len(late),
        "runs_per_second": round(len(late) / elapsed, 1),
        "p50_ms": round(common.percentile(late, 50), 2) if late else None,
        "p90_ms": round(common.percentile(late, 90), 2) if late else None,
        "p99_ms": round(common.percentile(late, 99), 2) if late else None,
        "max_ms": round(late[-1], 2) if late else None,
        "process_cpu_share": round(cpu / elapsed, 2),
        "cpu_ms_per_run": round(cpu * 1000 / max(1, len(late)), 2),
    }


async def _overhead(domain: Any, direct: Any, runs: int) -> dict[str, Any]:
    """Runs started one after the other and awaited, against the action called directly."""
    from server.auth import Principal
    from server.events.bus import Selector
    from server.events.topics import TASK_COMPLETED, TASK_FAILED
    from server.tasks.service import Draft, Interval, TriggerDraft

    owner = Principal(subject=str(OWNER), user_id=OWNER, permissions=frozenset({"*"}))
    view = await domain.service.create(
        owner, Draft(action="bench.noop", enabled=False, trigger=TriggerDraft(interval=Interval(days=1)))
    )
    subscription = domain.events.subscribe([Selector(TASK_COMPLETED), Selector(TASK_FAILED)])
    latencies = []
    async with subscription:
        for index in range(runs + 5):
            started = time.perf_counter()
            await domain.service.run_now(owner, view.id, admin=False)
            async for envelope in subscription:
                if envelope.event.task_id == view.id:
                    assert envelope.event.status == "success", envelope.event
                    break
            if index >= 5:  # the first few warm the connections up
                latencies.append(time.perf_counter() - started)
    baseline = []
    for _ in range(runs):
        started = time.perf_counter()
        await direct()
        baseline.append(time.perf_counter() - started)
    engine_ms = sorted(value * 1000 for value in latencies)
    direct_ms = sorted(value * 1000 for value in baseline)
    mean = sum(engine_ms) / len(engine_ms)
    return {
        "runs": runs,
        "engine_p50_ms": round(common.percentile(engine_ms, 50), 3),
        "engine_p99_ms": round(common.percentile(engine_ms, 99), 3),
        "engine_mean_ms": round(mean, 3),
        "direct_mean_ms": round(sum(direct_ms) / len(direct_ms), 4),
        "overhead_ms_per_run": round(mean - sum(direct_ms) / len(direct_ms), 3),
        "ratio": round(mean / max(sum(direct_ms) / len(direct_ms), 1e-6), 1),
    }


async def _one(backend: str, seconds: float, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relais-bench-tasks-") as folder:
        root = Path(folder)
        schema = ""
        if backend == "sqlite":
            url = f"sqlite:///{root / 'relais.db'}"
        else:
            import psycopg

            base = os.environ.get("RELAIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
            schema = f"relais_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(base, autocommit=True) as connection:
                connection.execute(f'CREATE SCHEMA "{schema}"')
            url = f"{base}?options={urllib.parse.quote(f'-csearch_path={schema}')}"
        domain, database, direct = await _domain(root, url)
        try:
            print(f"  {backend}: overhead over {runs} runs", file=sys.stderr, flush=True)
            overhead = await _overhead(domain, direct, runs)
            latency = []
            for rate in RATES:
                print(f"  {backend}: latency at {rate} ticks/s for {seconds:.0f} s", file=sys.stderr, flush=True)
                latency.append(await _latency(domain, rate, seconds))
        finally:
            await domain.close()
            await database.dispose()
            if schema:
                with psycopg.connect(base, autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
                    connection.execute(f'DROP SCHEMA IF EXISTS "{schema}_dbos" CASCADE')
    return {"backend": backend, "latency": latency, "overhead": overhead}


def _markdown(results: list[dict[str, Any]]) -> str:
    lines = [
        "| database | ticks/s | ticks due | runs begun | runs/s | start - planned p50 | p90 | p99 | max "
        "| CPU share | CPU/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for lat in result["latency"]:
            lines.append(
                f"| {result['backend']} | {lat['ticks_per_second']} | {lat['ticks_due']} | {lat['runs_begun']} | "
                f"{lat['runs_per_second']} | {lat['p50_ms']} ms | {lat['p90_ms']} ms | {lat['p99_ms']} ms | "
                f"{lat['max_ms']} ms | {lat['process_cpu_share']} | {lat['cpu_ms_per_run']} ms |"
            )
    lines += [
        "",
        "| database | run through the engine (mean) | p50 | p99 | action called directly | overhead/run | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        over = result["overhead"]
        lines.append(
            f"| {result['backend']} | {over['engine_mean_ms']} ms | {over['engine_p50_ms']} ms | "
            f"{over['engine_p99_ms']} ms | {over['direct_mean_ms']} ms | {over['overhead_ms_per_run']} ms | "
            f"{over['ratio']}x |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    seconds = 10.0 if args.quick else 30.0
    runs = args.requests or (50 if args.quick else 200)
    backends = ["sqlite"] if args.quick else ["sqlite", "postgresql"]
    print(f"bench {NAME}: {', '.join(backends)}", file=sys.stderr, flush=True)
    results = [asyncio.run(_one(backend, seconds, runs)) for backend in backends]
    table = _markdown(results)
    print(table)
    common.write_json(
        common.output_path(args, NAME),
        {
            "benchmark": NAME,
            "quick": args.quick,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "versions": common.versions((*common.BASE_PACKAGES, "dbos", "croniter")),
            "results": results,
            "table": table,
        },
    )
    return 0
