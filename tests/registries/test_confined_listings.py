"""Registry names and listed keys are confined like manifest paths: a lookup by a name that climbs is refused,
and ``registry gc`` never acts on (looks up, deletes by) a listed key or folder that is not a plain path
under the registry. Driven through ``modelgov registry verify | gc``."""

from __future__ import annotations

import pytest

from governance.cli.main import main


@pytest.mark.parametrize(("name", "version", "says"), [
    ("..", "victim", "name '..' climbs out with .."),
    ("iris/other", "1", "name 'iris/other' contains a /"),
    ("iris", "1\n", "version '1\\n' contains a NUL or control character"),
])
def test_a_lookup_by_a_name_that_is_not_one_segment_is_refused(backend, make_staged, capsys, name, version, says):
    if backend.name in ("s3-radosgw", "real-hdfs"):
        pytest.skip("the rule is the registry's, before any store is asked; moto, the emulator and file show it")
    backend.registry.publish(make_staged())
    assert main(["registry", "verify", backend.registry.uri, name, version]) == 1
    err = capsys.readouterr().err
    assert says in err and "one plain path segment" in err


@pytest.mark.parametrize("key", ["../victim/1/attempt-x/model.bin", "iris/1/attempt-x/../../../escape.bin",
                                 "iris//1/attempt-x/model.bin"])
def test_gc_on_s3_never_acts_on_a_key_that_climbs(backend, make_staged, capsys, key):
    if backend.name != "s3-moto":
        pytest.skip("S3 keys are free-form strings; folders on HDFS and disk cannot be named like this")
    backend.registry.publish(make_staged())
    backend.put_raw(key, b"not ours")

    assert main(["registry", "gc", backend.registry.uri, "--older-than", "0"]) == 0

    assert "removed 0 leftover(s)" in capsys.readouterr().err
    assert backend.get_raw(key) == b"not ours"
    assert backend.registry.verify(backend.registry.lookup("iris", "1")) == []


def test_gc_on_hdfs_never_acts_on_a_folder_name_with_a_control_character(backend, make_staged, capsys):
    if backend.name != "webhdfs-emulator":
        pytest.skip("a real HDFS keeps such names too; the emulator shows the rule without a cluster")
    backend.registry.publish(make_staged())
    backend.put_raw("iris/2\x1b[2J/model.bin", b"not ours")

    assert main(["registry", "gc", backend.registry.uri, "--older-than", "0"]) == 0

    assert "removed 0 leftover(s)" in capsys.readouterr().err
    assert backend.get_raw("iris/2\x1b[2J/model.bin") == b"not ours"
