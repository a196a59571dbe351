"""HDFS for the tests: a real MiniDFSCluster (``python -m testbed hdfs``, once per session) and the WebHDFS
emulator, behind one small interface so the same test runs against both and measures the emulator's fidelity.

Every test gets a fresh folder ``/t-N`` that the superuser ``hdfs`` creates for the registry user
``deployer`` (mode 755), the way an HDFS admin prepares a registry root on a real cluster.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hdfs import InsecureClient

from emulators.webhdfs import WebHdfsEmulator
from testbed.service import ServiceError
from tests.service_fixtures import unique_ids

SUPERUSER = "hdfs"
DEPLOYER = "deployer"
KINDS = ["webhdfs-emulator", "real-hdfs"]


@dataclass
class Hdfs:
    """One HDFS (real or emulated) as a test sees it: WebHDFS clients per user and fresh registry roots."""

    kind: str
    url: str
    emulator: WebHdfsEmulator | None = None
    _clients: dict[str, InsecureClient] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, user: str = DEPLOYER) -> InsecureClient:
        if user not in self._clients:
            self._clients[user] = InsecureClient(self.url, user=user, timeout=(5, 120))
        return self._clients[user]

    @property
    def admin(self) -> InsecureClient:
        return self.client(SUPERUSER)

    def fresh_folder(self, owner: str = DEPLOYER, permission: str = "755") -> str:
        """A new top-level folder owned by ``owner`` (as ``hdfs dfs -mkdir`` + ``-chown`` by the superuser)."""
        path = f"/t-{next(unique_ids)}"
        self.admin.makedirs(path, permission=permission)
        self.admin.set_owner(path, owner=owner)
        return path

    def uri(self, path: str) -> str:
        return f"hdfs://127.0.0.1:{self.port}{path}"

    def status(self, path: str) -> dict:
        return self.admin.status(path)

    def chown(self, path: str, owner: str, permission: str) -> None:
        self.admin.set_owner(path, owner=owner)
        self.admin.set_permission(path, permission=permission)

    def read(self, path: str) -> bytes | None:
        if self.admin.status(path, strict=False) is None:
            return None
        with self.admin.read(path) as reader:
            return reader.read()

    def write(self, path: str, data: bytes, user: str = DEPLOYER) -> None:
        self.client(user).write(path, data=data, overwrite=True)

    def files_under(self, root: str) -> list[str]:
        """Every file below ``root``, as paths relative to it."""
        found = []
        for folder, _, files in self.admin.walk(root):
            found += [posixpath.relpath(posixpath.join(folder, f), root) for f in files]
        return sorted(found)


@pytest.fixture(scope="session")
def hdfs_server(tmp_path_factory) -> Iterator[dict]:
    """One real HDFS (NameNode + DataNode) for the session, started as ``python -m testbed hdfs`` would."""
    from testbed.hdfs import HdfsService

    service = HdfsService(tmp_path_factory.mktemp("real-hdfs"))
    try:
        service.start()
    except ServiceError as exc:
        service.stop()
        pytest.fail(f"could not start the real HDFS (MiniDFSCluster): {exc}", pytrace=False)
    try:
        yield service.info
    finally:
        service.stop()


@pytest.fixture(scope="session")
def hdfs_ha_service(tmp_path_factory):
    """A real HA pair for the session: two NameNodes sharing one namespace (nn0 active, nn1 standby)."""
    from testbed.hdfs import HdfsService

    service = HdfsService(tmp_path_factory.mktemp("real-hdfs-ha"), ha=True)
    try:
        service.start()
    except ServiceError as exc:
        service.stop()
        pytest.fail(f"could not start the real HDFS HA pair (MiniDFSCluster): {exc}", pytrace=False)
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def real_hdfs(hdfs_server, monkeypatch: pytest.MonkeyPatch) -> Hdfs:
    monkeypatch.setenv("MODELGOV_HDFS_USER", DEPLOYER)
    monkeypatch.delenv("MODELGOV_HDFS_AUTH", raising=False)
    return Hdfs("real-hdfs", hdfs_server["url"])


def hdfs_of_kind(request: pytest.FixtureRequest, kind: str) -> Hdfs:
    if kind == "real-hdfs":
        return request.getfixturevalue("real_hdfs")
    emu = request.getfixturevalue("webhdfs")
    emu.namespace.set_meta("/", permission="755")  # the root as a real HDFS has it
    return Hdfs("webhdfs-emulator", emu.url, emulator=emu)


@pytest.fixture(params=KINDS)
def hdfs(request) -> Hdfs:
    """The same test against the WebHDFS emulator and a real HDFS; where they differ, the emulator is wrong."""
    return hdfs_of_kind(request, request.param)
