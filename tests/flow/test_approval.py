"""The approval gate on the shared Prefect server: a production run executed by a worker pauses with a typed
input until `modelgov approve` resumes it; approver and time land on the Atlas deployment; a rejection or a
timeout records the attempt as rejected and deploys nothing."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime

import pytest
import requests

from flows.register import register
from tests.conftest import write_metadata
from tests.flow.test_cli import modelgov
from tests.flow.workers import process_workers, wait_for_runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # real servers on a shared 2-core box
POOL = "modelgov-approvals"


@pytest.fixture(scope="module")
def approval_worker(prefect_server, tmp_path_factory):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        register(POOL, name="approvals")
    with process_workers(prefect_server["url"], POOL, ["approver-worker"], tmp_path_factory.mktemp("w"), limit=3):
        yield prefect_server["url"]


def start_production_run(api_url, example_repo, tmp_path, mlserver, atlas, name, approvers=None, trust=None,
                         **params):
    from prefect.deployments import run_deployment

    repo = shutil.copytree(example_repo, tmp_path / name)
    write_metadata(repo, model_name=name)
    config = tmp_path / f"modelgov-{name}.yaml"
    trust = trust or (f'{{approvers: ["{approvers}"]}}' if approvers else None)
    trust = f"trust:\n  environments:\n    production: {trust}\n" if trust else ""
    config.write_text(f"""
atlas: {{url: "{atlas.url}"}}
registries: {{reg: "file://{tmp_path / 'registry'}"}}
targets:
  mlserver-prod: {{uri: "{mlserver.target_uri()}", environment: production}}
{trust}""")
    return run_deployment("deploy-model/approvals", timeout=0, parameters={
        "source": str(repo), "target": "mlserver-prod", "registry": "reg", "config": str(config), **params})


def deployment_attrs(atlas_client, name, wait_s: float = 120):
    """The one deployment record of ``name``, once it is final. Prefect's server fails a run whose pause
    expired on its own clock, so the run can be final before the flow process has written its record."""
    deadline = time.monotonic() + wait_s
    while True:
        hits = list(atlas_client.search_basic({"typeName": "modelgov_model_deployment", "attributes": [
            "status", "outcome", "approver", "approvalTime", "approvalDecision", "approvalReason", "failureReason",
            "approvalProof"],
            "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": name}}))
        if hits and hits[0]["attributes"]["status"] != "deploying" or time.monotonic() > deadline:
            [hit] = hits
            return hit["attributes"]
        time.sleep(1)


def served(mlserver, name) -> bool:
    return requests.get(f"{mlserver.url}/v2/models/{name}/ready", timeout=10).status_code == 200


def test_approved_production_run_deploys_and_records_the_approver(approval_worker, on_prefect_server, example_repo,
                                                                 tmp_path, mlserver, atlas, atlas_client):
    run = start_production_run(approval_worker, example_repo, tmp_path, mlserver, atlas, "gate-approved")
    [paused] = wait_for_runs([run.id], final=False)
    assert paused.state.is_paused() and not served(mlserver, "gate-approved")
    before = datetime.now(UTC)
    proc = modelgov("approve", str(run.id), "--approver", "alice", env={"PREFECT_API_URL": approval_worker})
    assert proc.returncode == 0, proc.stderr
    [done] = wait_for_runs([run.id])
    assert done.state.is_completed(), done.state
    attrs = deployment_attrs(atlas_client, "gate-approved")
    assert (attrs["status"], attrs["outcome"], attrs["approver"], attrs["approvalDecision"]) == (
        "deployed", "succeeded", "alice", "approved")
    assert before.timestamp() * 1000 - 1000 <= attrs["approvalTime"] <= datetime.now(UTC).timestamp() * 1000
    assert served(mlserver, "gate-approved")


def test_rejected_production_run_deploys_nothing(approval_worker, on_prefect_server, example_repo, tmp_path,
                                                mlserver, atlas, atlas_client):
    run = start_production_run(approval_worker, example_repo, tmp_path, mlserver, atlas, "gate-rejected")
    wait_for_runs([run.id], final=False)
    env = {"PREFECT_API_URL": approval_worker}
    no_reason = modelgov("approve", str(run.id), "--approver", "bob", "--reject", env=env)
    assert no_reason.returncode == 2 and "--reject needs --reason" in no_reason.stderr
    proc = modelgov("approve", str(run.id), "--approver", "bob", "--reject", "--reason", "not this week", env=env)
    assert proc.returncode == 0, proc.stderr
    [done] = wait_for_runs([run.id])
    assert done.state.is_failed() and "rejected by bob" in done.state.message
    attrs = deployment_attrs(atlas_client, "gate-rejected")
    assert (attrs["status"], attrs["outcome"], attrs["approver"], attrs["approvalDecision"],
            attrs["approvalReason"]) == ("stopped", "rejected", "bob", "rejected", "not this week")
    assert attrs["failureReason"] == "rejected by bob: not this week"
    assert not served(mlserver, "gate-rejected")
    again = modelgov("approve", str(run.id), "--approver", "bob", env=env)
    assert again.returncode == 1 and "is not waiting for approval" in again.stderr


def test_unanswered_production_run_times_out_as_rejected(approval_worker, on_prefect_server, example_repo,
                                                        tmp_path, mlserver, atlas, atlas_client):
    run = start_production_run(approval_worker, example_repo, tmp_path, mlserver, atlas, "gate-timeout",
                               approval_timeout=4)
    [done] = wait_for_runs([run.id])
    assert done.state.is_failed()
    attrs = deployment_attrs(atlas_client, "gate-timeout")
    assert (attrs["status"], attrs["outcome"], attrs["approvalDecision"]) == ("stopped", "rejected", "timed_out")
    assert attrs.get("approver") is None and attrs["failureReason"].startswith("not approved in time")
    assert not served(mlserver, "gate-timeout")


def test_where_approvers_are_named_only_their_signed_approval_for_these_bytes_counts(
        approval_worker, on_prefect_server, example_repo, tmp_path, mlserver, atlas, atlas_client):
    """Issue 21: a typed name, or a signature by someone outside the policy, is a rejection; an approver's
    signed approval deploys, and Atlas records the approver's verified key, not a name."""
    from governance.trust.signing import SigningIdentity
    from tests.signing_keys import write_key_pair

    approver_key, approver_pub = write_key_pair(tmp_path / "keys", "approver")
    stranger_key, _ = write_key_pair(tmp_path / "keys", "stranger")
    env = {"PREFECT_API_URL": approval_worker}
    runs = {}
    for name in ("gate-typed", "gate-stranger", "gate-signed"):
        runs[name] = start_production_run(approval_worker, example_repo, tmp_path, mlserver, atlas, name,
                                          approvers=approver_pub)
    wait_for_runs([r.id for r in runs.values()], final=False)
    answers = {"gate-typed": ["--approver", "Chief Risk Officer"], "gate-stranger": ["--key", str(stranger_key)],
               "gate-signed": ["--key", str(approver_key)]}
    for name, args in answers.items():
        proc = modelgov("approve", str(runs[name].id), *args, env=env)
        assert proc.returncode == 0, proc.stderr
    wait_for_runs([r.id for r in runs.values()])

    typed = deployment_attrs(atlas_client, "gate-typed")
    assert (typed["outcome"], typed["approvalProof"]) == ("rejected", "typed name, refused")
    assert "is not signed" in typed["failureReason"] and not served(mlserver, "gate-typed")
    stranger = deployment_attrs(atlas_client, "gate-stranger")
    assert stranger["outcome"] == "rejected" and "not an approver" in stranger["failureReason"]
    assert not served(mlserver, "gate-stranger")
    signed = deployment_attrs(atlas_client, "gate-signed")
    fingerprint = SigningIdentity(approver_key).signer.fingerprint
    assert (signed["status"], signed["approver"], signed["approvalProof"]) == (
        "deployed", f"key {fingerprint}", "signed approval, verified")
    assert served(mlserver, "gate-signed")
    # the signed statement is on the record: checkable later, without Prefect
    [hit] = atlas_client.search_basic({"typeName": "modelgov_model_deployment", "attributes": ["approvalStatement"],
                                       "entityFilters": {"attributeName": "modelName", "operator": "=",
                                                         "attributeValue": "gate-signed"}})
    check = modelgov("verify", hit["guid"], "--atlas", atlas.url,
                     env={**env, "MODELGOV_APPROVER_KEYS": str(approver_pub)})
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"ok  approval: approved by key {fingerprint}, signed for these bytes" in check.stdout
    assert "ok  approval: the signed statement Atlas records is kept in the registry" in check.stdout
    # kept beside the version by the worker's run; the refused approvals are not kept
    kept = modelgov("registry", "verify", f"file://{tmp_path / 'registry'}", "gate-signed", "1.0",
                    env={**env, "MODELGOV_APPROVER_KEYS": str(approver_pub)})
    assert kept.returncode == 0 and f"approval approved by key {fingerprint}" in kept.stdout, kept.stderr
    assert not (tmp_path / "registry" / "gate-stranger" / ".approvals").exists()


def test_an_approver_pinned_by_certificate_approves_with_modelgov_approve_cert(
        approval_worker, on_prefect_server, example_repo, tmp_path, mlserver, atlas, atlas_client):
    """Issue 21: `modelgov approve RUN --key K --cert C` on the worker's paused run; the run verifies the chain
    against trust.approver_cas and the pinned subject, and Atlas records the certificate as the approver."""
    from governance.trust.signing import SigningIdentity
    from tests.signing_keys import write_certificate_chain

    pki = write_certificate_chain(tmp_path / "pki", "Ana Risk")
    trust = f'{{approver_cas: ["{pki["ca"]}"], approver_identities: ["{pki["subject"]}"]}}'
    run = start_production_run(approval_worker, example_repo, tmp_path, mlserver, atlas, "gate-cert", trust=trust)
    wait_for_runs([run.id], final=False)
    proc = modelgov("approve", str(run.id), "--key", str(pki["key"]), "--cert", str(pki["cert"]),
                    env={"PREFECT_API_URL": approval_worker})
    assert proc.returncode == 0, proc.stderr
    wait_for_runs([run.id])
    attrs = deployment_attrs(atlas_client, "gate-cert")
    fingerprint = SigningIdentity(pki["key"], certificate=pki["cert"]).signer.fingerprint
    assert (attrs["status"], attrs["approver"], attrs["approvalProof"]) == (
        "deployed", f"certificate {fingerprint}", "signed approval, verified")
    assert served(mlserver, "gate-cert")
