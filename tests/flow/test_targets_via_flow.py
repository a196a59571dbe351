"""`modelgov deploy` (the flow) to each non-MLServer target, checked in Atlas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.mleap import MleapServingEmulator
from emulators.mleap.bundle import write_linear_regression_bundle
from flows.deploy_model import deploy_model

pytestmark = pytest.mark.slow


def stage_mleap_repo(root: Path, name: str, version: str, coefficients: list[float]) -> Path:
    repo = root / f"{name}-{version}"
    (repo / "executable").mkdir(parents=True)
    (repo / "examples").mkdir()
    write_linear_regression_bundle(repo / "executable" / "model.zip", ["bathrooms", "bedrooms"], coefficients, 1.0)
    (repo / "metadata.txt").write_text(
        f"model.name = {name}\nmodel.version = {version}\nmodel.type = linear regression\n"
        "model.owner = Greg Keys\nmodel.owner.lob = pricing\n"
        "model.description = predicts monthly rental price\nmodel.framework = mleap\n")
    (repo / "README.md").write_text(f"# {name}\nMLeap linear regression bundle.\n")
    frame = {"schema": {"fields": [{"name": "bathrooms", "type": "double"},
                                   {"name": "bedrooms", "type": "double"}]}, "rows": [[2.0, 3.0]]}
    (repo / "examples" / "request.json").write_text(json.dumps(frame))
    return repo


@pytest.fixture
def mleap():
    with MleapServingEmulator(host="127.0.0.1", port=0) as server:
        yield server


def test_mleap_deploys_and_replacing_the_single_model_stops_the_old_record(prefect_api, tmp_path, mleap, atlas,
                                                                          atlas_client):
    bundles = tmp_path / "mleap-models"
    bundles.mkdir()
    port = mleap.url.rsplit(":", 1)[1]
    target = f"mleap://127.0.0.1:{port}?bundle_dir={bundles}"
    registry = f"file://{tmp_path / 'registry'}"
    first = deploy_model(source=str(stage_mleap_repo(tmp_path, "rental-pricing", "1.1", [2.0, 3.0])),
                         target=target, registry=registry, atlas_url=atlas.url)
    assert first["status"] == "deployed" and first["target"]["kind"] == "mleap"
    second = deploy_model(source=str(stage_mleap_repo(tmp_path, "rental-other", "2", [1.0, 1.0])),
                          target=target, registry=registry, atlas_url=atlas.url)
    # legacy MLeap serving holds one model: the previous model's deployment is now stopped
    assert second["superseded"] == [first["atlas"]["deployment"]["qualifiedName"]]
    old = atlas_client.get_entity(first["atlas"]["deployment"]["guid"])["entity"]["attributes"]
    new = atlas_client.get_entity(second["atlas"]["deployment"]["guid"])["entity"]["attributes"]
    assert (old["status"], new["status"]) == ("stopped", "deployed")
    assert new["targetKind"] == "mleap" and new["targetDetail"] == f"127.0.0.1:{port}"
    assert new["serializedObjectUri"] == f"{second['registry_uri']}/executable/model.zip"
    build = atlas_client.get_entity(second["atlas"]["build"]["guid"])["entity"]["attributes"]
    assert json.loads(build["exampleRequest"])["rows"] == [[2.0, 3.0]]
    assert mleap.loaded_path.endswith("rental-other-2.zip")
