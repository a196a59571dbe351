"""A shared Prefect server on PostgreSQL, as operations run it: ``python -m testbed prefect-server``.

SQLite makes concurrent clients fail with ``database is locked`` (HTTP 503 and client backoff), so the
shared server runs on PostgreSQL from Debian's packages: a cluster initialised in the workdir (as the
``postgres`` user when we are root, since initdb refuses root), trust auth on 127.0.0.1 only, no
password anywhere. ``prefect server start`` then runs against it on a free port.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests

from testbed.service import Service, ServiceError, free_port, log_tail, port_taken, stop_process, wait_until

DB_USER = "prefect"
DB_NAME = "prefect"


def postgres_bindir() -> Path:
    """The newest Debian PostgreSQL (``/usr/lib/postgresql/<major>/bin``); $MODELGOV_PG_BINDIR overrides."""
    if os.environ.get("MODELGOV_PG_BINDIR"):
        return Path(os.environ["MODELGOV_PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise ServiceError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                           "install it with: apt-get install postgresql")
    return Path(found[-1]).parent


def _run_as() -> str | None:
    """initdb and postgres refuse to run as root: use the Debian ``postgres`` account then."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ServiceError("running as root needs the 'postgres' user (Debian's postgresql package)") from exc
    return "postgres"


class PostgresCluster:
    """One throw-away PostgreSQL cluster: initdb in ``datadir``, listen on 127.0.0.1:``port`` only."""

    def __init__(self, datadir: Path, port: int, log_path: Path):
        self.port, self.log_path = port, log_path
        self.bindir = postgres_bindir()
        self.user = _run_as()
        self.proc: subprocess.Popen | None = None
        self.own_tmp: Path | None = None
        if self.user:  # the postgres account cannot reach a root-owned 0700 pytest tmp dir: use its own folder
            self.own_tmp = Path(tempfile.mkdtemp(prefix="testbed-pg-"))
            self._own(self.own_tmp)
            datadir = self.own_tmp / "pgdata"
        self.datadir = datadir

    def _own(self, path: Path) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            self._own(self.datadir)
            init = subprocess.run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", DB_USER,
                                   "--auth=trust", "--encoding=UTF8", "--no-sync"], user=self.user, cwd=self.datadir,
                                  capture_output=True, text=True, timeout=180)
            if init.returncode != 0:
                raise ServiceError(f"initdb failed: {init.stderr.strip()[-800:]}")
        log = self.log_path.open("ab")  # opened by us, inherited: the postgres account needs no access
        # no unix socket (-k ''): nothing outside this test talks to it; fsync off: a test database
        self.proc = subprocess.Popen([str(self.bindir / "postgres"), "-D", str(self.datadir), "-h", "127.0.0.1",
                                      "-p", str(self.port), "-k", "", "-c", "fsync=off",
                                      "-c", "max_connections=200"], user=self.user, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, cwd=self.datadir)
        log.close()
        wait_until(self._ready, timeout=60, what="PostgreSQL", alive=self._dead)
        made = subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                               DB_USER, DB_NAME], capture_output=True, text=True, timeout=60)
        if made.returncode != 0 and "already exists" not in made.stderr:
            raise ServiceError(f"createdb failed: {made.stderr.strip()}")

    def _ready(self) -> bool:
        return subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                              capture_output=True, timeout=10).returncode == 0

    def _dead(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            return f"exited with {self.proc.returncode}: {log_tail(self.log_path)}"
        return None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{DB_USER}@127.0.0.1:{self.port}/{DB_NAME}"

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        if self.own_tmp is not None:
            shutil.rmtree(self.own_tmp, ignore_errors=True)
            self.own_tmp = None


def server_environment(workdir: Path, database_url: str) -> dict[str, str]:
    return {**os.environ, "PREFECT_HOME": str(workdir / "server-home"),
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", "PREFECT_SERVER_API_HOST": "127.0.0.1"}


class PrefectServerService(Service):
    """``prefect server start`` on PostgreSQL; ready info carries ``url`` (the API URL to export as
    PREFECT_API_URL), ``ui_url`` and ``database_url``."""

    name = "prefect-server"

    def start(self) -> dict[str, Any]:
        if self.port and port_taken(self.port):
            raise ServiceError(f"port 127.0.0.1:{self.port} is taken")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.postgres = PostgresCluster(self.workdir / "pgdata", free_port(), self.workdir / "postgres.log")
        self.postgres.start()
        port = self.port or free_port()
        self.log_path = self.workdir / "prefect-server.log"
        (self.workdir / "server-home").mkdir(exist_ok=True)
        prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                         env=server_environment(self.workdir, self.postgres.url), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, cwd=self.workdir)
        api = f"http://127.0.0.1:{port}/api"
        wait_until(lambda: requests.get(f"{api}/health", timeout=2).status_code == 200, timeout=240,
                   what="prefect server", alive=self._dead, interval=0.5)
        self.info = {"service": self.name, "url": api, "ui_url": f"http://127.0.0.1:{port}", "pid": self.proc.pid,
                     "database_url": self.postgres.url}
        return self.info

    def _dead(self) -> str | None:
        if self.proc.poll() is not None:
            return f"exited with {self.proc.returncode}: {log_tail(self.log_path)}"
        return None

    def stop(self) -> None:
        stop_process(getattr(self, "proc", None))
        self.proc = None
        postgres = getattr(self, "postgres", None)
        if postgres is not None:
            postgres.stop()
            self.postgres = None
