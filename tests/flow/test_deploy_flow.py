"""The real Prefect flow end to end: staged repo -> file registry -> real MLServer -> Atlas, once with the
Atlas emulator and once with the session's real Apache Atlas (``atlas_server``)."""

from __future__ import annotations

import time

import pytest

from emulators.atlas import AtlasEmulator
from flows.deploy_model import deploy_model
from governance.errors import StepFailed, ValidationError
from governance.registries import get_registry
from tests.conftest import write_metadata
from tests.flow.conftest import model_name_for

pytestmark = pytest.mark.slow


@pytest.fixture
def atlas(atlas_server):
    """Every flow here runs against the emulator and against the real Atlas."""
    return atlas_server


def run(example_repo, tmp_path, mlserver, atlas, **kwargs):
    return deploy_model(source=str(example_repo), target=mlserver.target_uri(),
                        registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url, **kwargs)


def unique_model(request, example_repo, **metadata):
    """A model name of the test's own (the real Atlas and MLServer are shared by the session)."""
    name = model_name_for(request, "flow-" + request.node.originalname.replace("_", "-")[5:36].strip("-").lower())
    write_metadata(example_repo, model_name=name, **metadata)
    return name


def eventually(check, timeout: float = 60.0):
    """A real Atlas answers searches from its Solr index and may propagate classifications in background
    tasks (2.4): bounded poll; the emulator answers at once."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def deployments_of(atlas_client, name, expect: int = 1):
    params = {"typeName": "modelgov_model_deployment", "excludeDeletedEntities": True,
              "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": name},
              "attributes": ["status", "outcome", "stoppedTime", "failureReason"]}
    def found() -> list:
        hits = list(atlas_client.search_basic(params))
        return hits if len(hits) >= expect else []
    return eventually(found) or list(atlas_client.search_basic(params))


def test_deploy_records_full_lineage(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client, request):
    name = unique_model(request, example_repo)
    summary = run(example_repo, tmp_path, mlserver, atlas, environment="production")

    assert summary["status"] == "deployed"
    assert summary["model"] == {"name": name, "version": "1.0", "owner": "Ana Müller"}
    assert summary["endpoint"] == f"{mlserver.url}/v2/models/{name}/versions/1000000/infer"
    assert summary["prediction"][0]["data"] == [0, 2]
    artifacts = {a["path"]: a for a in summary["artifacts"]}
    registered = get_registry(f"file://{tmp_path / 'registry'}").lookup(name, "1.0")
    assert registered.location == summary["registry_uri"]
    assert {f.path: f.sha256 for f in registered.manifest.files} == {p: a["sha256"] for p, a in artifacts.items()}

    build = atlas_client.get_entity(summary["atlas"]["build"]["guid"])["entity"]
    assert build["typeName"] == "modelgov_model_build"
    assert build["attributes"]["qualifiedName"] == f"{name}/1.0@modelgov"
    assert build["attributes"]["version"] == 1_000_000
    assert build["attributes"]["owner"] == "Ana Müller"
    assert build["attributes"]["executableSha256"] == artifacts["executable/model.joblib"]["sha256"]
    assert build["attributes"]["artifactChecksums"] == {p: a["sha256"] for p, a in artifacts.items()}
    assert '"inputs"' in build["attributes"]["exampleRequest"]
    assert build["relationshipAttributes"]["registryCopy"]["typeName"] == "fs_path"
    assert build["relationshipAttributes"]["project"]["guid"] == summary["atlas"]["project"]["guid"]

    deployment = atlas_client.get_entity(summary["atlas"]["deployment"]["guid"])["entity"]
    attrs = deployment["attributes"]
    assert (attrs["status"], attrs["outcome"], attrs["targetKind"]) == ("deployed", "succeeded", "mlserver")
    assert attrs["modelEndpointURL"] == summary["endpoint"]
    assert attrs["serializedObjectUri"] == f"{registered.location}/executable/model.joblib"
    assert deployment["relationshipAttributes"]["build"]["guid"] == build["guid"]
    assert [c["typeName"] for c in deployment["classifications"]] == ["modelgov_production"]

    lineage = atlas_client.lineage(deployment["guid"], direction="INPUT", depth=0)
    types = {g: h["typeName"] for g, h in lineage["guidEntityMap"].items()}
    edges = {(types[r["fromEntityId"]], types[r["toEntityId"]]) for r in lineage["relations"]}
    assert edges == {("fs_path", "modelgov_train_build_process"),
                     ("modelgov_train_build_process", "modelgov_model_build"),
                     ("modelgov_model_build", "modelgov_deploy_process"),
                     ("fs_path", "modelgov_deploy_process"),
                     ("modelgov_deploy_process", "modelgov_model_deployment")}


def test_redeploying_the_same_bytes_is_a_verified_noop(prefect_api, example_repo, tmp_path, mlserver, atlas,
                                                        atlas_client, request):
    name = unique_model(request, example_repo)
    first = run(example_repo, tmp_path, mlserver, atlas)
    settings = mlserver.repository / name / "1000000" / "model-settings.json"
    before = settings.stat().st_mtime_ns
    second = run(example_repo, tmp_path, mlserver, atlas)

    assert second["registry_created"] is False
    assert second["status"] == "unchanged" and "already serves these exact bytes" in second["message"]
    assert second["existing_deployment"]["guid"] == first["atlas"]["deployment"]["guid"]
    assert settings.stat().st_mtime_ns == before  # nothing was reinstalled or reloaded
    [only] = deployments_of(atlas_client, name)  # no new deployment entity
    assert only["guid"] == first["atlas"]["deployment"]["guid"] and only["attributes"]["status"] == "deployed"


def test_failed_deploy_is_recorded_as_failed(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client,
                                             request):
    name = unique_model(request, example_repo)
    (example_repo / "executable" / "model.joblib").write_bytes(b"corrupt model bytes")
    with pytest.raises(StepFailed) as info:
        run(example_repo, tmp_path, mlserver, atlas)
    assert info.value.step == "deploy" and "failed to load" in str(info.value.cause)
    assert info.value.summary["status"] == "failed"

    assert get_registry(f"file://{tmp_path / 'registry'}").lookup(name, "1.0") is not None  # immutable, kept
    assert not (mlserver.repository / name / "1000000").exists()
    [deployment] = deployments_of(atlas_client, name)
    attrs = atlas_client.get_entity(deployment["guid"])["entity"]["attributes"]
    assert (attrs["status"], attrs["outcome"]) == ("stopped", "failed")
    assert "HTTP 500" in attrs["failureReason"]
    assert attrs["modelEndpointURL"] is None


def test_invalid_repo_writes_nothing(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client, request):
    name = unique_model(request, example_repo, model_version="")
    with pytest.raises(StepFailed) as info:
        run(example_repo, tmp_path, mlserver, atlas)
    assert info.value.step == "validate"
    assert isinstance(info.value.cause, ValidationError)
    assert "metadata.txt:2: model.version is empty" in str(info.value.cause)
    assert not (tmp_path / "registry").exists()
    assert not (mlserver.repository / name).exists()
    if isinstance(atlas, AtlasEmulator):
        assert atlas_client.get_typedef("modelgov_model_build") is None  # not even our types were written
    else:  # the session's real Atlas may have our types from other tests: no entity of this model, then
        assert atlas_client.get_entity_by_unique("ml_project", f"{name}@modelgov") is None
        assert deployments_of(atlas_client, name, expect=0) == []


def test_unreachable_atlas_stops_before_anything_is_written(prefect_api, example_repo, tmp_path, mlserver,
                                                            request, clean_env):
    from governance.targets.mlserver_process import free_port

    name = unique_model(request, example_repo)
    with pytest.raises(StepFailed) as info:
        deploy_model(source=str(example_repo), target=mlserver.target_uri(),
                     registry=f"file://{tmp_path / 'registry'}", atlas_url=f"http://127.0.0.1:{free_port()}")
    assert info.value.step == "preflight" and "not reachable" in str(info.value.cause)
    assert not (tmp_path / "registry").exists()
    assert not (mlserver.repository / name).exists()


def test_sensitive_training_data_tag_propagates_to_the_deployment(prefect_api, example_repo, tmp_path, mlserver,
                                                                  atlas, atlas_client, request):
    unique_model(request, example_repo)
    with (example_repo / "metadata.txt").open("a") as fh:
        fh.write("model.training.data.sensitive = pii\n")
    summary = run(example_repo, tmp_path, mlserver, atlas)
    dataset = atlas_client.get_entity_by_unique("fs_path", f"{summary['registry_uri']}/data/iris.csv@modelgov")
    [own] = dataset["entity"]["classifications"]
    assert (own["typeName"], own["attributes"]["category"], own["propagate"]) == ("modelgov_sensitive_data",
                                                                                   "pii", True)
    expected = [("modelgov_sensitive_data", dataset["entity"]["guid"])]

    def tags_of(role: str) -> list:
        return [(t["typeName"], t["entityGuid"]) for t in atlas_client.get_classifications(summary["atlas"][role]["guid"])]
    for role in ("build", "deployment"):
        assert eventually(lambda role=role: tags_of(role) == expected), (role, tags_of(role))
    tagged = {"typeName": "modelgov_model_deployment", "classification": "modelgov_sensitive_data"}
    assert eventually(lambda: summary["atlas"]["deployment"]["guid"] in {
        h["guid"] for h in atlas_client.search_basic(tagged)})
    text = (example_repo / "metadata.txt").read_text().replace("model.version = 1.0", "model.version = 1.1")
    (example_repo / "metadata.txt").write_text(text)
    again = run(example_repo, tmp_path, mlserver, atlas)  # recording a new version keeps the existing tag
    assert again["status"] == "deployed"


