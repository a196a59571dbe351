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

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from governance.errors import GovernanceError
from governance.trust.dsse import Envelope, open_envelope, sign_envelope, signature_holds
from governance.trust.signing import (
    APPROVER_CA_ENV,
    APPROVER_IDENTITIES_ENV,
    APPROVER_KEYS_ENV,
    Approvers,
    Signer,
    SigningIdentity,
    certificate_signer,
    key_fingerprint,
)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelgov.dev/approval/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_STATEMENT_BYTES = 64 * 1024
KEPT_SUFFIX = ".dsse.json"  # a kept approval is named <sha256 of its bytes><KEPT_SUFFIX>


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


def sign_approval(identity: SigningIdentity, subject: ApprovalSubject, approved: bool, reason: str = "") -> str:
    """The DSSE envelope (JSON) of the decision on ``subject``, signed with ``identity``'s key. A certificate
    identity's leaf and chain travel in the signature entry (``certificates``, base64 DER, leaf first), and its
    ``keyid`` is the leaf's fingerprint."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{subject.model}/{subject.version}", "digest": {"sha256": subject.content_digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"decision": "approved" if approved else "rejected", "reason": reason,
                      "target": subject.target, "environment": subject.environment, "flowRun": subject.run_id,
                      "time": datetime.now(UTC).isoformat(timespec="seconds")},
    }
    return sign_envelope(identity, PAYLOAD_TYPE, json.dumps(statement, sort_keys=True).encode())


@dataclass(frozen=True)
class VerifiedApproval:
    approver: Signer
    approved: bool
    reason: str


def _opened(envelope: str) -> Envelope:
    """The parts of a DSSE envelope with one signature (``governance.trust.dsse``), bounded in size."""
    if len(envelope) > MAX_STATEMENT_BYTES:
        raise ApprovalNotValid(f"the approval statement is larger than {MAX_STATEMENT_BYTES} bytes")
    try:
        return open_envelope(envelope)
    except ValueError as exc:
        raise ApprovalNotValid("the approval is not a DSSE envelope with one signature") from exc


def _signed_by(env: Envelope, approvers: Approvers, at: datetime | None) -> tuple[Signer, set[str]]:
    """The approver who signed ``env`` (a listed key, or a certificate chaining to the approvers' roots whose leaf
    is pinned, valid at ``at``, now by default), and every fingerprint that names them (key and certificate)."""
    if env.certificates:
        leaf, public = _checked_certificate(env, approvers, at)
        signer = certificate_signer(leaf)
    else:
        if env.keyid not in approvers.keys:
            raise ApprovalNotValid(f"the approval is signed by key {env.keyid}, which is not an approver of this "
                                   f"target's policy ({APPROVER_KEYS_ENV}, trust.approvers)")
        public = serialization.load_pem_public_key(approvers.keys[env.keyid].read_bytes())
        if key_fingerprint(public) != env.keyid:
            raise ApprovalNotValid(f"the approval names key {env.keyid} but {approvers.keys[env.keyid]} is another key")
        signer = Signer("key", env.keyid)
    if not signature_holds(env, public):
        raise ApprovalNotValid(f"the approval's signature does not verify with {signer.describe()}")
    return signer, {signer.fingerprint, key_fingerprint(public)}


def _checked_certificate(env: Envelope, approvers: Approvers, at: datetime | None):
    """(leaf, its public key) once the chain leads to one of the approvers' roots and the leaf is pinned."""
    from OpenSSL import crypto

    try:
        chain = [x509.load_der_x509_certificate(c) for c in env.certificates]
    except ValueError as exc:
        raise ApprovalNotValid("the approval carries a certificate that cannot be read") from exc
    leaf = chain[0]
    signer = certificate_signer(leaf)
    if env.keyid != signer.fingerprint:
        raise ApprovalNotValid(f"the approval names key {env.keyid} but carries certificate {signer.describe()}")
    if not approvers.cas:
        raise ApprovalNotValid(f"the approval is signed with certificate {signer.describe()}, and this target's "
                               f"policy trusts no approver certificate authority ({APPROVER_CA_ENV}, "
                               "trust.approver_cas)")
    if not ({signer.subject, signer.fingerprint} & approvers.identities):
        raise ApprovalNotValid(f"the approval is signed by {signer.describe()}, which is not a pinned approver "
                               f"({APPROVER_IDENTITIES_ENV}, trust.approver_identities)")
    store = crypto.X509Store()
    for root in x509.load_pem_x509_certificates(b"".join(p.read_bytes() for p in approvers.cas)):
        store.add_cert(crypto.X509.from_cryptography(root))
    when = at or datetime.now(UTC)
    store.set_time(when)
    try:
        crypto.X509StoreContext(store, crypto.X509.from_cryptography(leaf),
                                [crypto.X509.from_cryptography(c) for c in chain[1:]]).verify_certificate()
    except crypto.X509StoreContextError as exc:
        raise ApprovalNotValid(f"the approval's certificate {signer.describe()} does not chain to the approvers' "
                               f"roots ({', '.join(map(str, approvers.cas))}) at {when:%Y-%m-%d %H:%M}Z: {exc}") from exc
    try:
        if not leaf.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            raise ApprovalNotValid(f"the approval's certificate {signer.describe()} is not for digital signatures")
    except x509.ExtensionNotFound:
        pass
    return leaf, leaf.public_key()


def _statement(kind: str, body: bytes) -> tuple[dict, dict]:
    """(subject, predicate) of a modelgov approval statement."""
    try:
        statement = json.loads(body)
        [signed_subject] = statement["subject"]
        predicate = statement["predicate"]
        ok_type = statement["_type"] == STATEMENT_TYPE and statement["predicateType"] == PREDICATE_TYPE
        if not (isinstance(signed_subject, dict) and isinstance(predicate, dict)):
            raise TypeError("subject and predicate must be objects")
    except (ValueError, KeyError, TypeError) as exc:
        raise ApprovalNotValid("the approval's statement is not a modelgov approval") from exc
    if kind != PAYLOAD_TYPE or not ok_type:
        raise ApprovalNotValid("the approval's statement is not a modelgov approval")
    if predicate.get("decision") not in ("approved", "rejected"):
        raise ApprovalNotValid(f"the approval's decision {predicate.get('decision')!r} is neither approved nor rejected")
    return signed_subject, predicate


def verify_approval(envelope: str, subject: ApprovalSubject, approvers: Approvers | Mapping[str, Path], *,
                    deployer: str | None, version_signer: str | None, later: bool = False) -> VerifiedApproval:
    """The approval in ``envelope`` once it holds for ``subject``; ApprovalNotValid naming the failed check.
    ``later``: checked after the fact (``modelgov verify``), so a certificate is held to the time it signed."""
    env = _opened(envelope)
    signed_subject, predicate = _statement(env.payload_type, env.body)
    approver, names = _signed_by(env, Approvers.of(approvers), _signing_time(predicate) if later else None)
    who = f"{approver.kind} {approver.fingerprint}"
    if deployer and deployer.split(" ", 1)[-1] in names:
        raise ApprovalNotValid(f"the approval is signed by the deployer ({who}): someone else must approve")
    if version_signer and version_signer in names:
        raise ApprovalNotValid(f"the approval is signed by the {approver.kind} that signed the version ({who}): "
                               "someone else must approve")
    claims = {"another version": (signed_subject.get("name"), f"{subject.model}/{subject.version}"),
              "other bytes": ((signed_subject.get("digest") or {}).get("sha256"), subject.content_digest),
              "another target": (predicate.get("target"), subject.target),
              "another environment": (predicate.get("environment"), subject.environment),
              "another flow run": (predicate.get("flowRun"), subject.run_id)}
    for what, (signed, actual) in claims.items():
        if signed != actual:
            raise ApprovalNotValid(f"the approval was made for {what} ({signed}), not {actual}")
    return VerifiedApproval(approver, predicate["decision"] == "approved", str(predicate.get("reason") or ""))


@dataclass(frozen=True)
class KeptApproval:
    """An approval as found beside a registry version, read back without Prefect or Atlas."""

    uri: str
    approver: str | None  # "key sha256:..." or "certificate sha256:..."
    decision: str | None
    target: str | None
    environment: str | None
    run_id: str | None
    time: str | None
    checked: bool  # the signature verified with an approver's key
    problem: str | None = None

    def describe(self) -> str:
        if self.problem:
            return f"{self.uri}: {self.problem}"
        proof = "signature verified" if self.checked else f"signature not checked (set {APPROVER_KEYS_ENV})"
        return (f"{self.decision} by {self.approver} for {self.target} ({self.environment or 'no environment'}), "
                f"flow run {self.run_id}, {self.time}: {proof}")


def check_kept_approval(uri: str, data: bytes, model: str, version: str, content_digest: str,
                        approvers: Approvers | Mapping[str, Path]) -> KeptApproval:
    """What a kept approval says and whether it holds: named by its own sha256, made for this version's bytes,
    and (where approvers are known) signed by one of them. A problem is reported, never raised."""
    name = uri.rsplit("/", 1)[-1]
    if len(data) > MAX_STATEMENT_BYTES:
        return KeptApproval(uri, None, None, None, None, None, None, False,
                            f"larger than {MAX_STATEMENT_BYTES} bytes: not an approval")
    if name != f"{hashlib.sha256(data).hexdigest()}{KEPT_SUFFIX}":
        return KeptApproval(uri, None, None, None, None, None, None, False,
                            "its bytes do not match the sha256 it is named by (rewritten, or not a kept approval)")
    try:
        env = _opened(data.decode("utf-8", errors="replace"))
        signed_subject, predicate = _statement(env.payload_type, env.body)
        approvers = Approvers.of(approvers)
        if approvers:
            signer = _signed_by(env, approvers, _signing_time(predicate))[0]
            keyid = f"{signer.kind} {signer.fingerprint}"
        else:
            keyid = f"{'certificate' if env.certificates else 'key'} {env.keyid}"
        for what, signed, actual in (("version", signed_subject.get("name"), f"{model}/{version}"),
                                     ("bytes", (signed_subject.get("digest") or {}).get("sha256"), content_digest)):
            if signed != actual:
                raise ApprovalNotValid(f"the approval was made for other {what} ({signed}), not {actual}")
    except ApprovalNotValid as exc:
        return KeptApproval(uri, None, None, None, None, None, None, False, str(exc))
    return KeptApproval(uri, keyid, str(predicate["decision"]), _text(predicate.get("target")),
                        _text(predicate.get("environment")), _text(predicate.get("flowRun")),
                        _text(predicate.get("time")), bool(approvers))


def _signing_time(predicate: dict) -> datetime | None:
    """When the statement says it was signed (within the certificate's validity, or the chain check fails)."""
    try:
        return datetime.fromisoformat(str(predicate.get("time")))
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return None if value is None else str(value)
