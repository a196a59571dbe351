"""The MLflow REST client and metadata mapping without a server: credentials, typed errors, retries,
and which tag a missing metadata key names (the real server is in tests/flow/test_mlflow_source.py)."""

from __future__ import annotations

import pytest
import responses

from governance.errors import StagingError, ValidationError
from governance.staging.mlflow_client import (
    MLflowAuthError,
    MLflowClient,
    MLflowError,
    MLflowNotFound,
    MLflowUnavailable,
    ModelVersion,
    RegisteredModel,
    Run,
    TrackingSettings,
)
from governance.staging.mlflow_source import dataset_entry, map_metadata, parse_source

URL = "http://mlflow.test:5000"
API = f"{URL}/api/2.0/mlflow"
VERSION = {"model_version": {"name": "churn", "version": "3", "run_id": "r1", "description": "d",
                             "tags": [{"key": "model.type", "value": "gbm"}]}}


@pytest.fixture
def mlflow_env(monkeypatch):
    for var in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", URL)
    return monkeypatch


def test_credentials_come_from_mlflow_variables_never_the_uri(mlflow_env):
    mlflow_env.setenv("MLFLOW_TRACKING_URI", "http://alice:hunter2@mlflow.test:5000")
    with pytest.raises(MLflowError, match="contains credentials") as info:
        TrackingSettings.from_env()
    assert "hunter2" not in str(info.value)
    mlflow_env.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(MLflowError, match="MLFLOW_TRACKING_URI is not set"):
        TrackingSettings.from_env()


@responses.activate
def test_token_is_sent_as_bearer_and_versions_resolve(mlflow_env):
    mlflow_env.setenv("MLFLOW_TRACKING_TOKEN", "tok-123")
    responses.get(f"{API}/model-versions/get", json=VERSION)
    responses.get(f"{API}/registered-models/alias", json=VERSION)
    client = MLflowClient.from_env()
    version = client.get_model_version("churn", "3")
    assert (version.version, version.run_id, version.tags) == ("3", "r1", {"model.type": "gbm"})
    assert client.get_model_version_by_alias("churn", "champion").version == "3"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok-123"
    assert "alias=champion" in responses.calls[1].request.url


@responses.activate
def test_errors_are_typed_with_mlflow_error_code(mlflow_env):
    mlflow_env.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    mlflow_env.setenv("MLFLOW_TRACKING_PASSWORD", "pw-secret")
    responses.get(f"{API}/model-versions/get", status=404,
                  json={"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Model Version not found"})
    responses.get(f"{API}/registered-models/get", status=403, json={"error_code": "PERMISSION_DENIED",
                                                                    "message": "no"})
    responses.get(f"{API}/runs/get", status=503, body="busy")
    client = MLflowClient.from_env(retries=2)
    client._session.get_adapter(URL).max_retries.backoff_factor = 0  # keep the test fast
    with pytest.raises(MLflowNotFound) as info:
        client.get_model_version("churn", "9")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MLflowAuthError, match="PERMISSION_DENIED") as auth:
        client.get_registered_model("churn")
    assert "pw-secret" not in str(auth.value)
    with pytest.raises(MLflowUnavailable, match="HTTP 503"):
        client.get_run("r1")
    assert len([c for c in responses.calls if "runs/get" in c.request.url]) == 3  # bounded retries


def test_total_deadline_bounds_every_call(mlflow_env):
    client = MLflowClient.from_env(deadline_s=0)
    with pytest.raises(MLflowUnavailable, match="deadline"):
        client.get_model_version("churn", "3")


def test_non_proxied_artifact_store_is_refused_with_the_fix(mlflow_env, tmp_path):
    with pytest.raises(MLflowError, match="--serve-artifacts"):
        MLflowClient.from_env().download_artifacts("s3://bucket/1/models/m-1/artifacts", tmp_path)


def test_missing_metadata_names_the_tag_to_set():
    version = ModelVersion("churn", "3", "", "r1", None, {"model.type": "gbm"})
    with pytest.raises(ValidationError) as info:
        map_metadata(version, RegisteredModel("churn", "", {"team": "Ana"}), None, {"model.owner": "team_x"})
    lines = [str(p) for p in info.value.problems]
    assert "models:/churn/3: model.owner is missing: set the MLflow tag 'team_x' on model version churn 3 or " \
           "on registered model churn" in lines
    assert any("model.owner.lob is missing: set the MLflow tag 'model.owner.lob'" in line for line in lines)
    assert any(line.startswith("models:/churn/3: model.description is missing") for line in lines)


def test_a_name_modelgov_cannot_use_names_the_tag_that_renames_it():
    version = ModelVersion("Churn Model", "1", "d", None, None,
                           {"model.type": "gbm", "model.owner": "Ana", "model.owner.lob": "retail"})
    with pytest.raises(ValidationError, match="set the MLflow tag 'model.name' on registered model Churn Model"):
        map_metadata(version, RegisteredModel("Churn Model", ""), None, {})
    renamed = ModelVersion("Churn Model", "1", "d", None, None, {**version.tags, "model.name": "churn"})
    assert map_metadata(renamed, RegisteredModel("Churn Model", ""), None, {})["model.name"] == "churn"


def test_version_tags_win_over_registered_model_tags_and_datasets_carry_digests():
    version = ModelVersion("churn", "3", "churn model", "r1", None,
                           {"model.type": "gbm", "model.owner": "Ana", "model.owner.lob": "retail"})
    registered = RegisteredModel("churn", "", {"model.owner": "Old Owner", "model.cost.center": "cc-7"})
    run = Run("r1", {}, ())
    meta = map_metadata(version, registered, run, {})
    assert meta["model.owner"] == "Ana" and meta["model.cost.center"] == "cc-7"
    assert meta["model.mlflow.model.uri"] == "models:/churn/3" and meta["model.mlflow.run.id"] == "r1"
    assert dataset_entry("iris", "abc123", '{"uri": "/data/iris.csv"}') == "file:///data/iris.csv#digest=abc123"
    assert dataset_entry("my frame", "d1", '{"tags": {}}') == "mlflow-dataset://my-frame#digest=d1"


@pytest.mark.parametrize("source", ["models:/churn/Production", "models:/churn", "models:/churn/0"])
def test_only_versions_and_aliases_are_sources(source):
    with pytest.raises(StagingError, match="models:/NAME/VERSION or models:/NAME@ALIAS"):
        parse_source(source)


@responses.activate
@pytest.mark.parametrize("limits, says", [({"max_files": 2}, "more than 2 artifact files"),
                                          ({"max_bytes": 1000}, "600000 bytes, more than 1000")])
def test_artifacts_over_the_intake_limits_are_refused_before_downloading(mlflow_env, tmp_path, limits, says):
    """Issue 20: MLflow artifacts were held to fixed limits (10,000 files, 8 GiB), not the configured intake
    limits that bound archives and git sources."""
    listing = {"files": [{"path": f"m/{n}", "is_dir": False, "file_size": 200_000} for n in ("a", "b", "c")]}
    responses.get(f"{URL}/api/2.0/mlflow-artifacts/artifacts", json=listing)
    kwargs = {"max_files": 100, "max_bytes": 10**9, **limits}
    with pytest.raises(MLflowError, match=says) as info:
        MLflowClient.from_env().download_artifacts("mlflow-artifacts:/1/m", tmp_path, **kwargs)
    assert "the limit max_" in str(info.value)
    assert not list(tmp_path.iterdir())  # nothing downloaded
    assert len(responses.calls) == 1  # the listing only: no file was asked for


def test_a_local_artifact_store_is_held_to_the_limits_too(mlflow_env, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    for n in range(3):
        (store / f"f{n}").write_bytes(b"x" * 10)
    with pytest.raises(MLflowError, match="over the limit max_archive_files"):
        MLflowClient.from_env().download_artifacts(f"file://{store}", tmp_path / "dest", max_files=2)
    with pytest.raises(MLflowError, match="over the limit max_extracted_bytes"):
        MLflowClient.from_env().download_artifacts(f"file://{store}", tmp_path / "dest2", max_bytes=25)
