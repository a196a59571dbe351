"""DSSE envelopes (https://github.com/secure-systems-lab/dsse) signed with a modelgov SigningIdentity.

One signing routine for every signed statement modelgov writes (approvals, evidence-pack manifests): ECDSA with
SHA-256 over DSSE's pre-authentication encoding, the key's fingerprint as ``keyid``, and, for a certificate
identity, its leaf and chain in the signature entry (``certificates``, base64 DER, leaf first).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance.trust.signing import SigningIdentity


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def sign_envelope(identity: SigningIdentity, payload_type: str, body: bytes) -> str:
    """The DSSE envelope (JSON text) of ``body``, signed with ``identity``'s key."""
    key = identity.private_key()
    signature = key.sign(pae(payload_type, body), ec.ECDSA(hashes.SHA256()))
    entry = {"keyid": identity.signer.fingerprint, "sig": base64.b64encode(signature).decode()}
    if identity.certificate is not None:
        pems = b"".join(p.read_bytes() for p in (identity.certificate, *identity.chain))
        entry["certificates"] = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                                 for c in x509.load_pem_x509_certificates(pems)]
    return json.dumps({"payloadType": payload_type, "payload": base64.b64encode(body).decode(),
                       "signatures": [entry]}, sort_keys=True)


@dataclass(frozen=True)
class Envelope:
    """The parts of a DSSE envelope with one signature."""

    keyid: str
    signature: bytes
    payload_type: str
    body: bytes
    certificates: tuple[bytes, ...]  # DER, leaf first; empty for a key signature


def open_envelope(text: str | bytes) -> Envelope:
    """The envelope's parts; ValueError when it is not a DSSE envelope with exactly one signature."""
    try:
        data = json.loads(text)
        body = base64.b64decode(data["payload"], validate=True)
        [entry] = data["signatures"]
        certificates = tuple(base64.b64decode(c, validate=True) for c in entry.get("certificates") or ())
        return Envelope(str(entry["keyid"]), base64.b64decode(entry["sig"], validate=True), str(data["payloadType"]),
                        body, certificates)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError("not a DSSE envelope with one signature") from exc


def signature_holds(envelope: Envelope, public_key: object) -> bool:
    """Whether ``envelope``'s signature verifies with ``public_key`` (an EC public key)."""
    try:
        public_key.verify(envelope.signature, pae(envelope.payload_type, envelope.body),  # type: ignore[attr-defined]
                          ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, TypeError, AttributeError):
        return False
    return True
