"""Registry names and listed keys are confined like manifest paths: a lookup by a name that climbs is refused,
and ``registry gc`` never acts on (looks up, deletes by) a listed key or folder that is not a plain path
under the registry. Driven through ``modelgov registry verify | gc``."""

from __future__ import annotations

import pytest

from governance.cli.main import main
from tests.hdfs_fixtures import hdfs_of_kind
from tests.registries.conftest import FileBackend, HdfsBackend, S3Backend
from tests.service_fixtures import unique_ids


def moto_backend(request, monkeypatch) -> S3Backend:
    server = request.getfixturevalue("moto_s3_server")
    for var, value in (("AWS_ENDPOINT_URL", server.endpoint_url), ("AWS_ACCESS_KEY_ID", server.access_key),
                       ("AWS_SECRET_ACCESS_KEY", server.secret_key), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, value)
    name = f"reg-{next(unique_ids)}-confined"
    server.client().create_bucket(Bucket=name)
    return S3Backend(server, name)


@pytest.fixture(params=["s3-moto", "webhdfs-emulator", "file"])
def store(request, monkeypatch, tmp_path):
    """The rule is the registry's, checked before any store is asked: shown on each kind of store, with the
    stand-ins (the shared contract tests cover radosgw and a real HDFS)."""
    if request.param == "file":
        return FileBackend(tmp_path / "models")
    if request.param == "webhdfs-emulator":
        return HdfsBackend(hdfs_of_kind(request, "webhdfs-emulator"))
    return moto_backend(request, monkeypatch)


@pytest.mark.parametrize(("name", "version", "says"), [
    ("..", "victim", "name '..' climbs out with .."),
    ("iris/other", "1", "name 'iris/other' contains a /"),
    ("iris", "1\n", "version '1\\n' contains a NUL or control character"),
])
def test_a_lookup_by_a_name_that_is_not_one_segment_is_refused(store, make_staged, capsys, name, version, says):
    backend = store
    backend.registry.publish(make_staged())
    assert main(["registry", "verify", backend.registry.uri, name, version]) == 1
    err = capsys.readouterr().err
    assert says in err and "one plain path segment" in err


@pytest.mark.parametrize("key", ["../victim/1/attempt-x/model.bin", "iris/1/attempt-x/../../../escape.bin",
                                 "iris//1/attempt-x/model.bin"])
def test_gc_on_s3_never_acts_on_a_key_that_climbs(request, monkeypatch, make_staged, capsys, key):
    """S3 keys are free-form strings; folders on HDFS and disk cannot be named like this."""
    backend = moto_backend(request, monkeypatch)
    backend.registry.publish(make_staged())
    backend.put_raw(key, b"not ours")

    assert main(["registry", "gc", backend.registry.uri, "--older-than", "0"]) == 0

    assert "removed 0 leftover(s)" in capsys.readouterr().err
    assert backend.get_raw(key) == b"not ours"
    assert backend.registry.verify(backend.registry.lookup("iris", "1")) == []


def test_gc_on_hdfs_never_acts_on_a_folder_name_with_a_control_character(request, make_staged, capsys):
    backend = HdfsBackend(hdfs_of_kind(request, "webhdfs-emulator"))
    backend.registry.publish(make_staged())
    backend.put_raw("iris/2\x1b[2J/model.bin", b"not ours")

    assert main(["registry", "gc", backend.registry.uri, "--older-than", "0"]) == 0

    assert "removed 0 leftover(s)" in capsys.readouterr().err
    assert backend.get_raw("iris/2\x1b[2J/model.bin") == b"not ours"
