"""One SparkSession per process, for the master last asked for, created on first use (Spark allows one
SparkContext per process: asking for another master stops the previous session).

``local[N]`` runs Spark inside this process (PySpark from PyPI ships Spark; it needs Java 17); ``spark://HOST:PORT``
is a standalone master. Python workers run this interpreter (``PYSPARK_PYTHON``), so they unpickle models with
the same scikit-learn the driver has. The UI is off: a governed job opens no ports beyond Spark's own.
"""

from __future__ import annotations

import os
import sys
import threading

from governance.errors import ConfigError

_lock = threading.Lock()
_sessions: dict[str, object] = {}
INSTALL = "install the spark extra: pip install 'model-governance[spark]' (PySpark, pandas, pyarrow)"


def spark_master(netloc: str, cores: str | None = None) -> str:
    """The Spark master URL of a ``spark://`` target: ``local`` (with ``cores``, else every core) runs in this
    process, ``HOST:PORT`` is a standalone master. (``spark://local[2]`` cannot be a URI: Python's URL parser
    takes ``[2]`` for an IPv6 address and refuses it.)"""
    if netloc == "local":
        if cores is not None and not (cores.isdigit() and int(cores) > 0):
            raise ConfigError(f"spark://local?cores={cores}: cores must be a positive whole number")
        return f"local[{cores or '*'}]"
    if cores is not None:
        raise ConfigError(f"spark://{netloc}: cores= is for spark://local; a standalone master has its own workers")
    return f"spark://{netloc}"


def session(master: str):  # -> pyspark.sql.SparkSession
    """The session for ``master``, created once; ConfigError when PySpark is not installed."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(f"Spark targets need PySpark: {INSTALL}") from exc
    with _lock:
        existing = _sessions.get(master)
        if existing is not None and not existing.sparkContext._jsc.sc().isStopped():  # type: ignore[attr-defined]
            return existing
        for other in [m for m in _sessions if m != master]:  # one SparkContext per process: close the other master's
            _sessions.pop(other).stop()  # type: ignore[attr-defined]
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = (SparkSession.builder.master(master).appName("modelgov-scoring")
                   .config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", "4")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                   .config("spark.driver.host", "127.0.0.1" if master.startswith("local") else
                           os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")))
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        _sessions[master] = spark
        return spark
