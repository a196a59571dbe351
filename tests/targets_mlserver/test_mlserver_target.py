"""MLServerTarget against a real MLServer process (started once per session by the `mlserver` fixture)."""

import hashlib
import shutil

import pytest
import requests

from governance.errors import ConfigError, IntegrityError, TargetError
from governance.registries import get_registry
from governance.staging.validate import validate_repo
from governance.targets import get_target
from governance.targets.base import Release
from tests.conftest import write_metadata

pytestmark = pytest.mark.slow


def release_for(repo, registry_dir, **metadata):
    if metadata:
        write_metadata(repo, **metadata)
    staged = validate_repo(repo)
    registry = get_registry(f"file://{registry_dir}")
    version = registry.publish(staged)
    return Release(staged.metadata, version, registry, staged.example_request, staged.example_response), registry


@pytest.fixture
def target(mlserver):
    return get_target(mlserver.target_uri())


def model_name(request) -> str:
    return "t-" + request.node.name.replace("_", "-")[:40].strip("-").lower()


def test_deploy_serves_the_registered_bytes(example_repo, tmp_path, target, mlserver, request):
    name = model_name(request)
    release, _ = release_for(example_repo, tmp_path / "reg", model_name=name)
    result = target.deploy(release)
    assert (result.loaded_name, result.loaded_version) == (name, "1000000")
    assert result.smoke.matched_expected is True
    assert result.smoke.response["outputs"][0]["data"] == [0, 2]
    assert result.endpoint_url == f"{mlserver.url}/v2/models/{name}/versions/1000000/infer"
    assert result.serialized_object.endswith(f"/{name}/1.0/executable/model.joblib")
    settings = (mlserver.repository / name / "1000000" / "model-settings.json").read_text()
    assert f'"name": "{name}"' in settings and '"version": "1000000"' in settings
    assert target.verify(release) == []
    assert target.status(name, "1000000") == "deployed"
    target.undeploy(name, "1000000")
    assert target.status(name, "1000000") == "stopped"
    assert requests.get(f"{mlserver.url}/v2/models/{name}/versions/1000000/ready", timeout=5).status_code == 404


def test_new_version_swaps_out_the_old_one(example_repo, tmp_path, target, mlserver, request):
    name = model_name(request)
    v1, _ = release_for(example_repo, tmp_path / "reg", model_name=name, model_version="1")
    target.deploy(v1)
    v2, _ = release_for(example_repo, tmp_path / "reg", model_name=name, model_version="2")
    result = target.deploy(v2)
    assert result.details["replaced_versions"] == "1000000"
    assert target.status(name, "2000000") == "deployed"
    assert target.status(name, "1000000") == "stopped"
    answer = requests.post(f"{mlserver.url}/v2/models/{name}/infer", json=v2.example_request, timeout=10).json()
    assert answer["model_version"] == "2000000"
    target.undeploy(name, "2000000")


def test_keep_previous_and_undeploy_one_version_only(example_repo, tmp_path, mlserver, request):
    name = model_name(request)
    target = get_target(mlserver.target_uri() + "&keep_previous=true")
    target.deploy(release_for(example_repo, tmp_path / "reg", model_name=name, model_version="1")[0])
    target.deploy(release_for(example_repo, tmp_path / "reg", model_name=name, model_version="2")[0])
    assert target.status(name, "1000000") == target.status(name, "2000000") == "deployed"
    target.undeploy(name, "2000000")
    assert target.status(name, "1000000") == "deployed"
    assert target.status(name, "2000000") == "stopped"
    target.undeploy(name, "1000000")


def test_model_that_fails_to_load_is_a_clear_error_and_is_removed(example_repo, tmp_path, target, mlserver,
                                                                   request):
    name = model_name(request)
    (example_repo / "executable" / "model.joblib").write_bytes(b"not a pickle at all")
    release, _ = release_for(example_repo, tmp_path / "reg", model_name=name)
    with pytest.raises(TargetError, match=r"failed to load .*HTTP 500.*MLServer log"):
        target.deploy(release)
    assert not (mlserver.repository / name / "1000000").exists()


def test_wrong_expected_response_fails_the_deploy(example_repo, tmp_path, target, mlserver, request):
    name = model_name(request)
    (example_repo / "examples" / "response.json").write_text('{"outputs": [{"name": "predict", "data": [1, 1]}]}')
    release, _ = release_for(example_repo, tmp_path / "reg", model_name=name)
    with pytest.raises(TargetError, match=r"differs from examples/response.json at \$\.outputs\[0\]\.data\[0\]"):
        target.deploy(release)
    assert target.status(name, "1000000") == "stopped"


def test_tampered_registry_copy_is_refused(example_repo, tmp_path, target, mlserver, request):
    name = model_name(request)
    release, _ = release_for(example_repo, tmp_path / "reg", model_name=name)
    (tmp_path / "reg" / name / "1.0" / "executable" / "model.joblib").write_bytes(b"evil")
    with pytest.raises(IntegrityError, match="refusing to deploy"):
        target.deploy(release)
    assert not (mlserver.repository / name).exists() or not any((mlserver.repository / name).iterdir())


def test_unreachable_server_names_the_target(example_repo, tmp_path):
    from governance.targets.mlserver_process import free_port

    port = free_port()
    target = get_target(f"mlserver://127.0.0.1:{port}?repository={tmp_path / 'models'}")
    release, _ = release_for(example_repo, tmp_path / "reg")
    with pytest.raises(TargetError, match=f"MLServer at 127.0.0.1:{port} is not reachable"):
        target.deploy(release)
    assert not (tmp_path / "models" / "iris-classifier" / "1000000").exists()


def test_bad_target_uris():
    with pytest.raises(ConfigError, match="missing \\?repository"):
        get_target("mlserver://127.0.0.1:8080")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) keep_prev; known: keep_previous, public_url, "
                                          r"ready_timeout, repository"):
        get_target("mlserver://127.0.0.1:8080?repository=/m&keep_prev=true")
    with pytest.raises(ConfigError, match="ready_timeout must be a positive number of seconds, got '0'"):
        get_target("mlserver://127.0.0.1:8080?repository=/m&ready_timeout=0")
    assert get_target("mlserver://127.0.0.1:8080?repository=/m").ready_timeout_s == 1800  # allows large models
    assert get_target("mlserver://127.0.0.1:8080?repository=/m&ready_timeout=7200").ready_timeout_s == 7200
    with pytest.raises(ConfigError, match="known: kserve, mleap, mlserver"):
        get_target("seldon://x")


def test_redeploy_from_the_registry_alone(example_repo, tmp_path, target, mlserver, request):
    """Rollback and reconcile deploy a registered version with its staging repo gone."""
    import shutil

    from governance.deploy.release import release_from_registry

    name = model_name(request)
    _, registry = release_for(example_repo, tmp_path / "reg", model_name=name)
    shutil.rmtree(example_repo)
    release = release_from_registry(registry, name, "1.0")
    result = target.deploy(release)
    assert (result.loaded_name, result.loaded_version) == (name, "1000000")
    assert result.smoke.matched_expected is True  # the expected answer came from the manifest
    target.undeploy(name, str(release.metadata.version_number))


def test_one_models_answer_equals_the_repository_index(example_repo, tmp_path, mlserver, request):
    """served(name) asks only that model's versions (the index parses every model on each call); it must give
    the index's answer: loaded versions with their sha256, and not a version whose folder is there unloaded."""
    name = model_name(request)
    target = get_target(mlserver.target_uri() + "&keep_previous=true")
    target.deploy(release_for(example_repo, tmp_path / "reg", model_name=name, model_version="1")[0])
    target.deploy(release_for(example_repo, tmp_path / "reg", model_name=name, model_version="2")[0])
    unloaded = mlserver.repository / name / "3000000"
    unloaded.mkdir()
    (unloaded / "model-settings.json").write_text(
        (mlserver.repository / name / "2000000" / "model-settings.json").read_text().replace("2000000", "3000000"))
    try:
        one = target.served(name)
        from_index = [m for m in target.served() if m.name == name]
        assert one == from_index
        assert [(m.version, m.target_version) for m in one] == [("1", "1000000"), ("2", "2000000")]
        assert all(m.sha256 and len(m.sha256) == 64 for m in one)
    finally:
        shutil.rmtree(unloaded)  # MLServer would load it with the model's next load
        target.undeploy(name, "2000000")
        target.undeploy(name, "1000000")


class LoadSpy:
    """Every load MLServer is asked for, with the sha256 of each version's executable on disk at that moment
    (MLServer loads what its repository holds then, skipping dot-folders)."""

    def __init__(self, target, repository):
        self.loads: list[tuple[str, dict[str, str]]] = []
        self._call, self._repository = target._call, repository
        target._call = self

    def __call__(self, method, path, **kwargs):
        if method == "POST" and path.endswith("/load"):
            model = path.split("/")[-2]
            on_disk = {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in (self._repository / model).glob("*/model.joblib")
                       if not p.parent.name.startswith(".")}  # MLServer skips dot-folders
            self.loads.append((model, on_disk))
        return self._call(method, path, **kwargs)


def _predict(mlserver, name, request_body):
    answer = requests.post(f"{mlserver.url}/v2/models/{name}/versions/1000000/infer", json=request_body, timeout=10)
    return answer.json()["outputs"][0]["data"]


def test_same_version_redeploy_of_other_bytes_is_proven_aside_and_never_serves_them_unproven(
        example_repo, tmp_path, target, mlserver, request, constant_model):
    """Issue 20: a same-version redeploy used to put the new bytes under the serving name and reload before
    the smoke test, so other bytes that then failed it served for a while (and were then put back). Now they
    are loaded and smoke-tested under a side name first, and the serving name is never reloaded with them."""
    name = model_name(request)
    good, _ = release_for(example_repo, tmp_path / "reg-a", model_name=name)
    target.deploy(good)
    good_sha = good.executable_entry.sha256
    other = tmp_path / "other"
    shutil.copytree(example_repo, other)
    (other / "executable" / "model.joblib").write_bytes(constant_model)  # answers [1, 1], expected [0, 2]
    bad, _ = release_for(other, tmp_path / "reg-b", model_name=name)
    assert bad.metadata.version == good.metadata.version and bad.executable_entry.sha256 != good_sha
    spy = LoadSpy(target, mlserver.repository)
    with pytest.raises(TargetError, match=r"differs from examples/response.json.*side name "
                                          rf"{name}--modelgov-proof-\w+ first; what serves was not touched"):
        target.deploy(bad)
    assert [model for model, _ in spy.loads if model == name] == []  # the serving name was never reloaded
    assert [m.sha256 for m in target.served(name)] == [good_sha]
    assert _predict(mlserver, name, good.example_request) == [0, 2]
    assert not list(mlserver.repository.glob(f"{name}--*")) and not list((mlserver.repository / name).glob(".*"))
    assert not [m for m in target.served() if m.name.startswith(f"{name}--")]  # the side copy is unloaded

    # the same bytes again: nothing reinstalled or reloaded, the serving copy is smoke-tested
    result = target.deploy(good)
    assert result.details["reinstalled"].startswith("no") and result.smoke.matched_expected is True
    assert [model for model, _ in spy.loads if model == name] == []

    # other bytes that pass their smoke test: proven aside, then swapped in
    (other / "examples" / "response.json").write_text('{"outputs": [{"name": "predict", "data": [1, 1]}]}')
    passing, _ = release_for(other, tmp_path / "reg-c", model_name=name)
    result = target.deploy(passing)
    assert result.details["proven_as"].startswith(f"{name}--modelgov-proof-")
    assert [on_disk for model, on_disk in spy.loads if model == name] == [{"1000000": passing.executable_entry.sha256}]
    assert _predict(mlserver, name, good.example_request) == [1, 1]
    target.undeploy(name, "1000000")
