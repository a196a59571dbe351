"""Start and stop a local MLServer for the demo and tests (production runs MLServer on its own).

MLServer runs from its own virtual environment (its pins conflict with Prefect's). Settings use
``parallel_workers: 0`` because uvloop >= 0.22 kills MLServer 1.7's inference workers; settings.json wins
over environment variables, so it is written explicitly. A second MLServer on busy ports hangs instead of
exiting, so ports are checked free first and readiness is checked against our own PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from governance.errors import TargetError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_busy(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class LocalMLServer:
    """A real MLServer process on loopback ports, serving ``repository``."""

    def __init__(self, repository: Path, *, executable: str | Path, host: str = "127.0.0.1",
                 http_port: int | None = None, log_path: Path | None = None, startup_timeout_s: float = 90.0):
        self.repository = Path(repository).resolve()
        self.executable = str(Path(executable).absolute())
        self.host = host
        self.http_port = http_port or free_port(host)
        self.grpc_port = free_port(host)
        self.metrics_port = free_port(host)
        self.log_path = log_path or self.repository.parent / "mlserver.log"
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def target_uri(self) -> str:
        return f"mlserver://{self.host}:{self.http_port}?repository={self.repository}"

    def start(self) -> LocalMLServer:
        if not Path(self.executable).exists():
            raise TargetError(f"MLServer is not installed at {self.executable} (run `make serving-env`)")
        for port in (self.http_port, self.grpc_port, self.metrics_port):
            if _port_busy(self.host, port):
                raise TargetError(f"port {self.host}:{port} is busy; MLServer would hang instead of failing")
        self.repository.mkdir(parents=True, exist_ok=True)
        settings = {"debug": False, "host": self.host, "http_port": self.http_port, "grpc_port": self.grpc_port,
                    "metrics_port": self.metrics_port, "parallel_workers": 0, "load_models_at_startup": True}
        (self.repository / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        log = self.log_path.open("ab")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self._proc = subprocess.Popen([self.executable, "start", str(self.repository)], cwd=self.repository,
                                      stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise TargetError(f"MLServer exited with code {self._proc.returncode}; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/v2/health/live", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise TargetError(f"MLServer did not become live in {self.startup_timeout_s:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def __enter__(self) -> LocalMLServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
