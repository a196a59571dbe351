"""A real Spark standalone cluster: one master and one worker, from the PySpark in modelgov's environment
(``make spark``; PySpark ships Spark's jars and ``bin/spark-class``), on free loopback ports.

Ready when the master's JSON status (``http://127.0.0.1:WEBUI/json``) lists the worker ALIVE. The ready line
gives ``master`` (``spark://127.0.0.1:PORT``) and ``target_uri`` (``spark://127.0.0.1:PORT``, add input/output).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import requests

from testbed.service import Service, ServiceError, free_port, log_tail, port_taken, stop_process, wait_until

STARTUP_TIMEOUT_S = 120.0
S3A_POM = Path(__file__).resolve().parent / "spark_files" / "pom.xml"


def s3a_jars() -> Path:
    """Hadoop's S3A connector and the AWS SDK modules it uses (16 MB, not the SDK's 600 MB bundle), fetched once
    from Maven Central: the folder to name in ``MODELGOV_SPARK_JARS`` for ``s3://`` scoring locations."""
    from testbed.maven import fetch_jars

    return fetch_jars(S3A_POM)


def spark_home() -> Path:
    try:
        import pyspark
    except ImportError as exc:
        raise ServiceError("PySpark is not installed: run `make spark` (pip install 'model-governance[spark]')") from exc
    return Path(pyspark.__file__).resolve().parent


class SparkService(Service):
    name = "spark"

    def start(self) -> dict[str, Any]:
        home = spark_home()
        port = self.port or free_port()
        if port_taken(port):
            raise ServiceError(f"port 127.0.0.1:{port} is taken")
        ui, worker_ui = free_port(), free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_WORKER_DIR": str(self.workdir / "work"), "SPARK_LOG_DIR": str(self.workdir)}
        spark_class = str(home / "bin" / "spark-class")
        master = f"spark://127.0.0.1:{port}"
        self._procs: list[subprocess.Popen] = []
        logs = [self.workdir / "master.log", self.workdir / "worker.log"]
        argvs = [[spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                  "--webui-port", str(ui)],
                 [spark_class, "org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1",
                  "--cores", "2", "--memory", "1g", "--webui-port", str(worker_ui)]]
        for argv, log_path in zip(argvs, logs, strict=True):
            with log_path.open("ab") as log:
                self._procs.append(subprocess.Popen(argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                                    env=env, start_new_session=True))

        def exited() -> str | None:
            for proc, log_path in zip(self._procs, logs, strict=True):
                if proc.poll() is not None:
                    return f"{proc.args[1]} exited with code {proc.returncode}:\n{log_tail(log_path)}"
            return None

        def worker_alive() -> bool:
            status = requests.get(f"http://127.0.0.1:{ui}/json", timeout=2).json()
            return any(w.get("state") == "ALIVE" for w in status.get("workers", []))

        try:
            wait_until(worker_alive, timeout=STARTUP_TIMEOUT_S, what=f"Spark standalone master {master}",
                       alive=exited)
        except ServiceError:
            self.stop()
            raise
        self.info = {"service": self.name, "url": f"http://127.0.0.1:{ui}", "pid": self._procs[0].pid,
                     "master": master, "target_uri": f"spark://127.0.0.1:{port}", "spark_home": str(home)}
        return self.info

    def stop(self) -> None:
        for proc in reversed(getattr(self, "_procs", [])):
            stop_process(proc)
        self._procs = []
