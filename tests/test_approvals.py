"""Signed approvals (issue 21): a decision is an in-toto statement in a DSSE envelope, signed by an approver's
key and bound to the version's bytes, the target, the environment and the run; the deploy takes it only when
every one of those holds, and never from the deployer or the version's signer."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from governance.deploy.record import ApprovalDecision
from governance.deploy.saga import checked_approval
from governance.trust.approvals import ApprovalNotValid, ApprovalSubject, sign_approval, verify_approval
from governance.trust.signing import SigningIdentity, TrustPolicy
from tests.signing_keys import write_key_pair

SUBJECT = ApprovalSubject("churn", "3.1", "a" * 64, "10.0.0.5:8080", "production", "run-42")


@pytest.fixture
def people(tmp_path):
    """approver, deployer, publisher, stranger: (identity, public key file)."""
    out = {}
    for name in ("approver", "deployer", "publisher", "stranger"):
        private, public = write_key_pair(tmp_path / "keys", name)
        out[name] = (SigningIdentity(private), public)
    return out


def policy_of(people, *names):
    return TrustPolicy.from_env({"MODELGOV_APPROVER_KEYS": ",".join(str(people[n][1]) for n in names)})


def decision(statement: str | None, approver: str = "typed name") -> ApprovalDecision:
    return ApprovalDecision("approved", approver, datetime.now(UTC), "", statement=statement)


def test_an_approver_signed_approval_counts_with_the_verified_key_as_approver(people):
    statement = sign_approval(people["approver"][0], SUBJECT, approved=True, reason="validated by MRM")
    policy = policy_of(people, "approver")
    taken = checked_approval(decision(statement, "Chief Risk Officer"), SUBJECT, policy,
                             deployer=f"key {people['deployer'][0].signer.fingerprint}",
                             version_signer=people["publisher"][0].signer.fingerprint)
    assert taken.approved and taken.proof == "signed approval, verified"
    assert taken.approver == f"key {people['approver'][0].signer.fingerprint}"  # not the typed title
    assert taken.reason == "validated by MRM"
    signed_no = sign_approval(people["approver"][0], SUBJECT, approved=False, reason="not yet")
    assert not checked_approval(decision(signed_no), SUBJECT, policy, deployer=None, version_signer=None).approved


@pytest.mark.parametrize("change, says", [
    ({"content_digest": "b" * 64}, "other bytes"),
    ({"target": "10.0.0.6:8080"}, "another target"),
    ({"run_id": "run-43"}, "another flow run"),
    ({"environment": "staging"}, "another environment"),
    ({"version": "3.2"}, "another version"),
])
def test_an_approval_for_anything_else_is_refused(people, change, says):
    statement = sign_approval(people["approver"][0], replace(SUBJECT, **change), approved=True)
    with pytest.raises(ApprovalNotValid, match=says):
        verify_approval(statement, SUBJECT, policy_of(people, "approver").approvers, deployer=None,
                        version_signer=None)


def test_separation_of_duties_and_untrusted_or_forged_signatures(people):
    approvers = policy_of(people, "approver", "deployer", "publisher").approvers
    by = {n: sign_approval(people[n][0], SUBJECT, approved=True) for n in people}
    deployer = f"key {people['deployer'][0].signer.fingerprint}"
    signer = people["publisher"][0].signer.fingerprint
    with pytest.raises(ApprovalNotValid, match="signed by the deployer"):
        verify_approval(by["deployer"], SUBJECT, approvers, deployer=deployer, version_signer=signer)
    with pytest.raises(ApprovalNotValid, match="signed by the key that signed the version"):
        verify_approval(by["publisher"], SUBJECT, approvers, deployer=deployer, version_signer=signer)
    with pytest.raises(ApprovalNotValid, match="not an approver of this target's policy"):
        verify_approval(by["stranger"], SUBJECT, approvers, deployer=deployer, version_signer=signer)
    forged = json.loads(by["approver"])  # the statement edited after signing: approve another run
    body = json.loads(base64.b64decode(forged["payload"]))
    body["predicate"]["flowRun"] = "run-99"
    forged["payload"] = base64.b64encode(json.dumps(body, sort_keys=True).encode()).decode()
    with pytest.raises(ApprovalNotValid, match="signature does not verify"):
        verify_approval(json.dumps(forged), replace(SUBJECT, run_id="run-99"), approvers, deployer=deployer,
                        version_signer=signer)


def test_typed_approvals_are_refused_where_approvers_are_named_and_marked_unverified_elsewhere(people):
    refused = checked_approval(decision(None, "alice"), SUBJECT, policy_of(people, "approver"), deployer=None,
                               version_signer=None)
    assert not refused.approved and "is not signed" in refused.reason and "--key" in refused.reason
    batch = checked_approval(decision(None, "alice"), SUBJECT, policy_of(people, "approver"), deployer=None,
                             version_signer=None, for_batch=True)
    assert not batch.approved and "one by one" in batch.reason
    typed = checked_approval(decision(None, "alice"), SUBJECT, TrustPolicy.from_env({}), deployer=None,
                             version_signer=None)
    assert typed.approved and typed.approver == "alice" and typed.proof == "typed name, unverified"
