"""A real ``mlflow server`` (from its own venv, ``make mlflow-env``): SQLite backend store, a local artifact
store served through the server's artifact proxy (``mlflow-artifacts:``), on a free loopback port.

MLflow is heavy and its pins conflict with Prefect's, so it never enters modelgov's own environment:
the server and the scripts that log models run with ``.venv-mlflow``'s python.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import requests

from testbed.service import Service, ServiceError, free_port, log_tail, port_taken, stop_process, wait_until

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 120.0


def mlflow_python() -> Path:
    """The python of the venv MLflow is installed in ($MODELGOV_MLFLOW_PYTHON, default .venv-mlflow)."""
    return Path(os.environ.get("MODELGOV_MLFLOW_PYTHON", ROOT / ".venv-mlflow" / "bin" / "python"))


def mlflow_env() -> dict[str, str]:
    """Environment for MLflow processes: no PYTHONPATH from ours, no telemetry."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the server's background job runner (7 huey consumer processes) serves GenAI jobs we never run
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", GIT_PYTHON_REFRESH="quiet",
               MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    return env


class MLflowService(Service):
    """With ``tls``: HTTPS only (uvicorn's own TLS), a certificate of a testbed CA for ``localhost``."""

    name = "mlflow"
    supports_tls = True

    def start(self) -> dict[str, Any]:
        python = mlflow_python()
        if not python.exists():
            raise ServiceError(f"MLflow's venv is missing ({python}): run `make mlflow-env`")
        port = self.port or free_port()
        if port_taken(port):
            raise ServiceError(f"port 127.0.0.1:{port} is taken")
        self.workdir.mkdir(parents=True, exist_ok=True)
        artifacts = self.workdir / "artifacts"
        artifacts.mkdir(exist_ok=True)
        log_path = self.workdir / "mlflow-server.log"
        url, tls_opts, verify = f"http://127.0.0.1:{port}", [], True
        if getattr(self, "tls", False):
            from testbed.certs import TestCa

            cert = TestCa(self.workdir / "tls").server("mlflow")
            url, verify = f"https://localhost:{port}", str(cert.ca_bundle)
            tls_opts = ["--uvicorn-opts", f"--ssl-keyfile {cert.key} --ssl-certfile {cert.cert}"]
        with log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(python), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                 "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
                 "--serve-artifacts", "--artifacts-destination", artifacts.as_uri(), "--workers", "1", *tls_opts],
                cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=mlflow_env(), start_new_session=True)

        def exited() -> str | None:
            if self._proc.poll() is None:
                return None
            return f"exited with code {self._proc.returncode}:\n{log_tail(log_path)}"

        try:
            wait_until(lambda: requests.get(f"{url}/health", timeout=2, verify=verify).status_code == 200,
                       timeout=STARTUP_TIMEOUT_S, what=f"mlflow server on {url}", alive=exited)
        except ServiceError:
            self.stop()
            raise
        self.info = {"service": self.name, "url": url, "pid": self._proc.pid, "tracking_uri": url,
                     "python": str(python), "log": str(log_path)}
        if verify is not True:
            self.info["ca_bundle"] = verify
        return self.info

    def stop(self) -> None:
        proc = getattr(self, "_proc", None)
        if proc is not None:
            stop_process(proc)
            self._proc = None
