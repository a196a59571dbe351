"""Kerberos (SPNEGO) for Atlas and WebHDFS against a real MIT KDC: real tickets from a keytab or the ticket
cache, accepted by a real GSSAPI acceptor with the service's keytab; clear errors naming principal and realm
(never a keytab's bytes) when there is no ticket, it expired, or a principal is refused."""

from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.secured.conftest import keytab_of, modelgov

pytestmark = pytest.mark.slow


def kerberos_env(kdc: dict, company_ca, *, principal: str | None = "alice", keytab: str | None = None,
                 ccache: str | None = None) -> dict[str, str]:
    env = {"KRB5_CONFIG": kdc["krb5_conf"], "MODELGOV_CA_BUNDLE": str(company_ca.bundle), "ATLAS_AUTH": "kerberos",
           "ATLAS_USERNAME": "", "ATLAS_PASSWORD": "", "KRB5CCNAME": ccache or "FILE:/nonexistent/modelgov-cc"}
    if principal:
        env["MODELGOV_KERBEROS_PRINCIPAL"] = f"{principal}@{kdc['realm']}"
    if keytab:
        env["MODELGOV_KERBEROS_KEYTAB"] = keytab
    return env


def no_keytab_bytes(output: str, keytab: str) -> None:
    raw = Path(keytab).read_bytes()
    key = raw[-40:-8]  # the tail of the last entry: key material
    for form in (key.hex(), base64.b64encode(key).decode(), raw[-24:].decode("latin-1")):
        assert form not in output


def test_install_types_with_a_keytab(kdc, atlas_kerberos, http_acceptor, company_ca):
    keytab = keytab_of(kdc, "alice")
    seen = len(http_acceptor.principals)
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url,
                    env=kerberos_env(kdc, company_ca, keytab=keytab))
    assert proc.returncode == 0, proc.stderr
    assert http_acceptor.principals[seen:] and set(http_acceptor.principals[seen:]) == {"alice@MODELGOV.TEST"}
    no_keytab_bytes(proc.stdout + proc.stderr, keytab)


def test_install_types_with_the_ticket_cache(kdc, atlas_kerberos, company_ca, tmp_path):
    cache = f"FILE:{tmp_path}/cc"
    subprocess.run(["kinit", "-k", "-t", keytab_of(kdc, "alice"), "-c", cache, "alice@MODELGOV.TEST"], check=True,
                   env={"KRB5_CONFIG": kdc["krb5_conf"], "PATH": "/usr/bin:/bin"})
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url,
                    env=kerberos_env(kdc, company_ca, principal=None, ccache=cache))
    assert proc.returncode == 0, proc.stderr


def test_no_ticket_fails_before_any_call(kdc, atlas_kerberos, http_acceptor, company_ca):
    seen = len(http_acceptor.principals) + len(http_acceptor.refused)
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url, env=kerberos_env(kdc, company_ca))
    assert proc.returncode != 0
    assert ("no valid ticket for alice@MODELGOV.TEST (realm MODELGOV.TEST) in ticket cache "
            "FILE:/nonexistent/modelgov-cc: run kinit") in proc.stderr, proc.stderr
    assert len(http_acceptor.principals) + len(http_acceptor.refused) == seen  # nothing reached Atlas


def test_a_principal_the_kdc_does_not_know_is_named_with_its_realm(kdc, atlas_kerberos, company_ca):
    keytab = keytab_of(kdc, "alice")
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url,
                    env=kerberos_env(kdc, company_ca, principal="mallory", keytab=keytab))
    assert proc.returncode != 0
    assert "mallory@MODELGOV.TEST (realm MODELGOV.TEST)" in proc.stderr, proc.stderr
    assert f"keytab {keytab}" in proc.stderr
    no_keytab_bytes(proc.stdout + proc.stderr, keytab)


def test_a_server_that_refuses_the_principal_is_named(kdc, company_ca, tmp_path):
    """Atlas's acceptor holds another service's keytab: the ticket is real, the server cannot take it."""
    from emulators.atlas import AtlasEmulator
    from emulators.spnego import SpnegoAcceptor

    acceptor = SpnegoAcceptor(keytab_of(kdc, "hdfs/localhost"))
    with AtlasEmulator(host="localhost", tls=company_ca.server("atlas-wrong").server_context(),
                       spnego=acceptor) as emu:
        proc = modelgov("atlas", "install-types", "--atlas", emu.url,
                        env=kerberos_env(kdc, company_ca, keytab=keytab_of(kdc, "alice")))
    assert proc.returncode != 0
    assert f"{emu.url} refused alice@MODELGOV.TEST (realm MODELGOV.TEST" in proc.stderr, proc.stderr
    assert acceptor.refused


def test_an_expired_cache_ticket_is_refused_and_a_keytab_renews(kdc, atlas_kerberos, company_ca, tmp_path):
    """carol's tickets last 6 s: from the cache, an expired one is a clear error; from the keytab, modelgov
    gets a new one itself."""
    cache = f"FILE:{tmp_path}/cc"
    subprocess.run(["kinit", "-k", "-t", keytab_of(kdc, "carol"), "-c", cache, "carol@MODELGOV.TEST"], check=True,
                   env={"KRB5_CONFIG": kdc["krb5_conf"], "PATH": "/usr/bin:/bin"})
    time.sleep(7)
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url,
                    env=kerberos_env(kdc, company_ca, principal="carol", ccache=cache))
    assert proc.returncode != 0
    assert "carol@MODELGOV.TEST (realm MODELGOV.TEST)" in proc.stderr and "expired" in proc.stderr, proc.stderr
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url,
                    env=kerberos_env(kdc, company_ca, principal="carol", keytab=keytab_of(kdc, "carol"), ccache=cache))
    assert proc.returncode == 0, proc.stderr


def test_a_keytab_gets_a_new_ticket_when_the_first_expires(kdc, atlas_kerberos, company_ca, monkeypatch):
    """One client, used across the expiry of its first ticket (a long deploy)."""
    from governance.atlas.client import AtlasClient

    for name, value in kerberos_env(kdc, company_ca, principal="carol", keytab=keytab_of(kdc, "carol")).items():
        monkeypatch.setenv(name, value)
    client = AtlasClient.from_env(atlas_kerberos.url)
    first = client.ticket.expires
    assert client.get_typedef("DataSet") is not None
    time.sleep(7)
    assert client.get_typedef("DataSet") is not None  # a ticket from the keytab again, not an expired one
    assert first is not None


@pytest.fixture
def hdfs_kerberos(tmp_path, company_ca, http_acceptor):
    """A Kerberized namenode (SPNEGO; user.name ignored) whose datanode takes only its delegation tokens."""
    from emulators.webhdfs import WebHdfsEmulator
    from emulators.webhdfs.namespace import SUPERUSER

    emu = WebHdfsEmulator(tmp_path / "hdfs", "localhost", tls=company_ca.server("nn-kerberos").server_context(),
                          spnego=http_acceptor).start()
    emu.namespace.mkdirs(SUPERUSER, "/registry", "755")
    emu.namespace.set_meta("/registry", owner="alice")
    yield emu
    emu.stop()


def test_publish_and_verify_over_kerberized_swebhdfs(kdc, hdfs_kerberos, company_ca, tmp_path, monkeypatch):
    from governance.registries import get_registry
    from tests.secured.test_swebhdfs import _staged

    env = {**kerberos_env(kdc, company_ca, keytab=keytab_of(kdc, "alice")), "MODELGOV_HDFS_AUTH": "kerberos",
           "MODELGOV_HDFS_USER": "mallory"}  # ignored by a Kerberized namenode, as on a real one
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    uri = f"swebhdfs://localhost:{hdfs_kerberos.port}/registry"
    get_registry(uri).publish(_staged(tmp_path / "repo"))
    assert hdfs_kerberos.namespace.get_status("alice", "/registry/iris/1/MANIFEST.json")["owner"] == "alice"
    datanode = [r for r in hdfs_kerberos.requests if r.startswith("datanode")]
    assert datanode and all("delegation=" in r for r in datanode)
    assert not any("user.name=" in r for r in hdfs_kerberos.requests)
    proc = modelgov("registry", "verify", uri, "iris", "1", env=env)
    assert proc.returncode == 0, proc.stderr
    no_keytab_bytes(proc.stdout + proc.stderr, keytab_of(kdc, "alice"))


def test_a_publish_without_a_ticket_writes_nothing(kdc, hdfs_kerberos, company_ca, tmp_path, monkeypatch):
    from governance.kerberos import KerberosError
    from governance.registries import get_registry

    for name, value in {**kerberos_env(kdc, company_ca), "MODELGOV_HDFS_AUTH": "kerberos"}.items():
        monkeypatch.setenv(name, value)
    before = list(hdfs_kerberos.requests)
    with pytest.raises(KerberosError, match=r"no valid ticket for alice@MODELGOV.TEST \(realm MODELGOV.TEST\)"):
        get_registry(f"swebhdfs://localhost:{hdfs_kerberos.port}/registry")
    assert hdfs_kerberos.requests == before
    proc = modelgov("registry", "verify", f"swebhdfs://localhost:{hdfs_kerberos.port}/registry", "iris", "1",
                    env={**kerberos_env(kdc, company_ca), "MODELGOV_HDFS_AUTH": "kerberos"})
    assert proc.returncode != 0 and "no valid ticket for alice@MODELGOV.TEST" in proc.stderr, proc.stderr
    assert hdfs_kerberos.requests == before


def test_simple_auth_is_refused_by_the_kerberized_namenode(hdfs_kerberos, company_ca):
    proc = modelgov("registry", "verify", f"swebhdfs://localhost:{hdfs_kerberos.port}/registry", "iris", "1",
                    env={"MODELGOV_CA_BUNDLE": str(company_ca.bundle), "MODELGOV_HDFS_USER": "alice"})
    assert proc.returncode != 0
    assert "Authentication failure" in proc.stderr, proc.stderr


def test_doctor_reports_auth_principal_ticket_expiry_and_certificates(kdc, atlas_kerberos, hdfs_kerberos, company_ca):
    uri = f"swebhdfs://localhost:{hdfs_kerberos.port}/registry"
    env = {**kerberos_env(kdc, company_ca, keytab=keytab_of(kdc, "alice")), "MODELGOV_HDFS_AUTH": "kerberos"}
    proc = modelgov("atlas", "install-types", "--atlas", atlas_kerberos.url, env=env)
    assert proc.returncode == 0, proc.stderr
    proc = modelgov("doctor", "--atlas", atlas_kerberos.url, "--registry", uri, env=env)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 0, lines
    auth = [line for line in lines if line.startswith("[ok] atlas auth: ")]
    assert auth and "kerberos as alice@MODELGOV.TEST (realm MODELGOV.TEST, keytab " in auth[0], lines
    assert "ticket expires 20" in auth[0]
    assert any(line.startswith("[ok] registry auth: kerberos as alice@MODELGOV.TEST") for line in lines), lines
    tls = [line for line in lines if line.startswith("[ok] atlas tls: ")]
    assert tls and f"localhost:{urlsplit(atlas_kerberos.url).port} presents CN=localhost,O=modelgov testbed" in tls[0]
    assert "issued by CN=company CA,O=modelgov testbed, expires 20" in tls[0], tls
    assert any(line.startswith("[ok] registry tls: ") and "issued by CN=company CA" in line for line in lines)
    no_keytab_bytes(proc.stdout + proc.stderr, keytab_of(kdc, "alice"))


def test_doctor_names_an_untrusted_certificate_and_a_missing_ticket(kdc, atlas_kerberos, company_ca, other_ca):
    env = {**kerberos_env(kdc, company_ca), "MODELGOV_CA_BUNDLE": str(other_ca.bundle)}
    proc = modelgov("doctor", "--atlas", atlas_kerberos.url, env=env)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode != 0
    assert any(line.startswith("[FAIL] atlas tls: ") and "issued by CN=company CA" in line and "NOT TRUSTED" in line
               for line in lines), lines
    assert any(line.startswith("[FAIL] atlas auth: ") and "no valid ticket for alice@MODELGOV.TEST" in line
               for line in lines), lines
