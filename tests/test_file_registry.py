import json
import os
import stat
from datetime import timedelta

import pytest

from governance.errors import ConfigError, ImmutableVersionError, IntegrityError, RegistryError
from governance.registries import get_registry
from governance.registries.base import MANIFEST_NAME
from governance.staging.validate import validate_repo


@pytest.fixture
def registry(tmp_path):
    return get_registry(f"file://{tmp_path / 'registry'}")


def test_publish_writes_files_and_manifest_last(example_repo, registry, tmp_path):
    staged = validate_repo(example_repo)
    version = registry.publish(staged)
    folder = tmp_path / "registry" / "iris-classifier" / "1.0"
    assert version.created and version.location == f"file://{folder}"
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {f.path: f.sha256 for f in staged.files}
    assert manifest["executable"] == "executable/model.joblib"
    assert (folder / "executable" / "model.joblib").read_bytes() == (example_repo / "executable" /
                                                                       "model.joblib").read_bytes()
    assert registry.lookup("iris-classifier", "1.0") == version
    assert registry.verify(version) == []


def test_identical_republish_is_a_noop(example_repo, registry):
    staged = validate_repo(example_repo)
    first = registry.publish(staged)
    again = registry.publish(validate_repo(example_repo))
    assert not again.created
    assert again.manifest.published_at == first.manifest.published_at


def test_different_bytes_are_refused_and_original_kept(example_repo, registry, tmp_path):
    registry.publish(validate_repo(example_repo))
    original = (tmp_path / "registry/iris-classifier/1.0/README.md").read_bytes()
    (example_repo / "README.md").write_text("# something else\n")
    with pytest.raises(ImmutableVersionError, match=r"differs in: README\.md.*bump model\.version"):
        registry.publish(validate_repo(example_repo))
    assert (tmp_path / "registry/iris-classifier/1.0/README.md").read_bytes() == original


def test_folder_without_manifest_is_not_a_version_and_gc_removes_it(example_repo, registry, tmp_path):
    """Only a copy made by hand (or an old modelgov) leaves one: publish refuses to touch it, gc removes it."""
    partial = tmp_path / "registry/iris-classifier/1.0"
    partial.mkdir(parents=True)
    (partial / "README.md").write_text("half-written")
    assert registry.lookup("iris-classifier", "1.0") is None
    with pytest.raises(RegistryError, match="holds no manifest.*registry gc"):
        registry.publish(validate_repo(example_repo))
    assert (partial / "README.md").read_text() == "half-written"
    assert [p.name for p in (tmp_path / "registry/iris-classifier").iterdir()] == ["1.0"]  # attempt dropped
    assert [lo.uri for lo in registry.gc(older_than=timedelta(0))] == [f"file://{partial}"]
    version = registry.publish(validate_repo(example_repo))
    assert version.created and registry.verify(version) == []


def test_folders_respect_the_umask(example_repo, registry, tmp_path):
    """Serving processes run as other users: folders are not 0700 (as tempfile.mkdtemp would make them)."""
    old = os.umask(0o022)
    try:
        registry.publish(validate_repo(example_repo))
    finally:
        os.umask(old)
    folder = tmp_path / "registry/iris-classifier/1.0"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "executable").stat().st_mode) == 0o755
    assert stat.S_IMODE((folder / "executable" / "model.joblib").stat().st_mode) == 0o644


def test_file_changed_after_validation_is_an_integrity_error(example_repo, registry, tmp_path):
    staged = validate_repo(example_repo)
    (example_repo / "executable" / "model.joblib").write_bytes(b"swapped after validation")
    with pytest.raises(IntegrityError, match="changed after validation"):
        registry.publish(staged)
    assert registry.lookup("iris-classifier", "1.0") is None
    assert not (tmp_path / "registry/iris-classifier/1.0").exists()
    assert [p.name for p in (tmp_path / "registry/iris-classifier").iterdir()] == []


def test_verify_detects_tampering(example_repo, registry, tmp_path):
    version = registry.publish(validate_repo(example_repo))
    (tmp_path / "registry/iris-classifier/1.0/executable/model.joblib").write_bytes(b"tampered")
    problems = registry.verify(version)
    assert len(problems) == 1 and "executable/model.joblib" in problems[0] and "manifest says" in problems[0]


def test_path_that_is_a_file(example_repo, tmp_path):
    (tmp_path / "registry").mkdir()
    (tmp_path / "registry" / "iris-classifier").write_text("a file in the way")
    with pytest.raises(RegistryError, match="is not a folder"):
        get_registry(f"file://{tmp_path / 'registry'}").publish(validate_repo(example_repo))


def test_bad_uris():
    with pytest.raises(ConfigError, match="known: file, hdfs, s3, swebhdfs, webhdfs"):
        get_registry("ftp://host/x")
    with pytest.raises(ConfigError, match="file:///abs/path"):
        get_registry("file://host/relative")


def test_damaged_manifest_is_a_registry_error_naming_it(example_repo, registry, tmp_path):
    registry.publish(validate_repo(example_repo))
    manifest = tmp_path / "registry/iris-classifier/1.0" / MANIFEST_NAME
    manifest.write_text('{"format": 1, "files": "truncated')
    with pytest.raises(RegistryError, match=rf"{manifest} is not a valid manifest"):
        registry.lookup("iris-classifier", "1.0")
