"""The registry contract: one interface over the S3 and HDFS backends (servers in tests/service_fixtures.py)."""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from pathlib import Path

import pytest

from governance.registries.file import FileRegistry
from governance.registries.hdfs import HdfsRegistry
from governance.registries.s3 import S3Registry
from governance.staging.validate import validate_repo
from tests.hdfs_fixtures import KINDS as HDFS_KINDS
from tests.hdfs_fixtures import Hdfs, hdfs_of_kind
from tests.service_fixtures import S3Server, unique_ids


# -- one interface over both backends, for the shared contract tests ---------------------------------------
class Backend(ABC):
    """A registry plus raw access to its storage, to tamper with it the way an operator or a crash could."""

    name: str
    registry: object

    @abstractmethod
    def put_raw(self, rel: str, data: bytes) -> None: ...

    @abstractmethod
    def get_raw(self, rel: str) -> bytes | None: ...

    @abstractmethod
    def list_raw(self) -> list[str]: ...


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
    """A registry root prepared for ``deployer`` on real HDFS or the emulator; raw access through WebHDFS."""

    def __init__(self, hdfs: Hdfs):
        self.name = hdfs.kind
        self.hdfs = hdfs
        self.root = f"{hdfs.fresh_folder()}/models"
        self.registry = HdfsRegistry(hdfs.uri(self.root))

    def put_raw(self, rel: str, data: bytes) -> None:
        self.hdfs.write(posixpath.join(self.root, rel), data)  # as the registry user, like a crashed publish

    def get_raw(self, rel: str) -> bytes | None:
        return self.hdfs.read(posixpath.join(self.root, rel))

    def list_raw(self) -> list[str]:
        return self.hdfs.files_under(self.root)


class FileBackend(Backend):
    def __init__(self, root: Path):
        self.name = "file"
        self.disk = root
        self.registry = FileRegistry(f"file://{root}")

    def put_raw(self, rel: str, data: bytes) -> None:
        target = self.disk / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def get_raw(self, rel: str) -> bytes | None:
        target = self.disk / rel
        return target.read_bytes() if target.is_file() else None

    def list_raw(self) -> list[str]:
        if not self.disk.is_dir():
            return []
        return sorted(posixpath.join(*p.relative_to(self.disk).parts) for p in self.disk.rglob("*") if p.is_file())


@pytest.fixture(params=["s3-radosgw", "s3-moto", *HDFS_KINDS, "file"])
def backend(request, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Backend:
    if request.param == "file":
        return FileBackend(tmp_path / "models")
    if request.param in HDFS_KINDS:
        return HdfsBackend(hdfs_of_kind(request, request.param))
    kind = request.param.removeprefix("s3-")
    server = request.getfixturevalue("radosgw_server" if kind == "radosgw" else "moto_s3_server")
    for var, value in (("AWS_ENDPOINT_URL", server.endpoint_url), ("AWS_ACCESS_KEY_ID", server.access_key),
                       ("AWS_SECRET_ACCESS_KEY", server.secret_key), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, value)
    name = f"reg-{next(unique_ids)}-{kind}"
    server.client().create_bucket(Bucket=name)
    return S3Backend(server, name)


# -- staged repos -------------------------------------------------------------------------------------------
@pytest.fixture
def make_staged(tmp_path: Path):
    """Build and validate a staged repo folder; returns a StagedRepo."""

    def make(name: str = "iris", version: str = "1", model: bytes = b"model-bytes" * 100,
             extra: dict[str, bytes] | None = None, model_file: str = "model.joblib"):
        root = tmp_path / f"staged-{next(unique_ids)}"
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
