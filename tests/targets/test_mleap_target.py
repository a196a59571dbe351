"""MleapTarget against the MLeap stand-in: registered bytes in, schema and smoke test out, one model at a time."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import requests

from governance.errors import ConfigError, IntegrityError, TargetError
from governance.targets.mleap import MleapTarget
from tests.targets.conftest import leapframe, make_release

REQUEST = leapframe([[1.0, 2.0]])


def expected_response(prediction: float) -> dict:
    return {"schema": {"fields": [{"name": "bathrooms", "type": "double"}, {"name": "bedrooms", "type": "double"},
                                  {"name": "features"}, {"name": "prediction"}]},
            "rows": [[1.0, 2.0, {"values": [1.0, 2.0], "dimensions": [2]}, prediction]]}


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    d = tmp_path / "bundles"
    d.mkdir()
    return d


def target_for(server, bundle_dir: Path, **kwargs) -> MleapTarget:
    return MleapTarget(f"mleap://127.0.0.1:{server.port}?bundle_dir={bundle_dir}", retries=1, backoff=0.01,
                       **kwargs)


def test_deploy_copies_loads_and_smoke_tests(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path, request=REQUEST, response=expected_response(2 * 1 + 3 * 2 + 1.0))
    result = target_for(mleap_server, bundle_dir).deploy(release)

    copied = bundle_dir / "price-model-1.2.zip"
    registered = release.registry.local_path(release.registered, release.executable)
    assert copied.read_bytes() == registered.read_bytes()
    assert mleap_server.loaded_path == str(copied)
    assert result.target_kind == "mleap" and result.host_detail == f"127.0.0.1:{mleap_server.port}"
    assert target_for(mleap_server, bundle_dir).host_detail == result.host_detail
    assert result.endpoint_url == f"{mleap_server.url}/transform"
    assert (result.model_name, result.model_version) == ("price-model", "1.2")
    assert (result.loaded_name, result.loaded_version) == ("price-model", "1.2")
    assert result.serialized_object == release.registered.executable_uri
    assert result.serialized_object.startswith("file://") and result.serialized_object.endswith("executable/model.zip")
    assert result.smoke is not None and result.smoke.matched_expected is True
    assert result.smoke.response["rows"][0][-1] == 9.0
    assert result.details["replaced"] == "none"
    assert result.details["bundle_sha256"] == hashlib.sha256(copied.read_bytes()).hexdigest()
    assert "prediction" in result.details["schema_fields"].split(",")


def test_server_dir_is_what_the_server_is_told(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path)
    uri = f"mleap://127.0.0.1:{mleap_server.port}?bundle_dir={bundle_dir}&server_dir=/models"
    with pytest.raises(TargetError, match=r"PUT /model answered 500 \(loading /models/price-model-1.2.zip\)"):
        MleapTarget(uri, retries=0).deploy(release)  # the stand-in runs here, so /models does not exist for it


def test_second_deploy_replaces_and_names_the_previous(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    target = target_for(mleap_server, bundle_dir)
    first = make_release(tmp_path, version="1.0")
    second = make_release(tmp_path, version="2.0")
    target.deploy(first)
    assert target.status("price-model", "1.0") == "deployed"
    result = target.deploy(second)
    assert result.details["replaced"] == "price-model 1.0"
    assert (result.details["replaced_model"], result.details["replaced_version"]) == ("price-model", "1.0")
    assert result.details["replaced_serialized_object"] == first.registered.executable_uri
    assert target.status("price-model", "1.0") == "stopped"
    assert target.status("price-model", "2.0") == "deployed"
    assert result.smoke is None and "skipped" in result.details["smoke"]


def test_undeploy_only_touches_its_own_version(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    target = target_for(mleap_server, bundle_dir)
    target.deploy(make_release(tmp_path, version="1.0"))
    target.undeploy("price-model", "0.9")  # not the loaded one: nothing happens
    assert requests.get(f"{mleap_server.url}/model").status_code == 200
    target.undeploy("price-model", "1.0")
    assert requests.get(f"{mleap_server.url}/model").status_code == 500
    assert target.status("price-model", "1.0") == "stopped"
    target.undeploy("price-model", "1.0")  # idempotent


def test_undeploy_by_the_target_version_served_reports(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    """``modelgov undeploy`` unloads what ``served()`` lists by its ``target_version`` (the loaded path)."""
    target = target_for(mleap_server, bundle_dir)
    target.deploy(make_release(tmp_path, version="1.0"))
    [served] = target.served("price-model")
    target.undeploy("other-model", served.target_version)  # another model's name: nothing happens
    assert target.served("price-model") == [served]
    target.undeploy("price-model", served.target_version)
    assert target.served("price-model") == [] and target.status("price-model", "1.0") == "stopped"


def test_undeploy_refuses_an_unrecorded_model(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path)
    path = release.registry.local_path(release.registered, release.executable)
    requests.put(f"{mleap_server.url}/model", json={"path": str(path)})  # loaded behind modelgov's back
    target = target_for(mleap_server, bundle_dir)
    assert target.status("price-model", "1.2") == "unknown"
    with pytest.raises(TargetError, match="no modelgov record"):
        target.undeploy("price-model", "1.2")


def test_tampered_registry_copy_is_refused(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path)
    registered = release.registry.local_path(release.registered, release.executable)
    registered.write_bytes(registered.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="refusing to deploy") as info:
        target_for(mleap_server, bundle_dir).deploy(release)
    assert release.registered.executable_uri in str(info.value)
    assert list(bundle_dir.iterdir()) == []  # no partial or tampered copy left behind
    assert requests.get(f"{mleap_server.url}/model").status_code == 500


def test_unloadable_bundle_fails_naming_the_target(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path, executable=b"PK-not-really-a-zip")
    with pytest.raises(TargetError, match=rf"mleap 127\.0\.0\.1:{mleap_server.port}: PUT /model answered 500"):
        target_for(mleap_server, bundle_dir).deploy(release)


def test_smoke_mismatch_fails_and_restores_previous(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    target = target_for(mleap_server, bundle_dir)
    target.deploy(make_release(tmp_path, version="1.0"))
    bad = make_release(tmp_path, version="2.0", request=REQUEST, response=expected_response(42.0))
    with pytest.raises(TargetError, match=r"differs from examples/response.json at \$\.rows\[0\]\[3\].*"
                                          r"restored the previous model price-model 1.0"):
        target.deploy(bad)
    assert mleap_server.loaded_path == str(bundle_dir / "price-model-1.0.zip")
    assert target.status("price-model", "1.0") == "deployed"


def test_smoke_mismatch_can_be_recorded_instead(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path, request=REQUEST, response=expected_response(42.0))
    result = target_for(mleap_server, bundle_dir, fail_on_mismatch=False).deploy(release)
    assert result.smoke is not None and result.smoke.matched_expected is False


def test_smoke_request_the_model_cannot_score_fails(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path, request={"schema": {"fields": [{"name": "x", "type": "double"}]},
                                              "rows": [[1.0]]})
    with pytest.raises(TargetError, match=r"POST /transform answered 500.*unloaded the failed model"):
        target_for(mleap_server, bundle_dir).deploy(release)
    assert requests.get(f"{mleap_server.url}/model").status_code == 500


def test_verify_reports_a_changed_bundle(mleap_server, bundle_dir: Path, tmp_path: Path) -> None:
    release = make_release(tmp_path)
    target = target_for(mleap_server, bundle_dir)
    target.deploy(release)
    assert target.verify(release) == []
    (bundle_dir / "price-model-1.2.zip").write_bytes(b"changed")
    assert any("differs from the manifest" in p for p in target.verify(release))
    other = make_release(tmp_path, version="3.0")
    assert target.verify(other) == [f"mleap 127.0.0.1:{mleap_server.port} serves price-model 1.2, "
                                    "not price-model 3.0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_is_a_target_error_naming_it(bundle_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    target = MleapTarget(f"mleap://127.0.0.1:{port}?bundle_dir={bundle_dir}", retries=1, backoff=0.01,
                         timeout=(1.0, 2.0))
    with pytest.raises(TargetError, match=rf"mleap 127\.0\.0\.1:{port}: GET /model failed"):
        target.deploy(make_release(tmp_path))
    with pytest.raises(TargetError, match=rf"127\.0\.0\.1:{port}"):
        target.status("price-model", "1.2")


def test_missing_bundle_dir_is_a_target_error(mleap_server, tmp_path: Path) -> None:
    target = target_for(mleap_server, tmp_path / "not-mounted")
    with pytest.raises(TargetError, match="bundle_dir .* is not a folder"):
        target.deploy(make_release(tmp_path))


@pytest.mark.parametrize("uri", ["mleap://host?bundle_dir=/x", "mleap://host:1", "mleap://host:1?bundle_dir=rel",
                                 "mleap://host:1?bundle_dir=/x&bogus=1", "http://host:1?bundle_dir=/x",
                                 "mleap://host:1?bundle_dir=/x&server_dir=rel"])
def test_bad_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError):
        MleapTarget(uri)


def _bundle_bytes(tmp_path: Path, coefficients: list[float]) -> bytes:
    from emulators.mleap import write_linear_regression_bundle
    from tests.targets.conftest import FEATURES, INTERCEPT

    path = tmp_path / f"bundle-{'-'.join(map(str, coefficients))}.zip"
    write_linear_regression_bundle(path, FEATURES, coefficients, INTERCEPT)
    return path.read_bytes()


@pytest.mark.parametrize("other", ["fails-its-smoke-test", "does-not-load"])
def test_same_version_redeploy_of_other_bytes_never_serves_them_unproven(mleap_server, bundle_dir: Path,
                                                                        tmp_path: Path, other: str) -> None:
    """Issue 20: a same-version redeploy used to overwrite the loaded bundle file before loading; when the new
    bytes then failed, "restored the previous model" reloaded that same path, i.e. the failed bytes."""
    target = target_for(mleap_server, bundle_dir)
    good = make_release(tmp_path / "a", request=REQUEST, response=expected_response(9.0))
    target.deploy(good)
    good_sha = good.executable_entry.sha256
    bad_bytes = _bundle_bytes(tmp_path, [5.0, 5.0]) if other == "fails-its-smoke-test" else b"PK-not-a-zip"
    bad = make_release(tmp_path / "b", executable=bad_bytes, request=REQUEST, response=expected_response(9.0))
    assert bad.metadata.version == good.metadata.version and bad.executable_entry.sha256 != good_sha
    with pytest.raises(TargetError, match="restored the previous model price-model 1.2"):
        target.deploy(bad)
    # the server, its bundle file and what the target reports all still hold the proven bytes
    answer = requests.post(f"{mleap_server.url}/transform", json=REQUEST, timeout=5).json()
    assert answer["rows"][0][-1] == 9.0
    assert hashlib.sha256(Path(mleap_server.loaded_path).read_bytes()).hexdigest() == good_sha
    assert [m.sha256 for m in target.served("price-model")] == [good_sha]
    assert target.verify(good) == []
