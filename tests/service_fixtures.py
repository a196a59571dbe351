"""Servers shared by the registry and flow tests: real Ceph radosgw and moto (S3), the WebHDFS emulator.

radosgw and moto start once per session; every test gets its own bucket or HDFS root. A missing Ceph
install FAILS the radosgw tests (it is a required test dependency, not an optional one).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from emulators.radosgw import INSTALL_HINT, RadosgwCluster, RadosgwError, free_port, missing_binaries
from emulators.webhdfs import WebHdfsEmulator

unique_ids = itertools.count()  # bucket and folder names unique within the session


@dataclass
class S3Server:
    kind: str
    endpoint_url: str
    access_key: str
    secret_key: str
    https_url: str | None = None  # the same server over HTTPS (real radosgw), its CA in ca_bundle
    ca_bundle: Path | None = None

    def client(self, secret_key: str | None = None):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=secret_key or self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


@pytest.fixture(scope="session")
def radosgw_server(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.fail(f"Ceph radosgw is required for the S3 registry tests; missing {', '.join(missing)}. "
                    f"Install with: {INSTALL_HINT}", pytrace=False)
    from testbed.certs import TestCa

    cert = TestCa(tmp_path_factory.mktemp("radosgw-ca"), "radosgw").server("radosgw")
    cluster = RadosgwCluster(memstore_bytes=1 << 30, tls=(cert.cert, cert.key))
    try:
        cluster.start()
    except RadosgwError as exc:
        pytest.fail(f"could not start the Ceph radosgw test cluster: {exc}", pytrace=False)
    try:
        yield S3Server("radosgw", cluster.endpoint_url, cluster.access_key, cluster.secret_key,
                       https_url=cluster.https_url, ca_bundle=cert.ca_bundle)
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def moto_s3_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server("moto", f"http://127.0.0.1:{port}", "moto-key", "moto-secret")
    finally:
        server.stop()


@pytest.fixture(params=["radosgw", "moto"])
def s3_server(request) -> S3Server:
    return request.getfixturevalue("radosgw_server" if request.param == "radosgw" else "moto_s3_server")


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """AWS_* variables pointing at the server, as an operator would set them."""
    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@pytest.fixture
def bucket(s3_env: S3Server) -> str:
    name = f"reg-{next(unique_ids)}-{s3_env.kind}"
    s3_env.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def webhdfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELGOV_HDFS_USER", "deployer")
    monkeypatch.delenv("MODELGOV_HDFS_AUTH", raising=False)
    emu = WebHdfsEmulator(tmp_path / "hdfs", "127.0.0.1", 0).start()
    # HDFS's root is the superuser's (755); these tests create top-level folders as ordinary users, like
    # on a dev cluster after `hdfs dfs -chmod 777 /`
    emu.namespace.set_meta("/", permission="777")
    try:
        yield emu
    finally:
        emu.stop()



def pytest_collection_modifyitems(items):
    """Tests that need the Ceph cluster or the real HDFS are ``slow`` (the project's marker for real servers)."""
    for item in items:
        if "radosgw" in item.nodeid or "radosgw_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        if "real-hdfs" in item.nodeid or "hdfs_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
