"""Atlas down at each record point of a deploy: nothing is lost, and the outbox replays exactly once.

The outage is forced at the record point itself (Atlas is stopped as the ledger is about to write), the flow
runs for real (Prefect, MLServer, a file registry), then Atlas comes back on the same port with its state and
`modelgov outbox sync` (or the next deploy's preflight) replays what was kept.
"""

from __future__ import annotations

import json

import pytest

from flows.deploy_model import deploy_model
from governance.cli import main
from governance.compliance.queries import DeploymentFilter, find_deployments
from governance.deploy.ledger import Ledger
from governance.deploy.outbox import Outbox
from governance.errors import StepFailed
from governance.registries import get_registry
from tests.conftest import write_metadata

pytestmark = pytest.mark.slow
ORIGINAL_RECORD_OUTCOME = Ledger.record_outcome


@pytest.fixture(autouse=True)
def short_atlas_deadline(monkeypatch):
    monkeypatch.setenv("MODELGOV_ATLAS_DEADLINE", "8")


def _down_at(monkeypatch, atlas, method: str, when=lambda record: True) -> None:
    """Stop Atlas just as the ledger is about to write at ``method`` (when ``when(record)``)."""
    original = getattr(Ledger, method)

    def stop_then_write(self, record):
        if when(record):
            atlas.stop()
            self.atlas.session.close()  # a real outage resets the pooled keep-alive connections too
        return original(self, record)

    monkeypatch.setattr(Ledger, method, stop_then_write)


def _entities(atlas_client, type_name: str, name: str) -> list[dict]:
    attr = "modelName" if type_name == "modelgov_model_deployment" else "name"
    value = name if attr == "modelName" else None
    params = {"typeName": type_name, "excludeDeletedEntities": True,
              "attributes": ["status", "outcome", "qualifiedName"]}
    if value:
        params["entityFilters"] = {"attributeName": attr, "operator": "=", "attributeValue": value}
    rows = list(atlas_client.search_basic(params))
    return [r for r in rows if r["attributes"]["qualifiedName"].startswith(f"{name}/")]


def _sync(atlas, capsys) -> list[str]:
    capsys.readouterr()
    assert main(["outbox", "sync", "--atlas", atlas.url]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("replayed")]


def _deploy(example_repo, tmp_path, mlserver, atlas):
    return deploy_model(source=str(example_repo), target=mlserver.target_uri(),
                        registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)


def test_outage_before_the_target_is_touched_stops_the_run_and_keeps_the_build_record(
        prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client, monkeypatch, capsys):
    write_metadata(example_repo, model_name="outage-intent")
    _down_at(monkeypatch, atlas, "record_intent")
    with pytest.raises(StepFailed) as info:
        _deploy(example_repo, tmp_path, mlserver, atlas)
    assert info.value.step == "record"
    assert "nothing was deployed" in str(info.value.cause) and "pending in the outbox" in str(info.value.cause)
    assert not (mlserver.repository / "outage-intent").exists()  # the target was never touched
    assert get_registry(f"file://{tmp_path / 'registry'}").lookup("outage-intent", "1.0") is not None
    [pending] = Outbox().pending()
    assert pending.kind == "deployment" and pending.payload["build_only"]

    atlas.start()  # Atlas is back, with everything it had
    assert _entities(atlas_client, "modelgov_model_build", "outage-intent") == []
    assert len(_sync(atlas, capsys)) == 1
    assert len(_entities(atlas_client, "modelgov_model_build", "outage-intent")) == 1
    assert _entities(atlas_client, "modelgov_model_deployment", "outage-intent") == []  # no false deploying
    assert _sync(atlas, capsys) == [] and Outbox().pending() == []  # exactly once
    assert len(_entities(atlas_client, "modelgov_model_build", "outage-intent")) == 1


def test_outage_after_the_deploy_keeps_the_deployment_and_the_next_deploy_replays_it(
        prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client, monkeypatch, capsys):
    write_metadata(example_repo, model_name="outage-outcome")
    _down_at(monkeypatch, atlas, "record_outcome")
    summary = _deploy(example_repo, tmp_path, mlserver, atlas)
    assert (summary["status"], summary["record"]) == ("deployed", "pending")
    assert "pending in the local outbox" in summary["message"]
    assert summary["prediction"][0]["data"] == [0, 2]  # the model serves
    capsys.readouterr()
    assert main(["outbox", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["kind"] == "deployment" and "outage-outcome" in row["description"]

    atlas.start()
    [deploying] = _entities(atlas_client, "modelgov_model_deployment", "outage-outcome")
    assert deploying["attributes"]["status"] == "deploying"  # the intent reached Atlas before the outage
    monkeypatch.setattr(Ledger, "record_outcome", ORIGINAL_RECORD_OUTCOME)  # Atlas stays up from here
    write_metadata(example_repo, model_name="outage-outcome", model_version="2.0")
    second = _deploy(example_repo, tmp_path, mlserver, atlas)  # its preflight replays the outbox first
    assert second["record"] == "recorded" and Outbox().pending() == []
    rows = {r["attributes"]["qualifiedName"]: r["attributes"]
            for r in _entities(atlas_client, "modelgov_model_deployment", "outage-outcome")}
    assert len(rows) == 2 and len(_entities(atlas_client, "modelgov_model_build", "outage-outcome")) == 2
    first = rows[deploying["attributes"]["qualifiedName"]]
    assert first["outcome"] == "succeeded" and first["status"] in ("deployed", "stopped")
    assert _sync(atlas, capsys) == []  # nothing twice


def test_outage_when_recording_a_failed_attempt(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client,
                                                monkeypatch, capsys):
    write_metadata(example_repo, model_name="outage-failure")
    (example_repo / "executable" / "model.joblib").write_bytes(b"corrupt model bytes")
    _down_at(monkeypatch, atlas, "record_outcome", when=lambda record: record.outcome == "failed")
    with pytest.raises(StepFailed) as info:
        _deploy(example_repo, tmp_path, mlserver, atlas)
    assert info.value.step == "deploy" and info.value.summary["record"] == "pending"
    assert len(Outbox().pending()) == 1

    atlas.start()
    assert len(_sync(atlas, capsys)) == 1
    [attempt] = _entities(atlas_client, "modelgov_model_deployment", "outage-failure")
    assert (attempt["attributes"]["status"], attempt["attributes"]["outcome"]) == ("stopped", "failed")
    [row] = find_deployments(atlas_client, DeploymentFilter(name="outage-failure", outcome="failed"))
    assert (row.status, row.outcome, row.failed) == ("stopped", "failed", True)  # shown failed, never deployed
    assert _sync(atlas, capsys) == []


def test_atlas_down_before_the_run_still_refuses_it(prefect_api, example_repo, tmp_path, mlserver, atlas):
    write_metadata(example_repo, model_name="outage-preflight")
    atlas.stop()
    try:
        with pytest.raises(StepFailed) as info:
            _deploy(example_repo, tmp_path, mlserver, atlas)
        assert info.value.step == "preflight"
        assert get_registry(f"file://{tmp_path / 'registry'}").lookup("outage-preflight", "1.0") is None
        assert Outbox().pending() == []
    finally:
        atlas.start()
