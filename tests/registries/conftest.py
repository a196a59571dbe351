"""Servers for the registry tests: real Ceph radosgw and moto (S3), the WebHDFS emulator (HDFS).

radosgw and moto start once per session; every test gets its own bucket or HDFS root. A missing Ceph
install FAILS the radosgw tests (it is a required test dependency, not an optional one).
"""

from __future__ import annotations

import itertools
import posixpath
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from emulators.radosgw import INSTALL_HINT, RadosgwCluster, RadosgwError, free_port, missing_binaries
from emulators.webhdfs import WebHdfsEmulator
from governance.registries.hdfs import HdfsRegistry
from governance.registries.s3 import S3Registry
from governance.staging.validate import validate_repo

_counter = itertools.count()


@dataclass
class S3Server:
    kind: str
    endpoint_url: str
    access_key: str
    secret_key: str

    def client(self, secret_key: str | None = None):
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=secret_key or self.secret_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


@pytest.fixture(scope="session")
def radosgw_server():
    missing = missing_binaries()
    if missing:
        pytest.fail(f"Ceph radosgw is required for the S3 registry tests; missing {', '.join(missing)}. "
                    f"Install with: {INSTALL_HINT}", pytrace=False)
    cluster = RadosgwCluster(memstore_bytes=1 << 30)
    try:
        cluster.start()
    except RadosgwError as exc:
        pytest.fail(f"could not start the Ceph radosgw test cluster: {exc}", pytrace=False)
    try:
        yield S3Server("radosgw", cluster.endpoint_url, cluster.access_key, cluster.secret_key)
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
    name = f"reg-{next(_counter)}-{s3_env.kind}"
    s3_env.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def webhdfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MODELGOV_HDFS_USER", "deployer")
    monkeypatch.delenv("MODELGOV_HDFS_AUTH", raising=False)
    emu = WebHdfsEmulator(tmp_path / "hdfs", "127.0.0.1", 0).start()
    try:
        yield emu
    finally:
        emu.stop()


# -- one interface over both backends, for the shared contract tests ---------------------------------------
class Backend:
    """A registry plus raw access to its storage, to tamper with it the way an operator or a crash could."""

    name: str
    registry: object

    def put_raw(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def get_raw(self, rel: str) -> bytes | None:
        raise NotImplementedError

    def list_raw(self) -> list[str]:
        raise NotImplementedError


class S3Backend(Backend):
    def __init__(self, server: S3Server, bucket: str):
        self.name = f"s3-{server.kind}"
        self.s3 = server.client()
        self.bucket = bucket
        self.registry = S3Registry(f"s3://{bucket}/models")

    def put_raw(self, rel: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"models/{rel}", Body=data)

    def get_raw(self, rel: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=f"models/{rel}")["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def list_raw(self) -> list[str]:
        out = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="models/")
        return sorted(o["Key"][len("models/"):] for o in out.get("Contents", []))


class HdfsBackend(Backend):
    def __init__(self, emu: WebHdfsEmulator):
        self.name = "hdfs"
        self.emu = emu
        self.registry = HdfsRegistry(f"hdfs://127.0.0.1:{emu.port}/data/models")
        self.disk = emu.namespace.root / "data" / "models"

    def put_raw(self, rel: str, data: bytes) -> None:
        target = self.disk / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def get_raw(self, rel: str) -> bytes | None:
        target = self.disk / rel
        return target.read_bytes() if target.is_file() else None

    def list_raw(self) -> list[str]:
        return sorted(posixpath.join(*p.relative_to(self.disk).parts) for p in self.disk.rglob("*") if p.is_file())


@pytest.fixture(params=["s3-radosgw", "s3-moto", "hdfs"])
def backend(request, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "hdfs":
        return HdfsBackend(request.getfixturevalue("webhdfs"))
    kind = request.param.removeprefix("s3-")
    server = request.getfixturevalue("radosgw_server" if kind == "radosgw" else "moto_s3_server")
    for var, value in (("AWS_ENDPOINT_URL", server.endpoint_url), ("AWS_ACCESS_KEY_ID", server.access_key),
                       ("AWS_SECRET_ACCESS_KEY", server.secret_key), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, value)
    name = f"reg-{next(_counter)}-{kind}"
    server.client().create_bucket(Bucket=name)
    return S3Backend(server, name)


# -- staged repos -------------------------------------------------------------------------------------------
@pytest.fixture
def make_staged(tmp_path: Path):
    """Build and validate a staged repo folder; returns a StagedRepo."""

    def make(name: str = "iris", version: str = "1", model: bytes = b"model-bytes" * 100,
             extra: dict[str, bytes] | None = None, model_file: str = "model.joblib"):
        root = tmp_path / f"staged-{next(_counter)}"
        (root / "executable").mkdir(parents=True)
        (root / "metadata.txt").write_text(
            f"model.name={name}\nmodel.version={version}\nmodel.type=sklearn\nmodel.owner=alice\n"
            f"model.owner.lob=risk\nmodel.description=test model\n")
        (root / "README.md").write_text("# test model\n")
        (root / "executable" / model_file).write_bytes(model)
        for rel, data in (extra or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return validate_repo(root, commit="0123abcd")

    return make


def pytest_collection_modifyitems(items):
    """Tests that need the Ceph cluster are ``slow`` (the project's marker for real servers)."""
    for item in items:
        if "radosgw" in item.nodeid or "radosgw_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
