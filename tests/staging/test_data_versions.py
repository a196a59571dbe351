"""Training-data versions: Iceberg snapshots, S3 version ids, sha256 of files, MLflow digests."""

from __future__ import annotations

import hashlib

import pytest

from governance.errors import ValidationError
from governance.staging.data_versions import parse_entry
from governance.staging.validate import validate_repo
from tests.conftest import write_metadata


@pytest.mark.parametrize(("entry", "location", "version", "kind"), [
    ("iceberg://prod/sales.orders@5123456789", "iceberg://prod/sales.orders", "5123456789", "iceberg_snapshot"),
    ("iceberg://prod/sales.orders", "iceberg://prod/sales.orders", None, None),
    ("s3://data/iris.csv?versionId=3HL4kqtJlcpXroDTDmJ", "s3://data/iris.csv", "3HL4kqtJlcpXroDTDmJ",
     "s3_version_id"),
    (f"hdfs://nn:8020/data/iris.csv#sha256={'a' * 64}", "hdfs://nn:8020/data/iris.csv", "a" * 64, "sha256"),
    ("file:///data/iris.csv#digest=470bc25c", "file:///data/iris.csv", "470bc25c", "mlflow_digest"),
    ("hdfs://nn:8020/data/raw", "hdfs://nn:8020/data/raw", None, None),
])
def test_entries_carry_their_version(entry, location, version, kind):
    parsed, problem = parse_entry(entry)
    assert problem is None
    assert (parsed.location, parsed.version, parsed.kind) == (location, version, kind)
    if version:
        assert parsed.versioned_uri == entry  # one name per exact data version


@pytest.mark.parametrize(("entry", "says"), [
    ("iceberg://prod/sales.orders@latest", "snapshot id must be a number"),
    ("iceberg://prod/orders@1", "iceberg://CATALOG/DB.TABLE@SNAPSHOT_ID"),
    ("s3://data/iris.csv?versionId=a&partNumber=2", "?versionId=ID"),
    ("hdfs://nn/x.csv#sha256=abc", "64 lowercase hex digits"),
    ("hdfs://nn/x.csv#md5=abc", "unknown version marker #md5"),
])
def test_malformed_versions_are_refused(entry, says):
    parsed, problem = parse_entry(entry)
    assert parsed is None and says in problem


def test_local_files_are_hashed_and_stated_hashes_checked(example_repo, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELGOV_DATA_ROOTS", str(tmp_path))  # the data lives beside the staged repo
    data = tmp_path / "train.csv"
    data.write_bytes(b"a,b\n1,2\n")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    write_metadata(example_repo, model_training_data=f"data/iris.csv, {data.as_uri()}, "
                                                     "iceberg://prod/sales.orders@42")
    staged = validate_repo(example_repo)
    versions = {v.entry: v for v in staged.data_versions}
    assert (versions[data.as_uri()].version, versions[data.as_uri()].kind) == (digest, "sha256")
    assert versions["iceberg://prod/sales.orders@42"].version == "42"
    assert versions["data/iris.csv"].version is None  # versioned by the registry manifest

    write_metadata(example_repo, model_training_data=f"{data.as_uri()}#sha256={'0' * 64}, "
                                                     f"{(tmp_path / 'gone.csv').as_uri()}")
    with pytest.raises(ValidationError) as info:
        validate_repo(example_repo)
    text = str(info.value)
    assert f"{data} has sha256 {digest}, not the one stated" in text
    assert "gone.csv is not a readable file here" in text


def test_the_registry_version_keeps_the_data_versions_it_was_trained_on(example_repo, tmp_path, monkeypatch):
    """A registry version describes itself: a redeploy, or a rerun after the local file changed, still
    records the data version the build was registered with."""
    monkeypatch.setenv("MODELGOV_DATA_ROOTS", str(tmp_path))
    from datetime import UTC, datetime

    from governance.deploy.entities import build_entities
    from governance.deploy.record import DeploymentRecord, TargetInfo
    from governance.deploy.release import release_from_registry, staged_view
    from governance.registries.file import FileRegistry

    data = tmp_path / "train.csv"
    data.write_bytes(b"first")
    first_sha = hashlib.sha256(b"first").hexdigest()
    write_metadata(example_repo, model_training_data=f"{data.as_uri()}, iceberg://prod/sales.orders@42")
    staged = validate_repo(example_repo)
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    registry.publish(staged)
    data.write_bytes(b"changed after registration")

    release = release_from_registry(registry, "iris-classifier", "1.0")
    assert staged_view(release).data_versions == staged.data_versions
    rerun = validate_repo(example_repo)  # same staged files, but the local data now hashes differently
    record = DeploymentRecord(deployment_id="d1", staged=rerun, registered=release.registered,
                              target=TargetInfo("mlserver", "mlserver://h:1?repository=/r", "h:1"),
                              started_at=datetime.now(UTC), deployed_by="ops")
    _, names = build_entities(record)
    assert sorted(qn for _, qn in names.training_data) == sorted([
        f"{data.as_uri()}#sha256={first_sha}@modelgov", "iceberg://prod/sales.orders@42@modelgov"])
