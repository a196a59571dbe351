"""HDFS-specific behaviour against the WebHDFS emulator: HA failover, permissions, failures, config."""

from __future__ import annotations

import sys

import pytest

from emulators.webhdfs import WebHdfsEmulator
from governance.errors import ConfigError, RegistryError
from governance.registries import get_registry
from governance.registries.base import MANIFEST_NAME
from governance.registries.hdfs import HdfsRegistry


def _registry(emu: WebHdfsEmulator, path: str = "/data/models") -> HdfsRegistry:
    return HdfsRegistry(f"hdfs://127.0.0.1:{emu.port}{path}")


def test_files_are_owned_by_the_configured_user_with_octal_permissions(webhdfs, make_staged):
    version = _registry(webhdfs).publish(make_staged())
    status = webhdfs.namespace.get_status("hdfs", "/data/models/iris/1/executable/model.joblib")
    assert status["owner"] == "deployer" and status["permission"] == "644"
    assert webhdfs.namespace.get_status("hdfs", "/data/models/iris/1")["permission"] == "755"
    assert not any("GETFILECHECKSUM" in r for r in webhdfs.requests)  # sha256 from the manifest, not HDFS
    assert version.location == f"hdfs://127.0.0.1:{webhdfs.port}/data/models/iris/1"


def test_hadoop_user_name_is_the_fallback_user(webhdfs, monkeypatch, make_staged):
    monkeypatch.delenv("MODELGOV_HDFS_USER")
    monkeypatch.setenv("HADOOP_USER_NAME", "etl")
    _registry(webhdfs).publish(make_staged())
    assert webhdfs.namespace.get_status("hdfs", "/data/models/iris/1/README.md")["owner"] == "etl"


def test_publish_is_a_rename_of_a_complete_temp_folder(webhdfs, make_staged):
    _registry(webhdfs).publish(make_staged())
    renames = [r for r in webhdfs.requests if "op=RENAME" in r]
    assert len(renames) == 1 and "/data/models/iris/.1.tmp-" in renames[0]
    creates = [r for r in webhdfs.requests if r.startswith("namenode") and "op=CREATE" in r]
    assert creates and all(".tmp-" in r for r in creates)
    assert sorted(p.name for p in (webhdfs.namespace.root / "data/models/iris").iterdir()) == ["1"]


def test_ha_fails_over_from_a_standby_namenode(tmp_path, monkeypatch, make_staged):
    monkeypatch.setenv("MODELGOV_HDFS_USER", "deployer")
    active = WebHdfsEmulator(tmp_path / "hdfs").start()
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


def test_unreachable_namenode_fails_over_to_the_next(webhdfs, make_staged):
    from emulators.radosgw import free_port

    registry = HdfsRegistry(f"hdfs://127.0.0.1:{free_port()},127.0.0.1:{webhdfs.port}/data/models")
    assert registry.publish(make_staged()).created


def test_permission_denied_is_an_error_not_a_missing_version(webhdfs, make_staged):
    _registry(webhdfs).publish(make_staged())
    webhdfs.namespace.set_meta("/data/models", owner="someone-else", permission="700")
    with pytest.raises(RegistryError, match="AccessControlException.*user=deployer"):
        _registry(webhdfs).lookup("iris", "1")
    with pytest.raises(RegistryError, match="AccessControlException"):
        _registry(webhdfs).publish(make_staged(version="2"))


def test_registry_path_that_is_a_file(webhdfs, make_staged):
    (webhdfs.namespace.root / "data").mkdir()
    (webhdfs.namespace.root / "data" / "models").write_bytes(b"not a folder")
    with pytest.raises(RegistryError, match="/data/models"):
        _registry(webhdfs).publish(make_staged())
    assert (webhdfs.namespace.root / "data" / "models").read_bytes() == b"not a folder"


def test_version_path_that_is_a_file(webhdfs, make_staged):
    (webhdfs.namespace.root / "data/models/iris").mkdir(parents=True)
    (webhdfs.namespace.root / "data/models/iris/1").write_bytes(b"oops")
    with pytest.raises(RegistryError, match="/data/models/iris/1 exists but holds no manifest"):
        _registry(webhdfs).publish(make_staged())
    assert sorted(p.name for p in (webhdfs.namespace.root / "data/models/iris").iterdir()) == ["1"]


def test_datanode_failing_mid_upload_leaves_no_version(webhdfs, make_staged):
    staged = make_staged(model=b"m" * 300_000, extra={"data/train.csv": b"x,y\n" * 50_000})
    webhdfs.inject_write_failure(after_bytes=250_000)
    registry = _registry(webhdfs)
    with pytest.raises(RegistryError, match="DiskErrorException.*No space left") as info:
        registry.publish(staged)
    assert ".tmp-" in str(info.value)
    assert registry.lookup("iris", "1") is None
    iris = webhdfs.namespace.root / "data/models/iris"
    assert list(iris.iterdir()) == []  # the partial temp folder was removed
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


def test_commit_never_moves_into_an_existing_version(webhdfs, make_staged):
    """Plain RENAME onto an existing folder moves the source inside it; the commit uses rename2 instead."""
    registry = _registry(webhdfs)
    registry.publish(make_staged())
    staged = make_staged(model=b"other bytes")
    attempt = registry._begin("iris", "1")
    registry._stage_file(staged, attempt, staged.executable_file, lambda n: None)
    assert registry._commit(attempt, b"{}") is False
    assert sorted(p.name for p in (webhdfs.namespace.root / "data/models/iris/1").iterdir()) == \
        [MANIFEST_NAME, "README.md", "executable", "metadata.txt"]
    assert any("renameoptions=NONE" in r for r in webhdfs.requests)


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
    monkeypatch.setitem(sys.modules, "hdfs.ext.kerberos", None)  # as if requests-kerberos were missing
    with pytest.raises(ConfigError, match="requests-kerberos"):
        HdfsRegistry("hdfs://nn1:9870/registry")
