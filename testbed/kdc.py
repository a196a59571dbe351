"""A real Kerberos KDC (Debian's MIT ``krb5-kdc``) as a testbed service: ``python -m testbed kdc``.

MIT's KDC, not Hadoop's MiniKdc (Apache Kerby): the Python side (gssapi, requests-gssapi) links MIT's
libraries anyway, so one implementation serves both the clients and the KDC, and it starts in well under a
second without a JVM. It runs in the foreground (``krb5kdc -n``) from its own folder with its own
``krb5.conf``/``kdc.conf``: nothing under /etc is read or written.

The realm gets random-key principals (no password exists for them) and one keytab each:
``alice`` (a user), ``carol`` (a user whose tickets last 6 seconds), ``HTTP/localhost`` (the SPNEGO service of WebHDFS and Atlas) and ``hdfs/localhost``.
The database's master key is random, fed on stdin and never printed. The ready line gives the realm, the
``krb5.conf`` path to set as ``KRB5_CONFIG``, and each principal's keytab path (paths, never contents).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

from testbed.service import Service, ServiceError, free_port, log_tail, stop_process, wait_until

REALM = "MODELGOV.TEST"
# principal -> its ticket lifetime (None: the realm's 1 h); carol's tickets expire fast: the renewal tests
PRINCIPALS: dict[str, str | None] = {"alice": None, "carol": "6 seconds", "HTTP/localhost": None,
                                     "hdfs/localhost": None}
BINARIES = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")
INSTALL_HINT = "apt-get install krb5-kdc krb5-admin-server krb5-user (or: make kerberos)"


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if not found:
        raise ServiceError(f"{name} not found; install MIT Kerberos: {INSTALL_HINT}")
    return found


def krb5_conf(realm: str, port: int, ccache_dir: Path) -> str:
    """The client configuration for this realm: the KDC on localhost:port, no DNS lookups, no reverse DNS
    (the SPNEGO service is ``HTTP/localhost`` whatever 127.0.0.1 resolves back to)."""
    return (f"[libdefaults]\n  default_realm = {realm}\n  dns_lookup_kdc = false\n  dns_lookup_realm = false\n"
            f"  rdns = false\n  dns_canonicalize_hostname = false\n  udp_preference_limit = 1\n"
            f"  ticket_lifetime = 1h\n  renew_lifetime = 1d\n  forwardable = true\n"
            f"  default_ccache_name = FILE:{ccache_dir}/krb5cc_%{{uid}}\n"
            f"[realms]\n  {realm} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n"
            f"[domain_realm]\n  localhost = {realm}\n  127.0.0.1 = {realm}\n")


class KdcService(Service):
    name = "kdc"

    def start(self) -> dict[str, Any]:
        folder = self.workdir / "kdc"
        folder.mkdir(parents=True, exist_ok=True)
        keytabs = self.workdir / "keytabs"
        keytabs.mkdir(exist_ok=True)
        port = self.port or free_port()
        conf, profile = folder / "krb5.conf", folder / "kdc.conf"
        conf.write_text(krb5_conf(REALM, port, folder))
        profile.write_text(f"[kdcdefaults]\n  kdc_ports = {port}\n  kdc_tcp_ports = {port}\n"
                           f"[realms]\n  {REALM} = {{\n    database_name = {folder}/principal\n"
                           f"    key_stash_file = {folder}/stash\n    acl_file = {folder}/kadm5.acl\n"
                           f"    max_life = 1h\n    max_renewable_life = 1d\n"
                           f"    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
                           f"  }}\n[logging]\n  kdc = FILE:{folder}/kdc.log\n")
        (folder / "kadm5.acl").write_text("")
        self.env = {**os.environ, "KRB5_CONFIG": str(conf), "KRB5_KDC_PROFILE": str(profile)}
        if not (folder / "principal").exists():
            master = secrets.token_urlsafe(24)  # on stdin only: never argv, never printed
            self._run([_binary("kdb5_util"), "create", "-s", "-r", REALM], stdin=f"{master}\n{master}\n")
            for principal in PRINCIPALS:
                keytab = keytabs / f"{principal.replace('/', '_')}.keytab"
                life = f"-maxlife \"{PRINCIPALS[principal]}\" " if PRINCIPALS[principal] else ""
                self._run([_binary("kadmin.local"), "-r", REALM, "-q",
                           f"addprinc -randkey {life}{principal}@{REALM}"])
                self._run([_binary("kadmin.local"), "-r", REALM, "-q",
                           f"ktadd -k {keytab} {principal}@{REALM}"])
                keytab.chmod(0o600)
        self.log = folder / "krb5kdc.out"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([_binary("krb5kdc"), "-n", "-r", REALM], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        alice = keytabs / "alice.keytab"
        probe = folder / "probe.ccache"
        wait_until(lambda: subprocess.run([_binary("kinit"), "-k", "-t", str(alice), "-c", str(probe),
                                           f"alice@{REALM}"], env=self.env, capture_output=True).returncode == 0,
                   timeout=20, what="krb5kdc", alive=self._dead)
        probe.unlink(missing_ok=True)
        self.info = {"service": self.name, "url": f"kerberos://127.0.0.1:{port}", "pid": self.proc.pid,
                     "realm": REALM, "krb5_conf": str(conf), "kdc_port": port,
                     "principals": {f"{p}@{REALM}": str(keytabs / f"{p.replace('/', '_')}.keytab")
                                    for p in PRINCIPALS}}
        return self.info

    def _dead(self) -> str | None:
        if self.proc.poll() is None:
            return None
        return f"krb5kdc exited with {self.proc.returncode}: {log_tail(self.log)}"

    def _run(self, argv: list[str], stdin: str | None = None) -> None:
        proc = subprocess.run(argv, env=self.env, input=stdin, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise ServiceError(f"{Path(argv[0]).name} {argv[1]} failed: {proc.stderr.strip()[-500:]}")

    def stop(self) -> None:
        stop_process(getattr(self, "proc", None), grace=5)
        self.proc = None
