"""Reconcile, rollback and undeploy on a real MLServer, with drift caused behind modelgov's back: a model
unloaded, another version loaded, an installed file tampered with, a model nobody governs, a run that died
while 'deploying'. The commands are run as operators run them (`modelgov ...`)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest
import requests

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.deploy.ledger import Ledger
from governance.deploy.record import DeploymentRecord, TargetInfo
from governance.deploy.release import release_from_registry, staged_view
from governance.registries import get_registry
from governance.staging.validate import validate_repo
from governance.targets import get_target
from tests.conftest import write_metadata
from tests.flow.test_cli import modelgov

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # real servers on a shared 2-core box


@pytest.fixture(scope="module")
def own_mlserver(tmp_path_factory):
    """An MLServer only these tests use, so 'ungoverned' means exactly what the tests put there."""
    from testbed.mlserver import MLServerService

    with MLServerService(tmp_path_factory.mktemp("ops-mlserver")) as service:
        yield service.server


def stage(example_repo, tmp_path, name, version="1.0"):
    repo = shutil.copytree(example_repo, tmp_path / f"{name}-{version}")
    write_metadata(repo, model_name=name, model_version=version)
    return repo


def config_for(tmp_path, mlserver, atlas):
    path = tmp_path / "modelgov.yaml"
    path.write_text(f"""
atlas: {{url: "{atlas.url}"}}
registries: {{reg: "file://{tmp_path / 'registry'}"}}
targets: {{mlserver-ops: "{mlserver.target_uri()}"}}
defaults: {{registry: reg}}
""")
    return str(path)


def behind_our_back(example_repo, tmp_path, mlserver, name, version):
    """Deploy straight through the target (as someone bypassing modelgov would), from a scratch registry."""
    staged = validate_repo(stage(example_repo, tmp_path / "rogue", name, version))
    scratch = get_registry(f"file://{tmp_path / 'scratch-registry'}")
    scratch.publish(staged)
    release = release_from_registry(scratch, name, version)
    get_target(mlserver.target_uri()).deploy(release)
    return release


def served(mlserver):
    return {(m.name, m.version): m for m in get_target(mlserver.target_uri()).served()}


def deployments(atlas_client, name):
    hits = atlas_client.search_basic({"typeName": "modelgov_model_deployment", "attributes": [
        "modelVersion", "status", "outcome", "deployReason", "stopReason", "failureReason"],
        "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": name}})
    return [h["attributes"] for h in hits]


def test_reconcile_fixes_drift_reports_ungoverned_and_second_run_changes_nothing(
        prefect_api, example_repo, tmp_path, own_mlserver, atlas, atlas_client):
    mlserver = own_mlserver
    (tmp_path / "rogue").mkdir()
    config = config_for(tmp_path, mlserver, atlas)
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    models = ["recon-missing", "recon-version", "recon-bytes", "recon-fine"]
    proc = modelgov("deploy", *[str(stage(example_repo, tmp_path, n)) for n in models], "--target", "mlserver-ops",
                    "--config", config, "--json", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # drift, behind our back
    assert requests.post(f"{mlserver.url}/v2/repository/models/recon-missing/unload", timeout=30).status_code == 200
    behind_our_back(example_repo, tmp_path, mlserver, "recon-version", "2.0")  # replaces 1.0
    installed = mlserver.repository / "recon-bytes" / "1000000" / "model.joblib"
    installed.write_bytes(installed.read_bytes() + b"tampered")
    behind_our_back(example_repo, tmp_path, mlserver, "recon-rogue", "3.0")
    ledger = Ledger(AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin")))
    target = get_target(mlserver.target_uri())
    fine = release_from_registry(get_registry(f"file://{tmp_path / 'registry'}"), "recon-fine", "1.0")
    ledger.record_intent(DeploymentRecord(  # a run that died after recording its intent
        deployment_id="dead-run", staged=staged_view(fine), registered=fine.registered,
        target=TargetInfo(target.kind, target.uri, target.host_detail), started_at=datetime.now(UTC),
        deployed_by="ghost", run_id="dead-run"))
    before = served(mlserver)
    assert ("recon-missing", "1.0") not in before and ("recon-version", "2.0") in before

    dry = modelgov("reconcile", "--target", "mlserver-ops", "--config", config, "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    assert {json.loads(line)["action"] for line in dry.stdout.splitlines()} <= {
        "would-redeploy", "would-record", "would-settle"}
    assert served(mlserver).keys() == before.keys()

    first = modelgov("reconcile", "--target", "mlserver-ops", "--config", config, "--json", env=env)
    assert first.returncode == 0, first.stderr
    found = {(f["kind"], f["model"]): f["action"] for f in map(json.loads, first.stdout.splitlines())}
    assert found == {("stale-deploying", "recon-fine"): "settled", ("missing", "recon-missing"): "redeployed",
                     ("other-version", "recon-version"): "redeployed", ("other-bytes", "recon-bytes"): "redeployed",
                     ("ungoverned", "recon-rogue"): "recorded"}

    now = served(mlserver)
    registry = get_registry(f"file://{tmp_path / 'registry'}")
    for name in ("recon-missing", "recon-version", "recon-bytes", "recon-fine"):
        expected = release_from_registry(registry, name, "1.0").registered.manifest.files
        sha = next(f.sha256 for f in expected if f.path == "executable/model.joblib")
        assert now[(name, "1.0")].sha256 == sha, name
    assert ("recon-version", "2.0") not in now
    for name in ("recon-missing", "recon-version", "recon-bytes"):
        records = deployments(atlas_client, name)
        assert sorted((r["status"], r.get("deployReason")) for r in records) == [
            ("deployed", "reconcile"), ("stopped", None)], (name, records)
    dead = atlas_client.get_entity_by_unique("modelgov_model_deployment", next(
        r["qualifiedName"] for r in ledger.records_on(target.host_detail, "recon-fine", statuses=("stopped",))
        if r["orchestratorRunId"] == "dead-run"))["entity"]["attributes"]
    assert (dead["status"], dead["outcome"]) == ("stopped", "failed")
    rogue = list(atlas_client.search_basic({"typeName": "modelgov_ungoverned_model",
                                            "attributes": ["modelName", "modelVersion", "targetDetail"]}))
    assert [(h["attributes"]["modelName"], h["attributes"]["modelVersion"]) for h in rogue] == [("recon-rogue", "3.0")]

    second = modelgov("reconcile", "--target", "mlserver-ops", "--config", config, "--json", env=env)
    assert second.returncode == 0, second.stderr
    assert [(f["kind"], f["action"]) for f in map(json.loads, second.stdout.splitlines())] == [
        ("ungoverned", "already-recorded")]
    for name in ("recon-missing", "recon-version", "recon-bytes"):
        assert len(deployments(atlas_client, name)) == 2  # no new deployment on the second run
    assert served(mlserver).keys() == now.keys()


def test_rollback_then_undeploy(prefect_api, example_repo, tmp_path, own_mlserver, atlas, atlas_client):
    mlserver = own_mlserver
    config = config_for(tmp_path, mlserver, atlas)
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    for version in ("1.0", "2.0"):
        proc = modelgov("deploy", str(stage(example_repo, tmp_path, "ops-roll", version)), "--target",
                        "mlserver-ops", "--config", config, "--json", env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    shutil.rmtree(tmp_path / "ops-roll-1.0")  # rollback needs nothing but the registry
    assert {v for n, v in served(mlserver) if n == "ops-roll"} == {"2.0"}

    back = modelgov("rollback", "ops-roll", "--to", "1.0", "--target", "mlserver-ops", "--reason", "2.0 misbehaves",
                    "--config", config, "--json", env=env)
    assert back.returncode == 0, back.stderr
    assert {v for n, v in served(mlserver) if n == "ops-roll"} == {"1.0"}
    records = sorted((r["modelVersion"], r["status"], r.get("deployReason") or "") for r in
                     deployments(atlas_client, "ops-roll"))
    assert records == [("1.0", "deployed", "rollback: 2.0 misbehaves"), ("1.0", "stopped", ""),
                       ("2.0", "stopped", "")]

    refused = modelgov("undeploy", "ops-roll", "--target", "mlserver-ops", "--reason", " ", "--config", config,
                       env=env)
    assert refused.returncode == 2 and "--reason" in refused.stderr
    out = modelgov("undeploy", "ops-roll", "--target", "mlserver-ops", "--reason", "model retired",
                   "--config", config, "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert not any(n == "ops-roll" for n, _ in served(mlserver))
    records = deployments(atlas_client, "ops-roll")
    assert {r["status"] for r in records} == {"stopped"}
    assert [r["stopReason"] for r in records if r.get("stopReason")] == ["undeploy: model retired"]
