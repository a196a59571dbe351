"""A real HDFS: Hadoop 3.5's ``MiniDFSCluster`` (one NameNode, one DataNode) with WebHDFS and permissions on.

The jars come from ``testbed/java/hdfs/pom.xml`` (fetched once, then offline); ``MiniHdfs.java`` runs as a
single-file program, no build step. The JVM runs as the HDFS superuser ``hdfs`` (``HADOOP_USER_NAME``), so
a registry user is an ordinary user whose permissions are really checked. ``/registry`` is created for the
registry user: ``MODELGOV_HDFS_USER``, ``HADOOP_USER_NAME`` or the login name, the same lookup the HDFS
registry makes, so ``modelgov deploy --registry <registry_uri>`` works as printed.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from testbed.java_process import JavaProcess
from testbed.maven import fetch_jars, java
from testbed.service import Service, ServiceError, port_taken

JAVA_DIR = Path(__file__).resolve().parent / "java" / "hdfs"
SUPERUSER = "hdfs"
START_TIMEOUT = 240.0  # ~20 s on an idle 2-core machine; several times that under load


def registry_user() -> str:
    return os.environ.get("MODELGOV_HDFS_USER") or os.environ.get("HADOOP_USER_NAME") or getpass.getuser()


class HdfsService(Service):
    """``ha=True``: two NameNodes (nn0 active, nn1 standby) sharing one namespace, switched with
    ``transition(nn, "active"|"standby")``; the ready info then lists both in ``namenode_urls``."""

    name = "hdfs"

    def __init__(self, workdir: Path, port: int | None = None, *, ha: bool = False, kerberos: bool = False,
                 kdc: dict[str, Any] | None = None):
        super().__init__(workdir, port)
        self.ha = ha
        self.kerberos = kerberos  # secured against a KDC (testbed.kdc): SPNEGO on WebHDFS
        self.kdc_info = kdc  # a running KDC's ready line, shared with a Kerberized Atlas; else one of its own

    def _kerberos_flags(self) -> tuple[list[str], dict[str, Any]]:
        """JVM flags of a Kerberized cluster and what the ready line adds (realm, krb5.conf, user keytabs)."""
        from testbed.kdc import KdcService

        kdc = self.kdc_info
        if kdc is None:
            self.kdc = KdcService(self.workdir / "kerberos")
            kdc = self.kdc.start()
        realm, keytabs = kdc["realm"], kdc["principals"]
        flags = [f"-Djava.security.krb5.conf={kdc['krb5_conf']}",
                 f"-Dmodelgov.hdfs.principal=hdfs/localhost@{realm}",
                 f"-Dmodelgov.hdfs.keytab={keytabs[f'hdfs/localhost@{realm}']}",
                 f"-Dmodelgov.http.principal=HTTP/localhost@{realm}",
                 f"-Dmodelgov.http.keytab={keytabs[f'HTTP/localhost@{realm}']}"]
        return flags, {"realm": realm, "krb5_conf": kdc["krb5_conf"], "principals": {
            p: k for p, k in keytabs.items() if "/" not in p}, "kdc_pid": kdc["pid"], **self._tls_files()}

    def _tls_files(self) -> dict[str, Any]:
        """A certificate of a testbed CA for localhost and 127.0.0.1 in JKS stores, named by the ssl-server.xml and
        ssl-client.xml Hadoop reads from the class path (the client side: the DataNode's and NameNode's own
        HTTPS calls to each other). What the ready line adds: the CA bundle a client must trust."""
        from testbed.certs import java_server_stores

        stores = java_server_stores(self.workdir / "tls", "hdfs")
        keystore, truststore, password = stores.keystore, stores.truststore, stores.password
        conf = self.workdir / "conf"
        conf.mkdir(parents=True, exist_ok=True)

        def site(values: dict[str, str]) -> str:
            props = "".join(f"<property><name>{k}</name><value>{v}</value></property>\n" for k, v in values.items())
            return f"<?xml version=\"1.0\"?>\n<configuration>\n{props}</configuration>\n"

        for name, values in (("ssl-server.xml", {
                "ssl.server.keystore.location": str(keystore), "ssl.server.keystore.password": password,
                "ssl.server.keystore.keypassword": password, "ssl.server.keystore.type": "jks",
                "ssl.server.truststore.location": str(truststore), "ssl.server.truststore.password": password,
                "ssl.server.truststore.type": "jks"}),
                ("ssl-client.xml", {"ssl.client.truststore.location": str(truststore),
                                    "ssl.client.truststore.password": password,
                                    "ssl.client.truststore.type": "jks"})):
            path = conf / name
            path.write_text(site(values))
            path.chmod(0o600)
        return {"ca_bundle": str(stores.ca_bundle)}

    def start(self) -> dict[str, Any]:
        if self.ha and self.port:
            raise ServiceError("an HA cluster picks its own free ports; --port is not supported")
        if self.port and port_taken(self.port):
            raise ServiceError(f"port 127.0.0.1:{self.port} is taken")
        exe = java()
        lib = fetch_jars(JAVA_DIR / "pom.xml")
        owner = registry_user()
        secured: list[str] = []
        extra: dict[str, Any] = {}
        if self.kerberos:
            if self.ha:
                raise ServiceError("--kerberos with ha is not supported")
            secured, extra = self._kerberos_flags()
            owner = "alice"  # the KDC's user principal: the SPNEGO user the namenode sees
        argv = [exe, "-Xmx768m", "-XX:TieredStopAtLevel=1", *secured,  # C1 only: starts in half the time
                f"-Dlog4j.configuration=file:{JAVA_DIR / 'log4j.properties'}",
                "-cp", f"{lib}/*" + (f"{os.pathsep}{self.workdir / 'conf'}" if self.kerberos else ""),
                str(JAVA_DIR / "MiniHdfs.java"),
                str(self.workdir / "dfs"), "0", str(self.port or 0), owner, *(["ha"] if self.ha else [])]
        self.process = JavaProcess(argv, log=self.workdir / "hdfs.log", cwd=self.workdir,
                                   env={"HADOOP_USER_NAME": SUPERUSER}, commands=self.ha)
        proc = self.process.start()
        ports = self.process.read_ready_line(START_TIMEOUT * (2 if self.ha else 1), "HDFS MiniDFSCluster")
        http = ports["http_ports"]
        host = "localhost" if self.kerberos else "127.0.0.1"  # SPNEGO's service principal is HTTP/localhost
        namenodes = ",".join(f"{host}:{p}" for p in http)
        scheme = "swebhdfs" if ports.get("https") else "hdfs"  # a Kerberized cluster serves HTTPS only
        self.info = {"service": self.name, "url": f"http://127.0.0.1:{http[0]}", "pid": proc.pid,
                     "registry_uri": f"{scheme}://{namenodes}/registry", "rpc_port": ports["rpc_ports"][0],
                     "datanode_http_port": ports["datanode_http_port"], "superuser": ports["superuser"],
                     "registry_user": owner, **extra}
        if self.kerberos:
            self.info["url"] = f"https://localhost:{http[0]}"
        if self.ha:
            self.info["namenode_urls"] = [f"http://127.0.0.1:{p}" for p in http]
            self.info["rpc_ports"] = ports["rpc_ports"]
        return self.info

    def transition(self, namenode: int, state: str) -> None:
        """Make NameNode ``namenode`` (0 or 1) active or standby, as ``hdfs haadmin -transitionTo…`` does."""
        if not self.ha or getattr(self, "process", None) is None:
            raise ServiceError("transition needs a running HA cluster (HdfsService(..., ha=True))")
        answer = self.process.command(f"{state} {namenode}")
        if not answer.get("ok"):
            raise ServiceError(f"NameNode {namenode} -> {state}: {answer.get('error')}")

    def stop(self) -> None:
        process = getattr(self, "process", None)
        if process is not None:
            process.stop()
            self.process = None
        kdc = getattr(self, "kdc", None)
        if kdc is not None:
            kdc.stop()
            self.kdc = None
