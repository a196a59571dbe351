"""S3 over HTTPS on the real Ceph radosgw (its beast frontend's ssl_endpoint, a certificate of a testbed CA):
modelgov publishes and verifies with the CA bundle it is told about (``MODELGOV_CA_BUNDLE``), and refuses the
same server without it, or with another CA's bundle, naming the host and the setting; nothing is written."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from governance.registries import get_registry
from tests.secured.conftest import modelgov
from tests.secured.test_swebhdfs import _staged
from tests.service_fixtures import unique_ids


@pytest.fixture
def https_bucket(radosgw_server, monkeypatch):
    name = f"tls-{next(unique_ids)}"
    radosgw_server.client().create_bucket(Bucket=name)
    env = {"AWS_ENDPOINT_URL": radosgw_server.https_url, "AWS_ACCESS_KEY_ID": radosgw_server.access_key,
           "AWS_SECRET_ACCESS_KEY": radosgw_server.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return f"s3://{name}/registry", env


def _objects(radosgw_server, uri: str) -> list[str]:
    bucket = urlparse(uri).netloc
    return [o["Key"] for o in radosgw_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_publish_and_verify_over_https_with_the_ca_bundle(https_bucket, radosgw_server, tmp_path, monkeypatch):
    uri, env = https_bucket
    monkeypatch.setenv("MODELGOV_CA_BUNDLE", str(radosgw_server.ca_bundle))
    assert get_registry(uri).publish(_staged(tmp_path / "repo")) is not None
    assert any(k.endswith("executable/model.joblib") for k in _objects(radosgw_server, uri))  # read over HTTP
    proc = modelgov("registry", "verify", uri, "iris", "1", env={**env, "MODELGOV_CA_BUNDLE": str(radosgw_server.ca_bundle)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("bundle", ["none", "other CA"])
def test_the_https_endpoint_is_refused_without_its_ca(https_bucket, radosgw_server, other_ca, tmp_path, bundle,
                                                       monkeypatch):
    uri, env = https_bucket
    monkeypatch.delenv("MODELGOV_CA_BUNDLE", raising=False)
    extra = {"MODELGOV_CA_BUNDLE": str(other_ca.bundle)} if bundle == "other CA" else {}
    tmp_path.joinpath("repo").mkdir()
    _staged(tmp_path / "repo")
    proc = modelgov("registry", "verify", uri, "iris", "1", env={**env, **extra})
    assert proc.returncode != 0
    port = urlparse(radosgw_server.https_url).port
    assert "certificate" in proc.stderr.lower() and str(port) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _objects(radosgw_server, uri) == []
