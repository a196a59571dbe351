"""The Ledger against the Atlas emulator: intent, outcome, retire, settle, and consistent reads by model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.deploy.ledger import Ledger
from governance.deploy.record import DeploymentRecord, TargetInfo
from governance.registries.file import FileRegistry
from governance.staging.validate import validate_repo
from governance.targets.base import DeploymentResult
from tests.conftest import write_metadata


@pytest.fixture
def ledger():
    with AtlasEmulator(host="127.0.0.1", port=0) as emulator:
        client = AtlasClient(AtlasSettings(url=emulator.url, username="admin", password="admin"))
        ledger = Ledger(client)
        ledger.check()
        yield ledger
        client.close()


def record_for(example_repo, tmp_path, version: str, deployment_id: str, host: str = "h:1") -> DeploymentRecord:
    write_metadata(example_repo, model_name="ledger-model", model_version=version)
    staged = validate_repo(example_repo)
    registered = FileRegistry(f"file://{tmp_path / 'registry'}").publish(staged)
    return DeploymentRecord(deployment_id=deployment_id, staged=staged, registered=registered,
                            target=TargetInfo("mlserver", f"mlserver://{host}?repository=/x", host),
                            started_at=datetime.now(UTC), deployed_by="tester", run_id=deployment_id)


def result_for(record: DeploymentRecord) -> DeploymentResult:
    meta = record.staged.metadata
    return DeploymentResult("mlserver", record.target.uri, record.target.host_detail, "http://h:1/infer",
                            meta.name, meta.version, datetime.now(UTC), record.registered.executable_uri,
                            meta.name, str(meta.version_number))


def test_intent_outcome_retire_and_settle(ledger, example_repo, tmp_path):
    first = record_for(example_repo, tmp_path, "1.0", "run-1")
    ledger.record_intent(first)
    assert [r["status"] for r in ledger.deploying_on("h:1", "ledger-model")] == ["deploying"]
    recorded = ledger.record_outcome(first.succeeded(result_for(first)))
    [row] = ledger.deployed_on("h:1", "ledger-model")
    assert row["qualifiedName"] == recorded.deployment.qualified_name and row["modelVersion"] == "1.0"
    assert ledger.deployed_on("h:1") == [row]  # the search path agrees with the relationship path
    assert ledger.deployed_on("other:2", "ledger-model") == []

    second = record_for(example_repo, tmp_path, "2.0", "run-2")
    ledger.record_intent(second)
    settled = ledger.settle(ledger.deploying_on("h:1", "ledger-model")[0]["qualifiedName"], serving=False)
    assert (settled.status, settled.outcome, settled.reason) == ("stopped", "failed", "abandoned")
    stale = ledger.get(settled.qualified_name)
    assert (stale["status"], stale["outcome"], stale["failureReason"]) == ("stopped", "failed", "abandoned")
    assert stale["stoppedTime"]

    assert ledger.retire([row["qualifiedName"]], datetime.now(UTC)) == [row["qualifiedName"]]
    assert ledger.deployed_on("h:1", "ledger-model") == []
    assert ledger.get(row["qualifiedName"])["stoppedTime"]


class PagesRefused(AtlasClient):
    """A server that answers 404 for a bulk page by unique names when one of them is missing."""

    def _request(self, method, path, **kwargs):
        if "/bulk/uniqueAttribute/" in path and len(kwargs.get("params") or []) > 1:
            from governance.errors import AtlasNotFound

            raise AtlasNotFound("Atlas GET failed with HTTP 404", status=404)
        return super()._request(method, path, **kwargs)


@pytest.mark.parametrize("client_class", [AtlasClient, PagesRefused])
def test_bulk_read_by_unique_names_leaves_out_the_missing(ledger, example_repo, tmp_path, client_class):
    """A batch reads its models ahead in bulk: a recorded model comes back with its builds (the project's owned
    children), a model never recorded without a project, whether the server leaves missing names out of the
    page (Atlas) or refuses the page (then each name is read alone)."""
    first = record_for(example_repo, tmp_path, "1.0", "run-a")
    ledger.record_intent(first)
    second = record_for(example_repo, tmp_path, "2.0", "run-b")
    ledger.record_intent(second.referring_to(None))
    client = client_class(ledger.atlas.settings)
    try:
        found = Ledger(client).read_models(["ledger-model", "never-recorded"])
    finally:
        client.close()
    assert found["never-recorded"].project is None and found["never-recorded"].builds == ()
    model = found["ledger-model"]
    assert model.project["attributes"]["qualifiedName"] == "ledger-model@modelgov"
    assert sorted(b["attributes"]["modelVersion"] for b in model.builds) == ["1.0", "2.0"]
    assert model.build("ledger-model/2.0@modelgov") is not None
    assert {d["attributes"]["qualifiedName"].split("/")[1] for d in model.deployments(ledger.atlas)} == {"1.0", "2.0"}
