"""`python -m bench startup`: how long `relais serve` takes to answer, and to answer a search.

    .venv/bin/python -m bench startup            # 3 starts of each kind
    .venv/bin/python -m bench startup --quick    # 1 of each

`relais serve` on its embedded defaults (SQLite, Milvus Lite, the packaged models), in a data
directory of its own, its process timed from spawn:

    first start   a new data directory: migrations, the administrator, the local model unpacked
    restart       the same directory again, as after an upgrade or a crash

For each: spawn -> `GET /health` answers 200, then -> the first `POST /rag/query` is answered (an
administrator signed in beforehand: the query's own time is its embedding and search, which
start-up preloads). The baseline, in the same run: a plain FastAPI app (`python -m uvicorn` with a
one-route app) spawned the same way -> its first 200: what a Python web process costs anyway.
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import REPO_ROOT
from bench.common import output_path, write_json

RELAIS = REPO_ROOT / ".venv" / "bin" / "relais"
ADMIN_EMAIL = "startup@relais.bench"
DEADLINE = 180.0
PLAIN_APP = (
    "from fastapi import FastAPI\napp = FastAPI()\n@app.get('/health')\ndef health():\n    return {'status': 'ok'}\n"
)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until_ok(request: Any, started: float) -> float:
    """Seconds from `started` to the first 200 of `request()`."""
    while time.perf_counter() - started < DEADLINE:
        try:
            if request().status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"no answer within {DEADLINE:.0f} s")


def _environment(password: str) -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("RELAIS_")}
    return {**kept, "RELAIS_ADMIN_EMAIL": ADMIN_EMAIL, "RELAIS_ADMIN_PASSWORD": password, "RELAIS_LOG_LEVEL": "WARNING"}


def relais_start(data_dir: Path, password: str) -> dict[str, float]:
    http_port, grpc_port = _port(), _port()
    command = [str(RELAIS), "serve", "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    command += ["--data-dir", str(data_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=_environment(password), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as http:
            healthy = _until_ok(lambda: http.get("/health"), started)
            signed_in = http.post("/auth/login", json={"email": ADMIN_EMAIL, "password": password})
            signed_in.raise_for_status()
            bearer = {"authorization": f"Bearer {signed_in.json()['access_token']}"}
            http.cookies.clear()
            query_started = time.perf_counter()
            searched = http.post("/rag/query", json={"query": "Comment démarre le serveur ?"}, headers=bearer)
            searched.raise_for_status()
            return {"healthy_s": healthy, "first_query_s": time.perf_counter() - query_started}
    finally:
        process.terminate()
        process.wait(timeout=30)


def plain_start(directory: Path) -> float:
    (directory / "plain_app.py").write_text(PLAIN_APP)
    port = _port()
    command = [sys.executable, "-m", "uvicorn", "plain_app:app", "--port", str(port), "--log-level", "warning"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            return _until_ok(lambda: http.get("/health"), started)
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(args: argparse.Namespace) -> int:
    rounds = args.requests or (1 if args.quick else 3)
    rows: dict[str, list[dict[str, float]]] = {"first start": [], "restart": []}
    plain: list[float] = []
    for index in range(rounds):
        with tempfile.TemporaryDirectory(prefix="relais-startup-") as directory:
            data_dir, password = Path(directory) / "data", secrets.token_urlsafe(16)
            plain.append(plain_start(Path(directory)))
            for kind in rows:
                rows[kind].append(relais_start(data_dir, password))
                print(f"# round {index + 1} {kind}: {rows[kind][-1]}", file=sys.stderr, flush=True)
    baseline = statistics.median(plain)
    print(f"\n## `relais serve` to healthy and to a first search ({rounds} starts each, medians)\n")
    print("| start | to GET /health 200 (s) | x plain FastAPI | then first /rag/query (s) |")
    print("|---|---:|---:|---:|")
    summary = {}
    for kind, runs in rows.items():
        healthy = statistics.median(run["healthy_s"] for run in runs)
        query = statistics.median(run["first_query_s"] for run in runs)
        summary[kind] = {"healthy_s": healthy, "first_query_s": query, "runs": runs}
        print(f"| {kind} | {healthy:.2f} | {healthy / baseline:.1f} | {query:.3f} |")
    print(f"\nPlain FastAPI (uvicorn, one route) to its first 200: {baseline:.2f} s.")
    document = {
        "rounds": rounds,
        "plain_fastapi_s": plain,
        "relais": summary,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
    }
    write_json(output_path(args, "startup"), document)
    return 0
