"""One SparkSession per process, for the master last asked for, created on first use (Spark allows one
SparkContext per process: asking for another master stops the previous session).

``local[N]`` runs Spark inside this process (PySpark from PyPI ships Spark; it needs Java 17); ``spark://HOST:PORT``
is a standalone master. Python workers run this interpreter (``PYSPARK_PYTHON``), so they unpickle models with
the same scikit-learn the driver has. The UI is off: a governed job opens no ports beyond Spark's own.

``s3://`` locations go through Hadoop's S3A connector, whose jars PySpark does not ship: ``MODELGOV_SPARK_JARS``
names them (jar files or folders of jars; ``testbed.spark.s3a_jars()`` fetches hadoop-aws 3.5.0 and the AWS SDK
modules it uses). The endpoint and region come from the same environment as the S3 registry's (``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL``, ``AWS_REGION``); the keys stay in the environment, where S3A's default credential chain
reads them, and never enter Spark's configuration (which Spark logs and shows in its UI). With a CA bundle set
(``governance.tls``), the driver's JVM (which holds ``local`` executors) trusts exactly it, as a Java trust store
made from it (``governance.spark.truststore``): S3A over HTTPS to the company's endpoint. A standalone master's
workers need the CA in their own JVMs' trust, as they need their own S3 credentials.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from governance.errors import ConfigError

_lock = threading.Lock()
_sessions: dict[str, object] = {}
INSTALL = "install the spark extra: pip install 'model-governance[spark]' (PySpark, pandas, pyarrow)"
JARS_ENV = "MODELGOV_SPARK_JARS"


def extra_jars() -> list[str]:
    """The jars of ``MODELGOV_SPARK_JARS`` (``os.pathsep`` or comma separated; a folder means its ``*.jar``)."""
    found: list[str] = []
    for item in os.environ.get(JARS_ENV, "").replace(",", os.pathsep).split(os.pathsep):
        if not item.strip():
            continue
        path = Path(item.strip()).expanduser()
        if path.is_dir():
            found.extend(str(j) for j in sorted(path.glob("*.jar")))
        elif path.is_file():
            found.append(str(path))
        else:
            raise ConfigError(f"{JARS_ENV}: {path} is neither a jar nor a folder of jars")
    return found


def s3a_settings() -> dict[str, str]:
    """Hadoop settings of S3A for the S3 endpoint modelgov's registries use (none of them secret)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    settings = {"fs.s3a.endpoint.region": region,
                "fs.s3a.attempts.maximum": "0",  # no SDK retries: one retry layer, S3A's own, with backoff
                "fs.s3a.retry.limit": "3",
                "fs.s3a.retry.interval": "500ms",
                "fs.s3a.connection.timeout": "60s",
                "fs.s3a.connection.establish.timeout": "5s"}
    if endpoint:  # an S3-compatible server (radosgw, MinIO): its URL, path-style buckets
        settings.update({"fs.s3a.endpoint": endpoint,
                         "fs.s3a.path.style.access": "true",
                         "fs.s3a.connection.ssl.enabled": str(endpoint.startswith("https")).lower()})
    return settings


def _trust_options() -> str:
    """JVM flags that make Spark trust the CA bundle every modelgov client trusts, or "" without one."""
    from governance.spark.truststore import STORE_PASSWORD, java_truststore
    from governance.tls import tls_settings

    bundle = tls_settings().ca_bundle
    if not bundle:
        return ""
    store = java_truststore(bundle)
    return (f"-Djavax.net.ssl.trustStore={store} -Djavax.net.ssl.trustStoreType=JKS "
            f"-Djavax.net.ssl.trustStorePassword={STORE_PASSWORD}")


def _apply_s3a(spark) -> None:
    """S3A's settings on the session's Hadoop configuration, read anew from the environment on each use (as the
    registries read theirs); Spark ships this configuration to the executors with every read and write."""
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    settings = s3a_settings()
    for key in ("fs.s3a.endpoint", "fs.s3a.path.style.access", "fs.s3a.connection.ssl.enabled"):
        if key not in settings:  # AWS itself now: S3A's defaults
            conf.unset(key)
    for key, value in settings.items():
        conf.set(key, value)


def hadoop_uri(uri: str) -> str:
    """The location as Hadoop names it: ``s3://`` (modelgov's, as for registries) is S3A's ``s3a://``."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri


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
            _apply_s3a(existing)
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
        java_options = _trust_options()
        if java_options:  # JVM flags: they only count when this process starts its JVM (the first session).
            # The driver's only: a standalone worker's executors keep their own JVM's trust (this path is local)
            builder = builder.config("spark.driver.extraJavaOptions", java_options)
        jars = extra_jars()
        if jars:  # on the driver's class path from its start, shipped to the executors by spark.jars
            builder = (builder.config("spark.jars", ",".join(jars))
                       .config("spark.driver.extraClassPath", os.pathsep.join(jars)))
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        _apply_s3a(spark)
        _sessions[master] = spark
        return spark
