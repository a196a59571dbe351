"""Signed approvals bound to the bytes (issue 21): who approved which version for which target and run.

An approval is an in-toto Statement v1 in a DSSE envelope, signed with the approver's ECDSA key (the same keys
as ``governance.trust.signing``). Its subject is the registry version (``NAME/VERSION`` with the manifest's content
digest, the digest Atlas's build records); its predicate names the decision, the reason, the target, the
environment and the flow run it answers. The deploy verifies it against the approvers of its trust policy
(``MODELGOV_APPROVER_KEYS``, ``trust.approvers``) and refuses one that is unsigned where approvers are set,
signed by anyone else, signed by the deployer or by the version's signer (separation of duties), or made for
other bytes, another target, another environment or another run. The approver recorded in Atlas is then the
verified key, never a typed name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance.errors import GovernanceError
from governance.trust.signing import APPROVER_KEYS_ENV, Signer, SigningIdentity, key_fingerprint

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelgov.dev/approval/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_STATEMENT_BYTES = 64 * 1024


class ApprovalNotValid(GovernanceError):
    """A signed approval that does not hold: the message says which check failed."""


@dataclass(frozen=True)
class ApprovalSubject:
    """What an approval is for: these bytes, on this target, in this environment, for this run."""

    model: str
    version: str
    content_digest: str
    target: str
    environment: str | None
    run_id: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ApprovalSubject:
        return cls(**{k: (None if data.get(k) is None else str(data.get(k))) for k in
                      ("model", "version", "content_digest", "target", "environment", "run_id")})  # type: ignore[arg-type]


def _pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def sign_approval(identity: SigningIdentity, subject: ApprovalSubject, approved: bool, reason: str = "") -> str:
    """The DSSE envelope (JSON) of the decision on ``subject``, signed with ``identity``'s key."""
    if identity.certificate is not None:
        raise GovernanceError("approvals are signed with a key; certificate approvals are not supported yet")
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{subject.model}/{subject.version}", "digest": {"sha256": subject.content_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"decision": "approved" if approved else "rejected", "reason": reason,
                      "target": subject.target, "environment": subject.environment, "flowRun": subject.run_id,
                      "time": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    body = json.dumps(statement, sort_keys=True).encode()
    key = identity.private_key()
    signature = key.sign(_pae(PAYLOAD_TYPE, body), ec.ECDSA(hashes.SHA256()))
    return json.dumps({"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode(),
                       "signatures": [{"keyid": identity.signer.fingerprint,
                                       "sig": base64.b64encode(signature).decode()}]}, sort_keys=True)


@dataclass(frozen=True)
class VerifiedApproval:
    approver: Signer
    approved: bool
    reason: str


def verify_approval(envelope: str, subject: ApprovalSubject, approvers: Mapping[str, Path], *,
                    deployer: str | None, version_signer: str | None) -> VerifiedApproval:
    """The approval in ``envelope`` once it holds for ``subject``; ApprovalNotValid naming the failed check."""
    if len(envelope) > MAX_STATEMENT_BYTES:
        raise ApprovalNotValid(f"the approval statement is larger than {MAX_STATEMENT_BYTES} bytes")
    try:
        data = json.loads(envelope)
        body = base64.b64decode(data["payload"], validate=True)
        [entry] = data["signatures"]
        keyid, signature = str(entry["keyid"]), base64.b64decode(entry["sig"], validate=True)
        kind = data["payloadType"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApprovalNotValid("the approval is not a DSSE envelope with one signature") from exc
    if keyid not in approvers:
        raise ApprovalNotValid(f"the approval is signed by key {keyid}, which is not an approver of this "
                               f"target's policy ({APPROVER_KEYS_ENV}, trust.approvers)")
    public = serialization.load_pem_public_key(approvers[keyid].read_bytes())
    if key_fingerprint(public) != keyid:
        raise ApprovalNotValid(f"the approval names key {keyid} but {approvers[keyid]} is another key")
    try:
        public.verify(signature, _pae(str(kind), body), ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg,union-attr]
    except InvalidSignature as exc:
        raise ApprovalNotValid(f"the approval's signature does not verify with {approvers[keyid]}") from exc
    approver = Signer("key", keyid)
    who = f"key {keyid}"
    if deployer and who == deployer:
        raise ApprovalNotValid(f"the approval is signed by the deployer ({who}): someone else must approve")
    if version_signer and keyid == version_signer:
        raise ApprovalNotValid(f"the approval is signed by the key that signed the version ({who}): someone "
                               "else must approve")
    try:
        statement = json.loads(body)
        [signed_subject] = statement["subject"]
        predicate = statement["predicate"]
        ok_type = statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
    except (ValueError, KeyError, TypeError) as exc:
        raise ApprovalNotValid("the approval's statement is not a modelgov approval") from exc
    if kind != PAYLOAD_TYPE or not ok_type:
        raise ApprovalNotValid("the approval's statement is not a modelgov approval")
    claims = {"another version": (signed_subject.get("name"), f"{subject.model}/{subject.version}"),
              "other bytes": ((signed_subject.get("digest") or {}).get("sha256"), subject.content_digest),
              "another target": (predicate.get("target"), subject.target),
              "another environment": (predicate.get("environment"), subject.environment),
              "another flow run": (predicate.get("flowRun"), subject.run_id)}
    for what, (signed, actual) in claims.items():
        if signed != actual:
            raise ApprovalNotValid(f"the approval was made for {what} ({signed}), not {actual}")
    if predicate.get("decision") not in ("approved", "rejected"):
        raise ApprovalNotValid(f"the approval's decision {predicate.get('decision')!r} is neither approved nor rejected")
    return VerifiedApproval(approver, predicate["decision"] == "approved", str(predicate.get("reason") or ""))
