"""A whole `modelgov deploy` on a secured cluster: a keytab, Atlas behind SPNEGO over HTTPS, an swebhdfs://
registry behind SPNEGO (delegation tokens to the datanode), a real MLServer target. It publishes and records;
without a ticket it stops at preflight and writes nothing; and no byte of the keytab is in anything printed or
stored (the planted-secret scan of tests/flow/test_secrets_never_persist.py, for the Kerberos channel)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from emulators.webhdfs import WebHdfsEmulator
from emulators.webhdfs.namespace import SUPERUSER
from tests.conftest import write_metadata
from tests.secured.conftest import keytab_of, modelgov

pytestmark = pytest.mark.slow


def keytab_forms(keytab: str) -> dict[str, str]:
    """The keytab's key material as it could leak: raw, hex, base64 (each entry ends with its key + kvno)."""
    raw = Path(keytab).read_bytes()
    key = raw[-40:-8]
    return {"raw": key.decode("latin-1"), "hex": key.hex(), "base64": base64.b64encode(key).decode(),
            "file base64": base64.b64encode(raw).decode()[8:40]}


@pytest.fixture
def secured(tmp_path, kdc, company_ca, http_acceptor, atlas_kerberos):
    hdfs = WebHdfsEmulator(tmp_path / "hdfs", "localhost", tls=company_ca.server("nn-deploy").server_context(),
                           spnego=http_acceptor).start()
    hdfs.namespace.mkdirs(SUPERUSER, "/registry", "755")
    hdfs.namespace.set_meta("/registry", owner="alice")
    prefect_home = tmp_path / "prefect-home"
    env = {"KRB5_CONFIG": kdc["krb5_conf"], "MODELGOV_CA_BUNDLE": str(company_ca.bundle), "ATLAS_AUTH": "kerberos",
           "ATLAS_USERNAME": "", "ATLAS_PASSWORD": "", "KRB5CCNAME": "FILE:/nonexistent/modelgov-cc",
           "MODELGOV_HDFS_AUTH": "kerberos", "MODELGOV_KERBEROS_PRINCIPAL": "alice@MODELGOV.TEST",
           "MODELGOV_KERBEROS_KEYTAB": keytab_of(kdc, "alice"), "PREFECT_HOME": str(prefect_home),
           "MODELGOV_STATE_DIR": str(tmp_path / "state")}
    yield hdfs, env, prefect_home
    hdfs.stop()


def test_a_keytab_deploy_publishes_records_and_leaks_nothing(secured, example_repo, mlserver, atlas_kerberos,
                                                             tmp_path):
    hdfs, env, prefect_home = secured
    write_metadata(example_repo, model_name="kerberized-model")
    registry = f"swebhdfs://localhost:{hdfs.port}/registry"
    args = ["--target", mlserver.target_uri(), "--registry", registry, "--atlas", atlas_kerberos.url]
    denied = modelgov("deploy", str(example_repo), *args, "--json",
                      env={**env, "MODELGOV_KERBEROS_KEYTAB": ""}, timeout=600)
    assert denied.returncode != 0
    assert "no valid ticket for alice@MODELGOV.TEST (realm MODELGOV.TEST)" in denied.stderr, denied.stderr
    assert not [r for r in hdfs.requests if "kerberized-model" in r]  # nothing reached the registry
    ok = modelgov("deploy", str(example_repo), *args, "--json", env=env, timeout=600)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "deployed"
    found = modelgov("search", "--name", "kerberized-model", "--atlas", atlas_kerberos.url, env=env)
    assert found.returncode == 0 and "kerberized-model" in found.stdout, found.stderr
    assert any(r.startswith("datanode PUT") and "delegation=" in r for r in hdfs.requests)

    stored = {"output": "".join([denied.stdout, denied.stderr, ok.stdout, ok.stderr, found.stdout, found.stderr]),
              "atlas": json.dumps(atlas_kerberos.core.store.to_state(), default=str)}
    stored["prefect database"] = "".join(f.read_bytes().decode("latin-1") for f in prefect_home.glob("prefect.db*"))
    assert "kerberized-model" in stored["prefect database"]
    stored["registry"] = "".join(p.read_bytes().decode("latin-1") for p in (tmp_path / "hdfs").rglob("*")
                                 if p.is_file())
    assert "kerberized-model" in stored["registry"]
    state = tmp_path / "state"
    stored["state"] = "".join(p.read_bytes().decode("latin-1") for p in state.rglob("*") if p.is_file()) \
        if state.exists() else ""
    leaks = [(form, where) for form, secret in keytab_forms(env["MODELGOV_KERBEROS_KEYTAB"]).items()
             for where, text in stored.items() if secret in text]
    assert leaks == []
    assert env["MODELGOV_KERBEROS_KEYTAB"] not in stored["atlas"]  # not even the keytab's path
