"""Issue 21: a signed approval is kept beside the version in the registry before the target is touched, so it
can be checked later without Prefect; where it cannot be kept, nothing is deployed and the attempt says why."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import pytest

from emulators.mleap import MleapServingEmulator
from governance.cli.main import main
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest
from governance.deploy.saga import SagaHooks, run_deploy
from governance.errors import StepFailed
from governance.trust.approvals import ApprovalSubject, sign_approval
from governance.trust.signing import SigningIdentity, TrustSettings
from tests.flow.test_targets_via_flow import stage_mleap_repo
from tests.signing_keys import write_key_pair


@pytest.fixture
def mleap():
    with MleapServingEmulator(host="127.0.0.1", port=0) as server:
        yield server


def production_deploy(tmp_path, mleap, atlas, approver_key, approver_pub, name="rental-pricing"):
    bundles = tmp_path / "bundles"
    bundles.mkdir(exist_ok=True)
    port = mleap.url.rsplit(":", 1)[1]
    request = DeployRequest(target_uri=f"mleap://127.0.0.1:{port}?bundle_dir={bundles}",
                            registry_uri=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url,
                            environment="production", approval_required=True,
                            source=str(stage_mleap_repo(tmp_path, name, "1", [2.0, 3.0])),
                            trust=TrustSettings(approvers=(str(approver_pub),)))
    asked: list[dict] = []

    def approve(what: str, subject: dict) -> ApprovalDecision:  # the approver signs what the run asks for
        asked.append(subject)
        statement = sign_approval(SigningIdentity(approver_key), ApprovalSubject.from_dict(subject), True, "ok")
        return ApprovalDecision("approved", "typed, ignored", datetime.now(UTC), "", statement=statement)

    return request, SagaHooks(approve=approve, run_id="run-42"), asked


def test_the_verified_approval_is_kept_in_the_registry_and_verifies_offline(tmp_path, mleap, atlas, atlas_client,
                                                                            capsys, monkeypatch):
    approver_key, approver_pub = write_key_pair(tmp_path / "keys", "approver")
    request, hooks, _ = production_deploy(tmp_path, mleap, atlas, approver_key, approver_pub)
    summary = run_deploy(request, hooks)
    dep = atlas_client.get_entity(summary.atlas_guid("deployment"))["entity"]["attributes"]
    statement = dep["approvalStatement"]
    kept = tmp_path / "registry" / "rental-pricing" / ".approvals" / "1" / (
        f"{hashlib.sha256(statement.encode()).hexdigest()}.dsse.json")
    assert kept.read_text() == statement and dep["status"] == "deployed"

    monkeypatch.setenv("MODELGOV_APPROVER_KEYS", str(approver_pub))
    assert main(["registry", "verify", f"file://{tmp_path / 'registry'}", "rental-pricing", "1"]) == 0
    out = capsys.readouterr().out
    fingerprint = SigningIdentity(approver_key).signer.fingerprint
    assert f"approval approved by key {fingerprint} for 127.0.0.1:" in out and "signature verified" in out
    assert main(["verify", summary.atlas_guid("deployment"), "--atlas", atlas.url]) == 0
    assert "the signed statement Atlas records is kept in the registry" in capsys.readouterr().out
    assert main(["registry", "gc", f"file://{tmp_path / 'registry'}", "--older-than", "0"]) == 0
    assert kept.exists()

    kept.write_text(statement.replace('"payloadType"', '"payloadType" ', 1))  # rewritten by a registry writer
    capsys.readouterr()
    assert main(["registry", "verify", f"file://{tmp_path / 'registry'}", "rental-pricing", "1"]) == 1
    assert "do not match the sha256 it is named by" in capsys.readouterr().err
    assert main(["verify", summary.atlas_guid("deployment"), "--atlas", atlas.url]) == 1
    assert "the signed statement Atlas records is not kept in the registry" in capsys.readouterr().out


def test_an_approval_that_cannot_be_kept_deploys_nothing_and_is_recorded_failed(tmp_path, mleap, atlas,
                                                                                atlas_client):
    approver_key, approver_pub = write_key_pair(tmp_path / "keys", "approver")
    request, hooks, asked = production_deploy(tmp_path, mleap, atlas, approver_key, approver_pub)
    blocker = tmp_path / "registry" / "rental-pricing" / ".approvals"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the approvals folder goes")
    with pytest.raises(StepFailed) as failed:
        run_deploy(request, hooks)
    assert failed.value.step == "approval" and asked
    assert mleap.loaded_path is None and not os.listdir(tmp_path / "bundles")
    [hit] = atlas_client.search_basic({"typeName": "modelgov_model_deployment", "attributes": [
        "status", "outcome", "failureReason"], "entityFilters": {
        "attributeName": "modelName", "operator": "=", "attributeValue": "rental-pricing"}})
    attrs = hit["attributes"]
    assert (attrs["status"], attrs["outcome"]) == ("stopped", "failed")
    assert "the signed approval could not be kept beside the version in the registry" in attrs["failureReason"]
