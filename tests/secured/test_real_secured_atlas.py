"""Apache Atlas 2.1 itself, secured as a Kerberized HDP cluster runs it (``python -m testbed atlas --tls --kerberos``):
HTTPS with a certificate of a CA of its own, SPNEGO against the session's KDC, beside the Kerberized MiniDFSCluster
on the same realm (HTTPS only, SASL data transfer: swebhdfs://). A whole deploy with a keytab publishes to the real HDFS and records in the real Atlas, which
names the Kerberos principal as the author; without a ticket it stops at preflight and neither HDFS nor Atlas
hears of it; a certificate from another CA is refused; a keytab renews an expired ticket; no keytab byte is in
anything printed or stored, Atlas's own entities included."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from governance.atlas.constants import BUILD_TYPE, DEPLOYMENT_TYPE
from tests.conftest import write_metadata
from tests.secured.conftest import modelgov
from tests.secured.test_kerberized_deploy import keytab_forms
from tests.secured.test_kerberized_hdfs import audit

pytestmark = pytest.mark.slow


def secured_env(atlas: dict, *, principal: str = "alice", keytab: bool = True, ca: str | None = None,
                tmp_path=None) -> dict[str, str]:
    realm = atlas["realm"]
    env = {"KRB5_CONFIG": atlas["krb5_conf"], "MODELGOV_CA_BUNDLE": ca or atlas["ca_bundle"],
           "ATLAS_AUTH": "kerberos", "ATLAS_USERNAME": "", "ATLAS_PASSWORD": "",
           "KRB5CCNAME": "FILE:/nonexistent/modelgov-cc", "MODELGOV_HDFS_AUTH": "kerberos",
           "MODELGOV_KERBEROS_PRINCIPAL": f"{principal}@{realm}",
           "MODELGOV_KERBEROS_KEYTAB": atlas["principals"][f"{principal}@{realm}"] if keytab else ""}
    if tmp_path is not None:
        env.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "MODELGOV_STATE_DIR": str(tmp_path / "state")})
    return env


def atlas_as_admin(atlas: dict, method: str, path: str, **kwargs) -> requests.Response:
    """Atlas read back with its file user over HTTPS: the reference the test checks, not modelgov's view."""
    return requests.request(method, atlas["url"] + "/api/atlas" + path, auth=("admin", "admin"),
                            verify=atlas["ca_bundle"], timeout=60, **kwargs)


def entities_of(atlas: dict, type_name: str, model: str) -> list[dict]:
    found = atlas_as_admin(atlas, "POST", "/v2/search/basic", json={
        "typeName": type_name, "excludeDeletedEntities": False, "limit": 100,
        "entityFilters": {"attributeName": "qualifiedName", "operator": "contains", "attributeValue": model}})
    assert found.status_code == 200, found.text
    return [atlas_as_admin(atlas, "GET", f"/v2/entity/guid/{e['guid']}").json()
            for e in found.json().get("entities") or []]


@pytest.fixture(scope="module")
def typed(secured_real_atlas):
    proc = modelgov("atlas", "install-types", "--atlas", secured_real_atlas["url"], env=secured_env(secured_real_atlas))
    assert proc.returncode == 0, proc.stderr
    return secured_real_atlas


def test_a_keytab_deploy_publishes_to_real_hdfs_and_records_in_real_atlas(typed, kerberized_hdfs, example_repo,
                                                                           mlserver, tmp_path):
    atlas = typed
    hdfs, service = kerberized_hdfs
    assert hdfs["realm"] == atlas["realm"] and hdfs["krb5_conf"] == atlas["krb5_conf"]  # one KDC for both
    assert hdfs["registry_uri"].startswith("swebhdfs://localhost:")  # HTTPS only, as a secure DataNode needs
    write_metadata(example_repo, model_name="secured-real-model")
    company_cas = tmp_path / "company-cas.pem"  # one bundle for every client: Atlas's CA and the cluster's
    company_cas.write_text(Path(atlas["ca_bundle"]).read_text() + Path(hdfs["ca_bundle"]).read_text())
    args = ["deploy", str(example_repo), "--target", mlserver.target_uri(), "--registry", hdfs["registry_uri"],
            "--atlas", atlas["url"], "--json"]
    before = len(audit(service))
    denied = modelgov(*args, env=secured_env(atlas, keytab=False, tmp_path=tmp_path, ca=str(company_cas)),
                      timeout=600)
    assert denied.returncode != 0
    assert "no valid ticket for alice@MODELGOV.TEST (realm MODELGOV.TEST)" in denied.stderr, denied.stderr
    assert not [line for line in audit(service)[before:] if "secured-real-model" in line]
    assert entities_of(atlas, BUILD_TYPE, "secured-real-model") == []

    ok = modelgov(*args, env=secured_env(atlas, tmp_path=tmp_path, ca=str(company_cas)), timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "deployed"
    lines = [line for line in audit(service)[before:] if "secured-real-model" in line]
    assert any("ugi=alice (auth:KERBEROS)" in line and "cmd=rename" in line for line in lines), lines
    builds = entities_of(atlas, BUILD_TYPE, "secured-real-model")
    deployments = entities_of(atlas, DEPLOYMENT_TYPE, "secured-real-model")
    assert len(builds) == 1 and len(deployments) == 1
    # the author is the one Atlas authenticated: the SPNEGO principal, not a name modelgov typed
    assert {e["entity"]["createdBy"] for e in builds + deployments} == {"alice"}
    found = modelgov("search", "--name", "secured-real-model", "--atlas", atlas["url"], env=secured_env(atlas))
    assert found.returncode == 0 and "secured-real-model" in found.stdout, found.stderr

    keytab = secured_env(atlas)["MODELGOV_KERBEROS_KEYTAB"]
    stored = {"output": "".join(p.stdout + p.stderr for p in (denied, ok, found)),
              "atlas": json.dumps(builds + deployments),
              "state": "".join(p.read_bytes().decode("latin-1") for p in (tmp_path / "state").rglob("*")
                               if p.is_file()),
              "prefect database": "".join(p.read_bytes().decode("latin-1")
                                          for p in (tmp_path / "prefect-home").glob("prefect.db*"))}
    assert "secured-real-model" in stored["prefect database"]
    leaks = [(form, where) for form, secret in keytab_forms(keytab).items()
             for where, text in stored.items() if secret in text]
    assert leaks == []
    assert keytab not in stored["atlas"]  # not even the keytab's path


def test_the_real_atlas_certificate_is_refused_under_another_ca(typed, other_ca):
    url = typed["url"]
    proc = modelgov("search", "--name", "anything", "--atlas", url, env=secured_env(typed, ca=str(other_ca.bundle)))
    assert proc.returncode != 0
    host = url.split("//", 1)[1]
    assert f"the certificate of {host} is not trusted" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_real_atlas_refuses_no_credentials_and_a_wrong_password(typed):
    """The secured Atlas really is secured: neither an anonymous call nor a wrong basic password gets in."""
    anonymous = requests.get(typed["url"] + "/api/atlas/v2/types/typedefs/headers", verify=typed["ca_bundle"],
                             timeout=30)
    assert anonymous.status_code == 401 and "Negotiate" in anonymous.headers.get("WWW-Authenticate", "")
    wrong = requests.get(typed["url"] + "/api/atlas/v2/types/typedefs/headers", auth=("admin", "not-it"),
                         verify=typed["ca_bundle"], timeout=30)
    assert wrong.status_code == 401


def test_a_keytab_renews_an_expired_ticket_against_the_real_atlas(typed, monkeypatch):
    """carol's tickets last 6 s; one client used across that expiry (a long deploy) gets a new one."""
    from governance.atlas.client import AtlasClient

    for name, value in secured_env(typed, principal="carol").items():
        monkeypatch.setenv(name, value)
    client = AtlasClient.from_env(typed["url"])
    first = client.ticket.expires
    assert client.get_typedef(DEPLOYMENT_TYPE) is not None
    time.sleep(7)
    assert client.get_typedef(DEPLOYMENT_TYPE) is not None
    assert first is not None and client.ticket.expires > first


def test_doctor_on_the_real_secured_atlas(typed):
    proc = modelgov("doctor", "--atlas", typed["url"], env=secured_env(typed))
    out = proc.stdout + proc.stderr
    assert "[ok] atlas auth: kerberos as alice@MODELGOV.TEST (realm MODELGOV.TEST" in out, out
    assert "[ok] atlas tls: localhost:" in out and "issued by CN=atlas-testbed CA" in out, out
    assert "[ok] atlas reachable:" in out and "status ACTIVE" in out, out
