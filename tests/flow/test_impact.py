"""`modelgov impact DATASET`: the blast radius of a training dataset, checked against a history deployed through
the real flow (``deploy-model``, to MLeap stand-ins, recorded in the Atlas emulator) and changed the way operators
change it (``modelgov rollback``, ``modelgov undeploy``):

* credit-risk 1.0 trained on loans@5123, replaced on its target by 1.1 (loans@6000), then rolled back to 1.0;
* churn 1.0 trained on loans@5123 and a local file, deployed, then undeployed (retired);
* churn 2.0 trained on the same file, deployed to a target that is down by the time anyone asks;
* credit-risk 2.0 (loans@6000) registered, and its production deploy refused at the approval gate.

Every window is compared, to the millisecond, with the deployedTime/stoppedTime Atlas holds, and no deployment
is found by searching deployments: the answer follows lineage from the dataset."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from emulators.atlas import AtlasEmulator
from emulators.mleap import MleapServingEmulator, write_linear_regression_bundle
from flows.deploy_model import deploy_model
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import DEPLOYMENT_TYPE
from governance.compliance.impact import FIELDS
from governance.compliance.times import iso
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest
from governance.deploy.saga import SagaHooks, run_deploy
from governance.errors import StepFailed
from tests.compliance.test_safe_output import cli

pytestmark = pytest.mark.slow
LOANS = "iceberg://prod/lending.loans"


@dataclass
class History:
    atlas_url: str
    data_file: Path
    data_sha: str
    deployments: dict[str, dict]  # label -> the deployment entity's attributes, as Atlas holds them


def stage(root: Path, name: str, version: str, training: str) -> str:
    repo = root / f"{name}-{version}"
    (repo / "executable").mkdir(parents=True)
    write_linear_regression_bundle(repo / "executable" / "model.zip", ["a", "b"], [2.0, float(version[0])], 1.0)
    (repo / "metadata.txt").write_text("\n".join([
        f"model.name = {name}", f"model.version = {version}", "model.type = regression",
        "model.owner = Ana Müller", "model.owner.lob = retail lending", "model.description = scores loans",
        f"model.training.data = {training}", ""]), encoding="utf-8")
    (repo / "README.md").write_text(f"# {name}\n", encoding="utf-8")
    (repo / "examples").mkdir()
    (repo / "examples" / "request.json").write_text(json.dumps(
        {"schema": {"fields": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]},
         "rows": [[1.0, 2.0]]}), encoding="utf-8")
    return str(repo)


def mleap_uri(server: MleapServingEmulator, root: Path) -> str:
    bundles = root / f"bundles-{server.port}"
    bundles.mkdir(exist_ok=True)
    return f"mleap://127.0.0.1:{server.port}?bundle_dir={bundles}"


@pytest.fixture(scope="module")
def history(prefect_api, tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("impact")
    lake = root / "lake"
    lake.mkdir()
    data_file = lake / "applicants.csv"
    data_file.write_text("a,b,y\n1,2,9\n", encoding="utf-8")
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas, pytest.MonkeyPatch.context() as mp, \
            MleapServingEmulator(host="127.0.0.1", port=0) as credit_server, \
            MleapServingEmulator(host="127.0.0.1", port=0) as churn_server:
        for name, value in {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin", "MODELGOV_DATA_ROOTS": str(lake),
                            "MODELGOV_STATE_DIR": str(root / "state")}.items():
            mp.setenv(name, value)
        registry = f"file://{root / 'registry'}"
        credit, churn = mleap_uri(credit_server, root), mleap_uri(churn_server, root)

        def deploy(name: str, version: str, training: str, target: str) -> dict:
            summary = deploy_model(source=stage(root, name, version, training), target=target, registry=registry,
                                   atlas_url=atlas.url, environment="staging")
            assert summary["status"] == "deployed"
            return summary["atlas"]["deployment"]

        refs = {"credit 1.0": deploy("credit-risk", "1.0", f"{LOANS}@5123", credit),
                "credit 1.1": deploy("credit-risk", "1.1", f"{LOANS}@6000", credit)}  # replaces 1.0
        rolled = cli("rollback", "credit-risk", "--to", "1.0", "--target", credit, "--reason", "1.1 drifts",
                     "--registry", registry, "--atlas", atlas.url, "--json")
        assert rolled.returncode == 0, rolled.stderr
        refs["credit 1.0 again"] = json.loads(rolled.stdout)["atlas"]["deployment"]
        refuse = SagaHooks(approve=lambda what, subject: ApprovalDecision("rejected", "Ana Approver",
                                                                          datetime.now(UTC), "freeze"))
        with pytest.raises(StepFailed):  # credit-risk 2.0: registered, refused at the approval gate
            run_deploy(DeployRequest(target_uri=credit, registry_uri=registry, atlas_url=atlas.url,
                                     environment="production", approval_required=True)
                       .for_source(stage(root, "credit-risk", "2.0", f"{LOANS}@6000")), refuse)
        refs["churn 1.0"] = deploy("churn", "1.0", f"{LOANS}@5123, file://{data_file}", churn)
        retired = cli("undeploy", "churn", "--target", churn, "--reason", "retired", "--atlas", atlas.url)
        assert retired.returncode == 0, retired.stderr
        with MleapServingEmulator(host="127.0.0.1", port=0) as gone:
            refs["churn 2.0"] = deploy("churn", "2.0", f"file://{data_file}", mleap_uri(gone, root))
        # ...and that target is down from now on
        client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
        deployments = {label: client.get_entity(ref["guid"])["entity"]["attributes"] for label, ref in refs.items()}
        client.close()
        yield History(atlas.url, data_file, hashlib.sha256(data_file.read_bytes()).hexdigest(), deployments)


def impact(history: History, *args: str) -> list[dict]:
    proc = cli("impact", *args, "--json", "--atlas", history.atlas_url)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def window(history: History, label: str) -> tuple:
    """What the row of that deployment must say, from Atlas's own record of it."""
    a = history.deployments[label]
    return (a["qualifiedName"], iso(a["deployedTime"]), iso(a.get("stoppedTime")))


def rows_by_deployment(rows: list[dict]) -> dict[str, tuple]:
    return {r["deployment"]: (r["deployment"], r["deployedTime"], r["stoppedTime"]) for r in rows}


def test_every_version_of_a_shared_table_reaches_both_models_and_every_window(history):
    rows = impact(history, LOANS)
    assert [(r["dataVersion"], r["model"], r["modelVersion"], r["servesNow"]) for r in rows] == [
        ("5123", "churn", "1.0", "no"),             # undeployed
        ("5123", "credit-risk", "1.0", "no"),       # replaced by 1.1
        ("5123", "credit-risk", "1.0", "yes"),      # the rollback: the target serves it now
        ("6000", "credit-risk", "1.1", "no"),       # superseded by the rollback
        ("6000", "credit-risk", "2.0", "no")]       # refused at approval: never served
    assert (rows[-1]["outcome"], rows[-1]["deployedTime"] is not None) == ("rejected", True)
    assert list(rows[0]) == FIELDS and {r["kind"] for r in rows} == {"deployment"}
    by_deployment = rows_by_deployment(rows)
    for label in ("churn 1.0", "credit 1.0", "credit 1.0 again", "credit 1.1"):
        assert by_deployment[history.deployments[label]["qualifiedName"]] == window(history, label)
    first, replaced_by, again = (history.deployments[k] for k in ("credit 1.0", "credit 1.1", "credit 1.0 again"))
    assert first["deployedTime"] < replaced_by["deployedTime"] <= first["stoppedTime"]
    assert replaced_by["stoppedTime"] >= again["deployedTime"] and again.get("stoppedTime") in (None, 0)
    assert {r["target"].split("://")[0] for r in rows} == {"mleap"}
    assert [r["environment"] for r in rows] == ["staging", "staging", None, "staging", "production"]  # None: by URI
    assert {(r["owner"], r["dataVersionKind"]) for r in rows} == {("Ana Müller", "iceberg_snapshot")}


def test_one_snapshot_names_only_the_versions_trained_on_it(history):
    rows = impact(history, f"{LOANS}@6000")
    assert [(r["model"], r["modelVersion"]) for r in rows] == [("credit-risk", "1.1"), ("credit-risk", "2.0")]
    assert rows_by_deployment(rows[:1]) == {window(history, "credit 1.1")[0]: window(history, "credit 1.1")}
    assert [r["model"] for r in impact(history, f"{LOANS}@5123")] == ["churn", "credit-risk", "credit-risk"]


def test_a_file_by_path_or_by_sha256_and_a_target_that_cannot_be_asked(history):
    by_path = impact(history, str(history.data_file))
    assert [(r["modelVersion"], r["status"], r["servesNow"]) for r in by_path] == [
        ("1.0", "stopped", "no"), ("2.0", "deployed", "unknown")]  # 2.0's target is down
    assert by_path == impact(history, history.data_sha) == impact(history, f"file://{history.data_file}")
    assert rows_by_deployment(by_path) == {window(history, k)[0]: window(history, k)
                                           for k in ("churn 1.0", "churn 2.0")}
    assert {r["dataVersion"] for r in by_path} == {history.data_sha}


def test_at_a_moment_only_what_served_then(history):
    first = history.deployments["credit 1.0"]
    rows = impact(history, LOANS, "--at", iso(first["deployedTime"]))
    assert [r["deployment"] for r in rows] == [first["qualifiedName"]]
    rows = impact(history, LOANS, "--at", iso(first["stoppedTime"] - 1))  # its last millisecond
    assert first["qualifiedName"] in [r["deployment"] for r in rows]
    rows = impact(history, LOANS, "--at", iso(first["stoppedTime"]))  # stopped: 1.1 serves then
    assert first["qualifiedName"] not in [r["deployment"] for r in rows]
    assert history.deployments["credit 1.1"]["qualifiedName"] in [r["deployment"] for r in rows]


def test_follows_lineage_not_a_scan_of_deployments(history, monkeypatch):
    searched: list[str] = []
    original = AtlasClient.search_basic

    def spy(self, parameters, **kwargs):
        searched.append(parameters.get("typeName"))
        return original(self, parameters, **kwargs)

    monkeypatch.setattr(AtlasClient, "search_basic", spy)
    assert len(impact(history, LOANS)) == 5
    assert DEPLOYMENT_TYPE not in searched and searched  # datasets are searched by location, nothing else


def test_csv_table_and_unknown_datasets(history):
    proc = cli("impact", f"{LOANS}@5123", "--csv", "--atlas", history.atlas_url)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["model"] for r in rows] == ["churn", "credit-risk", "credit-risk"] and list(rows[0]) == FIELDS
    table = cli("impact", str(history.data_file), "--atlas", history.atlas_url)
    assert table.returncode == 0 and "unknown" in table.stdout and "churn" in table.stdout
    missing = cli("impact", "iceberg://prod/lending.loans@1", "--atlas", history.atlas_url)
    assert missing.returncode == 1
    assert "iceberg://prod/lending.loans@1: Atlas records no training dataset by that reference" in missing.stderr
    bad = cli("impact", "iceberg://prod/loans", "--atlas", history.atlas_url)
    assert bad.returncode == 2 and "iceberg://CATALOG/DB.TABLE@SNAPSHOT_ID" in bad.stderr


@pytest.mark.timeout(600)
def test_a_spark_scoring_run_that_read_the_data_is_a_scored_row(prefect_api, tmp_path, example_repo, atlas,
                                                                 atlas_client):
    """`modelgov score` reads a table through a Spark deployment: impact of that table names the run."""
    from tests.flow.test_spark_target import IRIS
    from tests.flow.test_spark_target import stage as stage_spark

    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    table.write_bytes(IRIS.read_bytes())
    target = (f"spark://local?cores=2&input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    deployed = deploy_model(source=str(stage_spark(tmp_path, example_repo, "1.0")), target=target,
                            registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    scored = cli("score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url, "--json")
    assert scored.returncode == 0, scored.stderr
    run = atlas_client.get_entity(json.loads(scored.stdout)["atlasGuid"])["entity"]["attributes"]
    proc = cli("impact", f"file://{table}", "--json", "--atlas", atlas.url)
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert run["targetDetail"].startswith("local:")
    assert row == row | {"kind": "scored", "model": "iris-classifier", "modelVersion": "1.0",
                         "deployment": deployed["atlas"]["deployment"]["qualifiedName"],
                         "target": f"spark://{run['targetDetail']}", "outcome": "succeeded", "scoringRun": run["qualifiedName"],
                         "scoredFrom": iso(run["startTime"]), "scoredUntil": iso(run["endTime"]),
                         "dataVersion": hashlib.sha256(table.read_bytes()).hexdigest()}
    during = cli("impact", f"file://{table}", "--json", "--at", iso(run["startTime"]), "--atlas", atlas.url)
    assert json.loads(during.stdout) == [row]  # under way then
    after = cli("impact", f"file://{table}", "--json", "--at", iso(run["endTime"]), "--atlas", atlas.url)
    assert json.loads(after.stdout) == []  # the run had ended by then
