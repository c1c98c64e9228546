"""A PostgreSQL server of a test's own, to restart, stop and kill: never the machine's shared one.

    with PostgresInstance() as postgres:
        url = postgres.url              # postgresql://postgres@127.0.0.1:<port>/relais
        postgres.restart("immediate")   # pg_ctl restart -m immediate
        postgres.stop("fast"); postgres.start()

initdb and pg_ctl come from PostgreSQL 15's binaries (RELAIS_TEST_PG_BIN to use others). They
refuse to run as root: as root, the instance runs as the `postgres` user, in a directory of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import psycopg

from server.ports import unused_port

PG_BIN = Path(os.environ.get("RELAIS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
DATABASE = "relais"


class PostgresInstance:
    def __init__(self) -> None:
        self.port = unused_port()
        self.directory = Path(tempfile.mkdtemp(prefix="relais-pg-"))
        self.data = self.directory / "data"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str, timeout: float = 60) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=timeout)

    def create(self) -> PostgresInstance:
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{DATABASE}"')
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.directory / "postgres.log")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: "smart", "fast" (disconnect clients, clean stop) or "immediate" (a crash)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresInstance:
        return self.create()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.destroy()
