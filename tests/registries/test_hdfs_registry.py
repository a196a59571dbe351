"""HDFS-specific behaviour. Tests taking ``hdfs`` run against a real HDFS (MiniDFSCluster) and the WebHDFS
emulator alike; HA failover runs against a real HA pair and the emulator; the ones taking ``webhdfs`` alone
need what only the emulator can do (injected datanode failures, its request log)."""

from __future__ import annotations

import json
import os
import posixpath
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from emulators.webhdfs import WebHdfsEmulator
from governance.errors import ConfigError, RegistryError
from governance.registries import get_registry
from governance.registries.base import MANIFEST_NAME
from governance.registries.hdfs import HdfsRegistry
from tests.hdfs_fixtures import Hdfs

ROOT = Path(__file__).resolve().parents[2]


def _registry(emu: WebHdfsEmulator, path: str = "/data/models") -> HdfsRegistry:
    return HdfsRegistry(f"hdfs://127.0.0.1:{emu.port}{path}")


def test_files_are_owned_by_the_configured_user_with_octal_permissions(hdfs: Hdfs, make_staged):
    root = hdfs.fresh_folder()
    version = HdfsRegistry(hdfs.uri(f"{root}/models")).publish(make_staged())
    status = hdfs.status(f"{root}/models/iris/1/executable/model.joblib")
    assert status["owner"] == "deployer" and status["permission"] == "644"
    assert hdfs.status(f"{root}/models/iris/1")["permission"] == "755"
    assert hdfs.status(f"{root}/models")["owner"] == "deployer"  # the missing parent, made by the registry
    assert version.location == f"hdfs://127.0.0.1:{hdfs.port}{root}/models/iris/1"


def test_hadoop_user_name_is_the_fallback_user(hdfs: Hdfs, monkeypatch, make_staged):
    root = hdfs.fresh_folder(owner="etl")
    monkeypatch.delenv("MODELGOV_HDFS_USER")
    monkeypatch.setenv("HADOOP_USER_NAME", "etl")
    HdfsRegistry(hdfs.uri(root)).publish(make_staged())
    assert hdfs.status(f"{root}/iris/1/README.md")["owner"] == "etl"


def test_publish_is_a_rename_of_a_complete_temp_folder(webhdfs, make_staged):
    _registry(webhdfs).publish(make_staged())
    renames = [r for r in webhdfs.requests if "op=RENAME" in r]
    assert len(renames) == 1 and "/data/models/iris/.1.tmp-" in renames[0]
    creates = [r for r in webhdfs.requests if r.startswith("namenode") and "op=CREATE" in r]
    assert creates and all(".tmp-" in r for r in creates)
    assert not any("GETFILECHECKSUM" in r for r in webhdfs.requests)  # sha256 from the manifest, not HDFS
    assert sorted(p.name for p in (webhdfs.namespace.root / "data/models/iris").iterdir()) == ["1"]


def test_ha_fails_over_from_a_standby_namenode(tmp_path, monkeypatch, make_staged):
    monkeypatch.setenv("MODELGOV_HDFS_USER", "deployer")
    active = WebHdfsEmulator(tmp_path / "hdfs").start()
    active.namespace.set_meta("/", permission="777")
    standby = WebHdfsEmulator(tmp_path / "unused", standby=True, namespace=active.namespace).start()
    try:
        uri = f"hdfs://127.0.0.1:{standby.port},127.0.0.1:{active.port}/data/models"
        registry = HdfsRegistry(uri)
        assert registry.publish(make_staged()).created
        assert any(r.startswith("namenode") for r in standby.requests)  # asked first, answered StandbyException
        # failover the other way round: the old standby becomes active
        active.standby, standby.standby = True, False
        assert registry.publish(make_staged(version="2")).created
        assert registry.lookup("iris", "1") is not None and registry.lookup("iris", "2") is not None
        # no active namenode at all: a clear error naming both namenodes
        standby.standby = True
        with pytest.raises(RegistryError, match="StandbyException") as info:
            registry.lookup("iris", "1")
        assert str(active.port) in str(info.value) and str(standby.port) in str(info.value)
    finally:
        standby.stop()
        active.stop()


@pytest.mark.slow
def test_ha_fails_over_from_a_real_standby_namenode(hdfs_ha_service, monkeypatch, make_staged):
    """Hadoop's own HA pair: the standby answers StandbyException, the registry moves on; then a failover."""
    monkeypatch.setenv("MODELGOV_HDFS_USER", "deployer")
    monkeypatch.delenv("MODELGOV_HDFS_AUTH", raising=False)
    svc = hdfs_ha_service
    nn0, nn1 = svc.info["namenode_urls"]
    svc.transition(1, "standby")
    svc.transition(0, "active")
    try:
        root = Hdfs("real-hdfs", nn0).fresh_folder()
        ports = [u.rsplit(":", 1)[1] for u in (nn1, nn0)]
        registry = HdfsRegistry(f"hdfs://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}{root}")  # standby first
        assert registry.publish(make_staged()).created
        # failover the other way round: the old standby becomes active
        svc.transition(0, "standby")
        svc.transition(1, "active")
        assert registry.publish(make_staged(version="2")).created
        assert registry.lookup("iris", "1") is not None and registry.lookup("iris", "2") is not None
        assert Hdfs("real-hdfs", nn1).status(f"{root}/iris/2/MANIFEST.json")["owner"] == "deployer"
        # no active namenode at all: a clear error naming both namenodes
        svc.transition(1, "standby")
        with pytest.raises(RegistryError, match="StandbyException") as info:
            registry.lookup("iris", "1")
        assert ports[0] in str(info.value) and ports[1] in str(info.value)
    finally:
        svc.transition(1, "standby")
        svc.transition(0, "active")


def test_unreachable_namenode_fails_over_to_the_next(hdfs: Hdfs, make_staged):
    from emulators.radosgw import free_port

    root = hdfs.fresh_folder()
    registry = HdfsRegistry(f"hdfs://127.0.0.1:{free_port()},127.0.0.1:{hdfs.port}{root}")
    assert registry.publish(make_staged()).created


def test_permission_denied_is_an_error_not_a_missing_version(hdfs: Hdfs, make_staged):
    root = hdfs.fresh_folder()
    HdfsRegistry(hdfs.uri(root)).publish(make_staged())
    hdfs.chown(root, "someone-else", "700")
    with pytest.raises(RegistryError, match=f"AccessControlException.*user=deployer.*{root}") as info:
        HdfsRegistry(hdfs.uri(root)).lookup("iris", "1")
    assert "someone-else" in str(info.value)  # the message names who owns the folder
    with pytest.raises(RegistryError, match="AccessControlException.*user=deployer"):
        HdfsRegistry(hdfs.uri(root)).publish(make_staged(version="2"))


def test_model_folder_of_another_user_is_refused_on_the_datanode_step(hdfs: Hdfs, make_staged):
    """The model's folder exists and is not ours: MKDIRS passes, the two-step CREATE is refused by the
    datanode, which relays the namenode's AccessControlException (with a Java stack trace on real HDFS)."""
    root = hdfs.fresh_folder()
    hdfs.admin.makedirs(f"{root}/iris", permission="755")
    hdfs.admin.set_owner(f"{root}/iris", owner="other-team")
    with pytest.raises(RegistryError) as info:
        HdfsRegistry(hdfs.uri(root)).publish(make_staged())
    message = str(info.value)
    assert "AccessControlException" in message and "user=deployer" in message
    assert f'inode="{root}/iris":other-team:supergroup:drwxr-xr-x' in message
    assert "\tat org.apache" not in message and "\n" not in message  # one clear line, no Java stack
    assert hdfs.admin.list(f"{root}/iris") == []


def test_missing_parent_folders_are_created_for_the_registry_user(hdfs: Hdfs, make_staged):
    root = hdfs.fresh_folder()
    registry = HdfsRegistry(hdfs.uri(f"{root}/a/b/models"))
    assert registry.publish(make_staged()).created
    assert hdfs.status(f"{root}/a/b")["owner"] == "deployer"
    assert hdfs.files_under(root) == ["a/b/models/iris/1/MANIFEST.json", "a/b/models/iris/1/README.md",
                                      "a/b/models/iris/1/executable/model.joblib", "a/b/models/iris/1/metadata.txt"]


def test_missing_parent_the_user_may_not_create(hdfs: Hdfs, make_staged):
    """The parent is missing and only the superuser may create it (here: at HDFS's root): a clear error."""
    top = f"/not-yet-{hdfs.fresh_folder().lstrip('/')}"
    registry = HdfsRegistry(hdfs.uri(f"{top}/models"))
    with pytest.raises(RegistryError, match=f"mkdirs {top}/models/iris.*AccessControlException.*user=deployer"):
        registry.publish(make_staged())
    assert hdfs.admin.status(top, strict=False) is None


def test_registry_path_that_is_a_file(hdfs: Hdfs, make_staged):
    root = hdfs.fresh_folder()
    hdfs.write(f"{root}/models", b"not a folder")
    with pytest.raises(RegistryError, match=f"{root}/models"):
        HdfsRegistry(hdfs.uri(f"{root}/models")).publish(make_staged())
    assert hdfs.read(f"{root}/models") == b"not a folder"


def test_version_path_that_is_a_file(hdfs: Hdfs, make_staged):
    root = hdfs.fresh_folder()
    hdfs.write(f"{root}/iris/1", b"oops")
    with pytest.raises(RegistryError, match=f"{root}/iris/1"):
        HdfsRegistry(hdfs.uri(root)).publish(make_staged())
    assert hdfs.admin.list(f"{root}/iris") == ["1"] and hdfs.read(f"{root}/iris/1") == b"oops"


KILLED_PUBLISHER = textwrap.dedent("""
    import os, signal, sys
    from governance.registries import base, hdfs as hdfs_registry
    from governance.staging.validate import validate_repo

    real_open = base.open_staged

    class DiesMidway:
        # the publisher's process is killed -9 after it streamed this many bytes of the artifact
        def __init__(self, raw, limit):
            self.raw, self.limit, self.sent = raw, limit, 0
        def read(self, n=-1):
            if self.sent >= self.limit:
                os.kill(os.getpid(), signal.SIGKILL)
            data = self.raw.read(n)
            self.sent += len(data)
            return data
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.raw.close()
        def close(self):
            self.raw.close()

    def open_staged(staged, rel):
        raw = real_open(staged, rel)
        return DiesMidway(raw, int(sys.argv[3])) if rel.startswith("executable/") else raw

    base.open_staged = open_staged
    hdfs_registry.HdfsRegistry(sys.argv[1]).publish(validate_repo(sys.argv[2], commit="0123abcd"))
""")


def test_retry_after_a_publisher_killed_mid_upload(hdfs: Hdfs, make_staged):
    """kill -9 in the middle of streaming the artifact: no version appears; the retry publishes it whole."""
    root = hdfs.fresh_folder()
    uri = hdfs.uri(root)
    staged = make_staged(model=os.urandom(3 << 20))
    proc = subprocess.run([sys.executable, "-c", KILLED_PUBLISHER, uri, str(staged.root), str(1 << 20)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    leftovers = hdfs.admin.list(f"{root}/iris")
    assert len(leftovers) == 1 and leftovers[0].startswith(".1.tmp-")  # the dead publisher's temp folder
    registry = HdfsRegistry(uri)
    assert registry.lookup("iris", "1") is None
    version = registry.publish(staged)
    assert version.created and registry.verify(version) == []
    assert registry.lookup("iris", "1") == version
    assert hdfs.files_under(posixpath.join(root, "iris", "1")) == sorted(
        ["MANIFEST.json", *(f.path for f in staged.files)])
    assert [lo.kind for lo in registry.gc(older_than=timedelta(0))] == ["temporary folder of an interrupted publish"]
    assert hdfs.admin.list(f"{root}/iris") == ["1"] and registry.verify(version) == []


def test_datanode_failing_mid_upload_leaves_no_version(webhdfs, make_staged):
    staged = make_staged(model=b"m" * 300_000, extra={"data/train.csv": b"x,y\n" * 50_000})
    webhdfs.inject_write_failure(after_bytes=250_000)
    registry = _registry(webhdfs)
    with pytest.raises(RegistryError, match="DiskErrorException.*No space left") as info:
        registry.publish(staged)
    assert ".tmp-" in str(info.value)
    assert registry.lookup("iris", "1") is None
    iris = webhdfs.namespace.root / "data/models/iris"
    # the attempt is removed; a datanode request of the other file still in flight may recreate its temp folder
    # after that (HDFS creates parents when the datanode opens the file), and gc removes that leftover
    from datetime import timedelta

    registry.gc(older_than=timedelta(0))
    assert list(iris.iterdir()) == []
    webhdfs.clear_failures()
    version = registry.publish(staged)
    assert version.created and registry.verify(version) == []


def test_disk_full_on_the_manifest_write(webhdfs, make_staged):
    staged = make_staged()
    total = sum(f.size for f in staged.files)
    webhdfs.inject_write_failure(after_bytes=total, exception="DSQuotaExceededException",
                                 message="The DiskSpace quota of /data is exceeded")
    with pytest.raises(RegistryError, match=f"{MANIFEST_NAME}.*DSQuotaExceededException"):
        _registry(webhdfs).publish(staged)
    assert _registry(webhdfs).lookup("iris", "1") is None


def test_commit_never_moves_into_an_existing_version(hdfs: Hdfs, make_staged):
    """Plain RENAME onto an existing folder moves the source inside it; the commit (rename2) is refused."""
    root = hdfs.fresh_folder()
    registry = HdfsRegistry(hdfs.uri(root))
    registry.publish(make_staged())
    before = hdfs.files_under(f"{root}/iris/1")
    staged = make_staged(model=b"other bytes")
    attempt = registry._begin("iris", "1")
    registry._stage_file(staged, attempt, staged.executable_file, lambda n: None)
    assert registry._commit(attempt, b"{}") is False
    assert hdfs.files_under(f"{root}/iris/1") == before


def test_rename_race_lost_to_an_identical_publisher(hdfs: Hdfs, make_staged):
    """The version is committed by another publisher between our check and our rename."""
    root = hdfs.fresh_folder()
    registry = HdfsRegistry(hdfs.uri(root))
    staged = make_staged()
    other = HdfsRegistry(hdfs.uri(root))
    original = registry._commit

    def commit_after_other_wins(attempt, manifest):
        other.publish(make_staged())
        return original(attempt, manifest)

    registry._commit = commit_after_other_wins
    result = registry.publish(staged)
    assert result.created is False
    assert hdfs.admin.list(f"{root}/iris") == ["1"]
    assert registry.verify(result) == []


def test_uri_parsing_and_config_errors(monkeypatch):
    r = HdfsRegistry("hdfs://nn1:9870,nn2:9871/registry/models/")
    assert r.namenodes == ["http://nn1:9870", "http://nn2:9871"] and r.root == "/registry/models"
    assert HdfsRegistry("webhdfs://nn1/registry").namenodes == ["http://nn1:9870"]
    assert isinstance(get_registry("webhdfs://nn1:9870/registry"), HdfsRegistry)
    with pytest.raises(ConfigError, match="absolute folder"):
        HdfsRegistry("hdfs://nn1:9870")
    with pytest.raises(ConfigError, match="no namenode"):
        HdfsRegistry("hdfs:///registry")
    monkeypatch.setenv("MODELGOV_HDFS_AUTH", "digest")
    with pytest.raises(ConfigError, match="'digest' is not supported"):
        HdfsRegistry("hdfs://nn1:9870/registry")


def test_kerberos_without_the_extra_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MODELGOV_HDFS_AUTH", "kerberos")
    monkeypatch.setitem(sys.modules, "requests_gssapi", None)  # as if the kerberos extra were missing
    with pytest.raises(ConfigError, match=r"model-governance\[kerberos\]' \(requests-gssapi"):
        HdfsRegistry("hdfs://nn1:9870/registry")


@pytest.mark.slow
def test_one_gib_publish_to_real_hdfs_in_bounded_memory(real_hdfs: Hdfs, tmp_path):
    """Chunked writes: publishing 1 GiB keeps the publisher's peak RSS under the benchmark's bound (150 MB)."""
    from bench.registry import RSS_TARGET
    from bench.registry import make_staged as make_big_staged

    staged = make_big_staged(tmp_path / "big", 1024)
    root = real_hdfs.fresh_folder()
    try:
        out = subprocess.run([sys.executable, "-m", "bench.registry", "--rss-child", "ours", real_hdfs.uri(root),
                              str(staged)], cwd=ROOT, capture_output=True, text=True, timeout=900,
                             env=os.environ.copy())
        assert out.returncode == 0, out.stderr[-2000:]
        child = json.loads(out.stdout.strip().splitlines()[-1])
        assert child["peak_rss_mb"] <= RSS_TARGET.bound, child
        status = real_hdfs.status(f"{root}/bench/1/executable/model.bin")
        assert status["length"] == 1 << 30
        version = HdfsRegistry(real_hdfs.uri(root)).lookup("bench", "1")
        assert version is not None
        assert {f.path: f.size for f in version.manifest.files}["executable/model.bin"] == 1 << 30
    finally:
        real_hdfs.admin.delete(root, recursive=True)  # give the DataNode's disk back
