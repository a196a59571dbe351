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
from tests.signing_keys import write_certificate_chain, write_key_pair

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


def cert_policy(ca, *pins: str) -> TrustPolicy:
    return TrustPolicy.from_env({"MODELGOV_APPROVER_CA": str(ca), "MODELGOV_APPROVER_IDENTITIES": ";".join(pins)})


def cert_identity(chain) -> SigningIdentity:
    return SigningIdentity(chain["key"], certificate=chain["cert"])


def test_an_approver_pinned_by_certificate_signs_with_it_and_is_recorded_by_it(tmp_path):
    """Issue 21: approvals signed with a certificate count where its chain leads to the approvers' roots and its
    subject (or fingerprint) is pinned; the recorded approver is the certificate, never a typed name."""
    chain = write_certificate_chain(tmp_path / "pki", "Ana Risk")
    identity = cert_identity(chain)
    statement = sign_approval(identity, SUBJECT, approved=True, reason="validated")
    taken = checked_approval(decision(statement), SUBJECT, cert_policy(chain["ca"], chain["subject"]),
                             deployer="alice", version_signer=None)
    assert (taken.approved, taken.approver, taken.proof) == (
        True, f"certificate {identity.signer.fingerprint}", "signed approval, verified")
    by_fingerprint = verify_approval(statement, SUBJECT, cert_policy(chain["ca"], identity.signer.fingerprint).approvers,
                                     deployer=None, version_signer=None)
    assert by_fingerprint.approver == identity.signer


def test_certificate_approvals_from_another_ca_unpinned_expired_or_by_the_signer_are_refused(tmp_path):
    chain = write_certificate_chain(tmp_path / "pki", "Ana Risk")
    other = write_certificate_chain(tmp_path / "other-pki", "Ana Risk")  # same subject, another CA
    statement = sign_approval(cert_identity(chain), SUBJECT, approved=True)
    cases = {
        "does not chain to the approvers' roots": (statement, cert_policy(other["ca"], chain["subject"]), None),
        "not a pinned approver": (statement, cert_policy(chain["ca"], "CN=Someone Else"), None),
        "trusts no approver certificate authority": (statement, policy_of_keys(tmp_path), None),
    }
    expired = write_certificate_chain(tmp_path / "old-pki", "Ana Risk", expired=True)
    cases["does not chain"] = (sign_approval(cert_identity(expired), SUBJECT, approved=True),
                               cert_policy(expired["ca"], expired["subject"]), None)
    # the publisher signed the version with a key, and approves with a certificate of that same key
    publisher_key, _ = write_key_pair(tmp_path / "keys", "publisher")
    same_key = write_certificate_chain(tmp_path / "pub-pki", "Pat Publisher", leaf_key_file=publisher_key)
    cases["signed by the certificate that signed the version"] = (
        sign_approval(cert_identity(same_key), SUBJECT, approved=True),
        cert_policy(same_key["ca"], same_key["subject"]), SigningIdentity(publisher_key).signer.fingerprint)
    for says, (signed, policy, version_signer) in cases.items():
        with pytest.raises(ApprovalNotValid, match=says):
            verify_approval(signed, SUBJECT, policy.approvers, deployer=None, version_signer=version_signer)


def policy_of_keys(tmp_path) -> TrustPolicy:
    _, public = write_key_pair(tmp_path / "keys", "approver")
    return TrustPolicy.from_env({"MODELGOV_APPROVER_KEYS": str(public)})


def test_approver_identities_without_their_roots_are_a_config_error(tmp_path):
    from governance.errors import ConfigError

    with pytest.raises(ConfigError, match="MODELGOV_APPROVER_CA"):
        TrustPolicy.from_env({"MODELGOV_APPROVER_IDENTITIES": "CN=Ana Risk"})
