"""The real thing: Hadoop's MiniDFSCluster Kerberized against the real KDC (``python -m testbed hdfs --kerberos``),
HTTPS only with SASL on data transfer (a secure DataNode without privileged ports), WebHDFS behind Hadoop's own
SPNEGO filter, datanode reads and writes under the namenode's delegation tokens."""

from __future__ import annotations

import pytest

from tests.secured.conftest import modelgov
from tests.secured.test_kerberos import no_keytab_bytes
from tests.secured.test_swebhdfs import _staged

pytestmark = pytest.mark.slow


def env_for(info: dict, *, keytab: bool = True) -> dict[str, str]:
    env = {"KRB5_CONFIG": info["krb5_conf"], "MODELGOV_HDFS_AUTH": "kerberos", "KRB5CCNAME": "FILE:/nonexistent/cc",
           "MODELGOV_KERBEROS_PRINCIPAL": f"alice@{info['realm']}", "MODELGOV_CA_BUNDLE": info["ca_bundle"]}
    if keytab:
        env["MODELGOV_KERBEROS_KEYTAB"] = info["principals"][f"alice@{info['realm']}"]
    return env


def audit(service) -> list[str]:
    return [line for line in (service.workdir / "hdfs.log").read_text().splitlines() if " audit: " in line]


def test_publish_then_verify_with_a_keytab_on_kerberized_hdfs(kerberized_hdfs, tmp_path, monkeypatch):
    from governance.registries import get_registry

    info, service = kerberized_hdfs
    for name, value in env_for(info).items():
        monkeypatch.setenv(name, value)
    get_registry(info["registry_uri"]).publish(_staged(tmp_path / "repo"))
    proc = modelgov("registry", "verify", info["registry_uri"], "iris", "1", env=env_for(info))
    assert proc.returncode == 0, proc.stderr
    assert "not found in Kerberos database" not in proc.stderr  # no token attempted for the datanode
    lines = audit(service)
    # the namenode saw alice's SPNEGO ticket; the datanode wrote each file under her delegation token
    assert any("ugi=alice (auth:KERBEROS)" in line and "cmd=rename" in line and "proto=webhdfs" in line
               for line in lines)
    assert sum("ugi=alice (auth:TOKEN)" in line and "cmd=create" in line for line in lines) == 4
    no_keytab_bytes(proc.stdout + proc.stderr, env_for(info)["MODELGOV_KERBEROS_KEYTAB"])


def test_without_a_ticket_nothing_reaches_hdfs(kerberized_hdfs):
    info, service = kerberized_hdfs
    before = len(audit(service))
    proc = modelgov("registry", "verify", info["registry_uri"], "iris", "1", env=env_for(info, keytab=False))
    assert proc.returncode != 0
    assert "no valid ticket for alice@MODELGOV.TEST (realm MODELGOV.TEST)" in proc.stderr, proc.stderr
    assert len(audit(service)) == before


def test_simple_auth_is_refused_by_the_secured_namenode(kerberized_hdfs):
    info, _ = kerberized_hdfs
    proc = modelgov("registry", "verify", info["registry_uri"], "iris", "1",
                    env={"MODELGOV_HDFS_USER": "alice", "MODELGOV_CA_BUNDLE": info["ca_bundle"]})
    assert proc.returncode != 0
    assert "Authentication failure" in proc.stderr, proc.stderr


def test_the_secured_cluster_speaks_https_only_with_sasl_data_transfer(kerberized_hdfs, other_ca):
    """No plain HTTP on the namenode's web port, no privileged-port shortcut, and a certificate from another CA
    is refused naming the namenode and the setting."""
    import requests

    info, service = kerberized_hdfs
    port = info["url"].rsplit(":", 1)[1]
    try:  # plain HTTP on the TLS port: dropped, or answered with an error, never served
        answer = requests.get(f"http://localhost:{port}/webhdfs/v1/?op=LISTSTATUS", timeout=10).status_code
    except requests.exceptions.ConnectionError:
        answer = "dropped"
    assert answer == "dropped" or answer >= 400
    log = (service.workdir / "hdfs.log").read_text()
    assert "ignore.secure.ports.for.testing" not in log
    proc = modelgov("registry", "verify", info["registry_uri"], "iris", "1",
                    env={**env_for(info), "MODELGOV_CA_BUNDLE": str(other_ca.bundle)})
    assert proc.returncode != 0
    assert f"the certificate of localhost:{port} is not trusted" in proc.stderr, proc.stderr
