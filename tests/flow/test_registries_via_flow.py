"""The flow publishes to each registry kind and Atlas points the build at the registry entity."""

from __future__ import annotations

import pytest
import yaml

from flows.deploy_model import deploy_model
from tests.conftest import write_metadata

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_bucket(radosgw_server, monkeypatch):
    """A fresh bucket on the real Ceph radosgw, with AWS_* set as an operator would."""
    from tests.service_fixtures import unique_ids

    for var in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", radosgw_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", radosgw_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", radosgw_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    name = f"flow-{next(unique_ids)}"
    radosgw_server.client().create_bucket(Bucket=name)
    return name


def registry_copy_of(atlas_client, summary) -> dict:
    build = atlas_client.get_entity(summary["atlas"]["build"]["guid"])["entity"]
    copy_ref = build["relationshipAttributes"]["registryCopy"]
    return atlas_client.get_entity(copy_ref["guid"])["entity"]


def test_s3_registry_on_radosgw_to_mlserver(prefect_api, example_repo, mlserver, atlas, atlas_client, s3_bucket):
    write_metadata(example_repo, model_name="flow-s3")
    summary = deploy_model(source=str(example_repo), target=mlserver.target_uri(),
                           registry=f"s3://{s3_bucket}/models", atlas_url=atlas.url)
    assert summary["status"] == "deployed"
    assert summary["registry_uri"] == f"s3://{s3_bucket}/models/flow-s3/1.0"
    assert summary["prediction"][0]["data"] == [0, 2]  # MLServer serves the bytes read back from S3
    copy = registry_copy_of(atlas_client, summary)
    assert copy["typeName"] == "aws_s3_v2_directory"
    assert copy["attributes"]["qualifiedName"] == f"s3://{s3_bucket}/models/flow-s3/1.0/@modelgov"
    assert copy["relationshipAttributes"]["container"]["typeName"] == "aws_s3_v2_directory"
    from governance.registries import get_registry

    files = get_registry(f"s3://{s3_bucket}/models").lookup("flow-s3", "1.0").data_location  # the winning attempt
    assert files.startswith(f"s3://{s3_bucket}/models/flow-s3/1.0/attempt-")
    data = atlas_client.get_entity_by_unique("aws_s3_v2_object", f"{files}/data/iris.csv@modelgov")
    assert data is not None  # the training data is the registry copy of data/iris.csv


def test_hdfs_registry_to_kserve(prefect_api, example_repo, webhdfs, atlas, atlas_client, fake_kubectl, tmp_path):
    write_metadata(example_repo, model_name="flow-hdfs")
    fake_kubectl.set(ready_after=1)
    port = webhdfs.url.rsplit(":", 1)[1]
    summary = deploy_model(source=str(example_repo), target="kserve://models?context=prod&poll_interval=0.05",
                           registry=f"hdfs://127.0.0.1:{port}/registry", atlas_url=atlas.url,
                           environment="production")
    assert summary["status"] == "deployed" and summary["target"] == {"kind": "kserve", "detail": "prod/models"}
    applied = [c for c in fake_kubectl.calls() if "apply" in c["argv"]]
    assert len(applied) == 1 and "--context" in applied[0]["argv"]
    manifest = yaml.safe_load(applied[0]["stdin"])
    # KServe reads an hdfs:// storageUri as a path (namenodes come from its secret), at the executable folder
    assert manifest["spec"]["predictor"]["model"]["storageUri"] == "hdfs://registry/flow-hdfs/1.0/executable"
    copy = registry_copy_of(atlas_client, summary)
    assert copy["typeName"] == "hdfs_path"
    assert copy["attributes"]["qualifiedName"] == f"hdfs://127.0.0.1:{port}/registry/flow-hdfs/1.0@modelgov"
    deployment = atlas_client.get_entity(summary["atlas"]["deployment"]["guid"])["entity"]
    assert deployment["attributes"]["targetKind"] == "kserve"
    assert deployment["attributes"]["status"] == "deployed"
    assert [c["typeName"] for c in deployment["classifications"]] == ["modelgov_production"]
    assert (tmp_path / "hdfs").exists()


def test_real_hdfs_registry_to_mlserver(prefect_api, example_repo, mlserver, atlas, atlas_client, real_hdfs):
    """The sklearn example through the flow into a real HDFS (MiniDFSCluster) and out to a real MLServer."""
    write_metadata(example_repo, model_name="flow-real-hdfs")
    root = real_hdfs.fresh_folder()
    registry = real_hdfs.uri(f"{root}/registry")
    summary = deploy_model(source=str(example_repo), target=mlserver.target_uri(), registry=registry,
                           atlas_url=atlas.url)
    assert summary["status"] == "deployed"
    assert summary["registry_uri"] == f"{registry}/flow-real-hdfs/1.0"
    assert summary["prediction"][0]["data"] == [0, 2]  # MLServer serves the bytes read back from HDFS
    stored = real_hdfs.status(f"{root}/registry/flow-real-hdfs/1.0/executable/model.joblib")
    assert stored["owner"] == "deployer" and stored["length"] == (example_repo / "executable/model.joblib").stat().st_size
    copy = registry_copy_of(atlas_client, summary)
    assert copy["typeName"] == "hdfs_path"
    assert copy["attributes"]["qualifiedName"] == f"{registry}/flow-real-hdfs/1.0@modelgov"
    deployment = atlas_client.get_entity(summary["atlas"]["deployment"]["guid"])["entity"]
    assert deployment["attributes"]["status"] == "deployed"
    assert deployment["attributes"]["serializedObjectUri"] == f"{registry}/flow-real-hdfs/1.0/executable/model.joblib"
