"""WebHDFS over HTTPS (``swebhdfs://``): namenode and datanode redirects both verified against the company's
CA; a namenode with another CA's certificate is refused naming the host and the setting."""

from __future__ import annotations

import getpass

import pytest

from emulators.webhdfs import WebHdfsEmulator
from emulators.webhdfs.namespace import SUPERUSER
from governance.registries import get_registry
from governance.staging.validate import validate_repo
from tests.secured.conftest import modelgov


def _staged(root):
    (root / "executable").mkdir(parents=True)
    (root / "metadata.txt").write_text("model.name=iris\nmodel.version=1\nmodel.type=sklearn\nmodel.owner=alice\n"
                                       "model.owner.lob=risk\nmodel.description=test model\n")
    (root / "README.md").write_text("# test model\n")
    (root / "executable" / "model.joblib").write_bytes(b"model-bytes" * 1000)
    return validate_repo(root, commit="0123abcd")


def _hdfs(tmp_path, cert):
    emu = WebHdfsEmulator(tmp_path / "hdfs", tls=cert.server_context()).start()
    emu.namespace.mkdirs(SUPERUSER, "/registry", "755")
    emu.namespace.set_meta("/registry", owner=getpass.getuser())
    return emu


@pytest.fixture
def hdfs_https(tmp_path, company_ca):
    emu = _hdfs(tmp_path, company_ca.server("namenode"))
    yield emu
    emu.stop()


def test_publish_and_verify_over_swebhdfs_with_the_company_ca(hdfs_https, company_ca, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELGOV_CA_BUNDLE", str(company_ca.bundle))
    monkeypatch.setenv("MODELGOV_HDFS_USER", getpass.getuser())
    uri = f"swebhdfs://127.0.0.1:{hdfs_https.port}/registry"
    version = get_registry(uri).publish(_staged(tmp_path / "repo"))
    assert version is not None
    proc = modelgov("registry", "verify", uri, "iris", "1",
                    env={"MODELGOV_CA_BUNDLE": str(company_ca.bundle), "MODELGOV_HDFS_USER": getpass.getuser()})
    assert proc.returncode == 0, proc.stderr


def test_a_namenode_certificate_from_another_ca_is_refused(tmp_path, company_ca, other_ca):
    emu = _hdfs(tmp_path, other_ca.server("namenode"))
    try:
        proc = modelgov("registry", "verify", f"swebhdfs://127.0.0.1:{emu.port}/registry", "iris", "1",
                        env={"MODELGOV_CA_BUNDLE": str(company_ca.bundle)})
    finally:
        emu.stop()
    assert proc.returncode != 0
    assert f"the certificate of 127.0.0.1:{emu.port} is not trusted" in proc.stderr, proc.stderr
    assert "(MODELGOV_CA_BUNDLE)" in proc.stderr and "Traceback" not in proc.stderr
