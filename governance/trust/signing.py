"""Signed model versions in the OpenSSF ``model-signing`` format (issue 21): who produced these bytes.

A registry version signed at publish carries ``model.sig`` beside its files: a Sigstore bundle (DSSE envelope,
in-toto statement, ``predicateType https://model_signing/signature/v1.0``) whose resources are every file of
the version with its sha256, ``MANIFEST.json`` included, so the manifest's metadata and digests are signed
too. The upstream CLI verifies it on a copy of the version folder::

    model_signing verify key VERSION_DIR --public_key pub.pem --signature VERSION_DIR/model.sig

(an S3 version keeps its files under ``data_dir``: copy that folder and put ``MANIFEST.json`` beside them).

The statement is built from the sha256 digests modelgov already computed while publishing (model-signing's
per-file serialization hashes each file with sha256, the same digests), so signing adds no second read of
the model; verification checks the signature against the policy's keys, then compares the signed digests
with the manifest's, which every target's read of the bytes (``Registry.read_verified``) then enforces.

model-signing's public API signs and verifies folders on disk; building the statement from known digests
uses its ``manifest`` module and the key signer/verifier under ``model_signing._signing``, pinned to 1.1.1
(tests/test_signing.py checks the result with the upstream CLI, so an upgrade that changes them fails there).

Keys: ECDSA P-256/384/521 PEM (model-signing refuses others). The signer's identity is the sha256 of its
public key (SubjectPublicKeyInfo, PEM), the ``publicKey.hint`` model-signing puts in the bundle.
Environment: ``MODELGOV_SIGNING_KEY`` (private key file), ``MODELGOV_SIGNING_KEY_PASSWORD`` (when it is
encrypted); ``MODELGOV_TRUSTED_KEYS`` (public key files, comma-separated) and ``MODELGOV_REQUIRE_SIGNATURE``
(``true``: an unsigned version is refused) for the trust policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cryptography.hazmat.primitives import serialization

from governance.errors import ConfigError, GovernanceError

SIGNATURE_FILE = "model.sig"
SIGNING_KEY_ENV = "MODELGOV_SIGNING_KEY"
SIGNING_PASSWORD_ENV = "MODELGOV_SIGNING_KEY_PASSWORD"
SIGNING_CERT_ENV = "MODELGOV_SIGNING_CERT"      # the leaf certificate of the signing key (certificate mode)
SIGNING_CHAIN_ENV = "MODELGOV_SIGNING_CHAIN"    # intermediate certificates, comma-separated
TRUSTED_CA_ENV = "MODELGOV_TRUSTED_CA"          # root certificates a certificate signature must chain to
TRUSTED_IDENTITIES_ENV = "MODELGOV_TRUSTED_IDENTITIES"  # pinned leaf subjects or sha256:fingerprints, ';'-separated
TRUSTED_KEYS_ENV = "MODELGOV_TRUSTED_KEYS"
APPROVER_KEYS_ENV = "MODELGOV_APPROVER_KEYS"  # public keys of the people whose signed approvals count
APPROVER_CA_ENV = "MODELGOV_APPROVER_CA"      # roots an approver's certificate must chain to ...
APPROVER_IDENTITIES_ENV = "MODELGOV_APPROVER_IDENTITIES"  # ... and its pinned subjects or sha256:, ';'-separated
REQUIRE_ENV = "MODELGOV_REQUIRE_SIGNATURE"
MAX_SIGNATURE_BYTES = 16 * 1024 * 1024  # a bundle lists one digest per file: 100,000 files are ~15 MB


class SignatureError(GovernanceError):
    """A version's signature is missing where required, made by a key the policy does not trust, or does not
    match the version's files or manifest. The message names the version, the file and the reason."""


@dataclass(frozen=True)
class Signer:
    """Who signed: the kind of identity and its fingerprint (``sha256:`` of the public key, as the bundle's
    ``publicKey.hint``)."""

    kind: str          # "key" or "certificate"
    fingerprint: str   # key: sha256 of the public key (PEM); certificate: sha256 of the leaf certificate (DER)
    subject: str = ""  # certificate: the leaf's subject (RFC 4514)

    def to_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "fingerprint": self.fingerprint}
        return {**out, "subject": self.subject} if self.subject else out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Signer:
        return cls(kind=str(data.get("kind", "")), fingerprint=str(data.get("fingerprint", "")),
                   subject=str(data.get("subject", "")))

    def describe(self) -> str:
        return f"certificate {self.subject} ({self.fingerprint})" if self.subject else f"{self.kind} {self.fingerprint}"


def certificate_signer(cert) -> Signer:  # cert: cryptography.x509.Certificate
    from cryptography.hazmat.primitives import hashes

    return Signer("certificate", "sha256:" + cert.fingerprint(hashes.SHA256()).hex(), cert.subject.rfc4514_string())


def key_fingerprint(public_key: object) -> str:
    pem = public_key.public_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(pem).hexdigest()


def _statement(name: str, files: Iterable[tuple[str, str]]):  # -> model_signing.manifest.Manifest
    """model-signing's manifest of ``files`` ((path, sha256 hex)), by files, sha256, the signature ignored."""
    from model_signing import manifest
    from model_signing._hashing import hashing

    items = [manifest.FileManifestItem(path=PurePosixPath(path), digest=hashing.Digest("sha256", bytes.fromhex(sha)))
             for path, sha in sorted(files)]
    serialization_type = manifest.SerializationType.from_args(
        {"method": "files", "hash_type": "sha256", "allow_symlinks": False, "ignore_paths": [SIGNATURE_FILE]})
    return manifest.Manifest(name, items, serialization_type)


def signed_files(files: Iterable[tuple[str, str]], manifest_name: str, manifest_bytes: bytes) -> list[tuple[str, str]]:
    """What a version's signature covers: its files and, last, its manifest, by sha256."""
    return [*files, (manifest_name, hashlib.sha256(manifest_bytes).hexdigest())]


@dataclass(frozen=True)
class SigningSettings:
    """``signing:`` in modelgov.yaml: the key (and certificate, chain) that signs what this host publishes.
    Paths only; a key's password comes from ``MODELGOV_SIGNING_KEY_PASSWORD``, never from the file."""

    key: str
    certificate: str | None = None
    chain: tuple[str, ...] = ()


@dataclass(frozen=True)
class SigningIdentity:
    """A private key that signs registry versions at publish."""

    key_path: Path
    password: str | None = None
    certificate: Path | None = None  # certificate mode: the key's leaf certificate, and its chain
    chain: tuple[Path, ...] = ()

    @classmethod
    def load(cls, settings: SigningSettings | None, env: Mapping[str, str] | None = None) -> SigningIdentity | None:
        """The identity the environment names (``MODELGOV_SIGNING_KEY``, which wins), else modelgov.yaml's
        ``signing:``; None when neither names one."""
        env = os.environ if env is None else env
        if env.get(SIGNING_KEY_ENV, "").strip() or settings is None:
            return cls.from_env(env)
        return cls.from_env({SIGNING_KEY_ENV: settings.key, SIGNING_CERT_ENV: settings.certificate or "",
                             SIGNING_CHAIN_ENV: ",".join(settings.chain),
                             SIGNING_PASSWORD_ENV: env.get(SIGNING_PASSWORD_ENV, "")})

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SigningIdentity | None:
        """The identity ``MODELGOV_SIGNING_KEY`` names, or None when it is not set; a ConfigError when the file
        is not a usable ECDSA key."""
        env = os.environ if env is None else env
        path = env.get(SIGNING_KEY_ENV, "").strip()
        if not path:
            return None
        cert = env.get(SIGNING_CERT_ENV, "").strip()
        chain = tuple(Path(c.strip()).expanduser() for c in env.get(SIGNING_CHAIN_ENV, "").split(",") if c.strip())
        identity = cls(Path(path).expanduser(), env.get(SIGNING_PASSWORD_ENV) or None,
                       Path(cert).expanduser() if cert else None, chain)
        if identity.certificate and identity.password:
            raise ConfigError(f"{SIGNING_CERT_ENV}: model-signing 1.1.1 signs with a certificate only from an "
                              f"unencrypted key file; unset {SIGNING_PASSWORD_ENV} or sign with the key alone")
        identity.signer  # noqa: B018 - load it now: a bad key is a usage error before anything is published
        return identity

    def private_key(self):  # -> cryptography's EllipticCurvePrivateKey
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(),
                                                     self.password.encode() if self.password else None)
        except OSError as exc:
            raise ConfigError(f"{SIGNING_KEY_ENV}={self.key_path}: cannot be read ({exc.strerror})") from exc
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{SIGNING_KEY_ENV}={self.key_path}: not a PEM private key, or the password "
                              f"({SIGNING_PASSWORD_ENV}) is wrong or missing") from exc
        if not hasattr(key, "curve") or key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise ConfigError(f"{SIGNING_KEY_ENV}={self.key_path}: model-signing needs an ECDSA key on P-256, "
                              "P-384 or P-521 (openssl ecparam -name prime256v1 -genkey -noout -out key.pem)")
        return key

    @property
    def signer(self) -> Signer:
        key = self.private_key()
        if self.certificate is None:
            return Signer("key", key_fingerprint(key.public_key()))
        from cryptography import x509

        try:
            cert = x509.load_pem_x509_certificate(self.certificate.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{SIGNING_CERT_ENV}={self.certificate}: not a readable PEM certificate") from exc
        if cert.public_key() != key.public_key():
            raise ConfigError(f"{SIGNING_CERT_ENV}={self.certificate} is not the certificate of {SIGNING_KEY_ENV}="
                              f"{self.key_path} (their public keys differ)")
        return certificate_signer(cert)

    def sign(self, name: str, files: Iterable[tuple[str, str]]) -> bytes:
        """The model-signing bundle (JSON) over ``files`` ((path, sha256 hex), the manifest included)."""
        from model_signing._signing import sign_certificate, sign_ec_key, signing

        self.signer  # noqa: B018 - the clear errors above, before model-signing's own
        if self.certificate is not None:
            # model-signing 1.1.1 fails to load an empty chain (a leaf issued by the root itself): the leaf then
            # stands in as its own chain, which verification treats as an untrusted intermediate
            signer = sign_certificate.Signer(self.key_path, self.certificate, list(self.chain) or [self.certificate])
        else:  # model-signing hands the password to cryptography, which wants bytes
            signer = sign_ec_key.Signer(self.key_path, self.password.encode() if self.password else None)  # type: ignore[arg-type]
        return signer.sign(signing.Payload(_statement(name, files))).bundle.to_json().encode()


@dataclass(frozen=True)
class TrustSettings:
    """The trust policy as configured for one deploy (``modelgov.yaml`` ``trust:``, resolved for its target and
    environment by ``Config.trust_for``): public key files and whether a signature is required. Plain values,
    so a deploy request carrying it can be a flow parameter."""

    trusted_keys: tuple[str, ...] = ()
    require_signature: bool = False
    trusted_cas: tuple[str, ...] = ()      # root certificates for certificate signatures
    identities: tuple[str, ...] = ()       # pinned leaf subjects (RFC 4514) or sha256: fingerprints
    approvers: tuple[str, ...] = ()        # public keys whose signed approvals count (governance.trust.approvals)
    approver_cas: tuple[str, ...] = ()     # certificate approvers: roots their certificates chain to ...
    approver_identities: tuple[str, ...] = ()  # ... and their pinned subjects or sha256: fingerprints


@dataclass(frozen=True)
class Approvers:
    """Whose signed approvals count: public keys, or certificates chaining to ``cas`` whose leaf is one of
    ``identities``. Empty (false) where the policy names no approvers: then a typed name is accepted, unverified."""

    keys: Mapping[str, Path] = field(default_factory=dict)  # fingerprint -> public key file
    identities: frozenset[str] = frozenset()
    cas: tuple[Path, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.keys) or bool(self.identities)

    @classmethod
    def of(cls, approvers: Approvers | Mapping[str, Path]) -> Approvers:
        return approvers if isinstance(approvers, Approvers) else cls(dict(approvers))


@dataclass(frozen=True)
class TrustPolicy:
    """Which signers a deploy accepts, and whether a version must be signed at all."""

    trusted: Mapping[str, Path]  # fingerprint -> public key file
    required: bool = False
    cas: tuple[Path, ...] = ()   # certificate mode: the roots a leaf must chain to ...
    identities: frozenset[str] = frozenset()  # ... and one of these leaf subjects or fingerprints
    approvers: Approvers = field(default_factory=Approvers)  # who may sign approvals; any: signed ones required

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrustPolicy:
        """The policy of the environment alone (``MODELGOV_TRUSTED_KEYS``, ``MODELGOV_REQUIRE_SIGNATURE``)."""
        return cls.load(None, env)

    @classmethod
    def load(cls, settings: TrustSettings | None, env: Mapping[str, str] | None = None) -> TrustPolicy:
        """``settings`` (from modelgov.yaml) joined with the environment's: the keys of both are trusted, and a
        signature is required when either requires one (the stricter wins)."""
        env = os.environ if env is None else env
        keys = _public_keys([(raw, TRUSTED_KEYS_ENV) for raw in (env.get(TRUSTED_KEYS_ENV) or "").split(",")]
                            + [(raw, "trust.trusted_keys in modelgov.yaml")
                               for raw in (settings.trusted_keys if settings else ())])
        approvers = _public_keys([(raw, APPROVER_KEYS_ENV) for raw in (env.get(APPROVER_KEYS_ENV) or "").split(",")]
                                 + [(raw, "trust.approvers in modelgov.yaml")
                                    for raw in (settings.approvers if settings else ())])
        required = (env.get(REQUIRE_ENV) or "").strip().lower()
        if required not in ("", "true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"{REQUIRE_ENV}={required!r}: use true or false")
        cas = _certificates(env.get(TRUSTED_CA_ENV), settings.trusted_cas if settings else (),
                            f"{TRUSTED_CA_ENV} / trust.trusted_cas")
        pins = {i.strip() for i in (env.get(TRUSTED_IDENTITIES_ENV) or "").split(";") if i.strip()}
        pins |= set(settings.identities if settings else ())
        approver_cas = _certificates(env.get(APPROVER_CA_ENV), settings.approver_cas if settings else (),
                                     f"{APPROVER_CA_ENV} / trust.approver_cas")
        approver_pins = {i.strip() for i in (env.get(APPROVER_IDENTITIES_ENV) or "").split(";") if i.strip()}
        approver_pins |= set(settings.approver_identities if settings else ())
        if approver_pins and not approver_cas:
            raise ConfigError(f"{APPROVER_IDENTITIES_ENV} / trust.approver_identities name certificate approvers: "
                              f"give the roots their certificates chain to ({APPROVER_CA_ENV}, trust.approver_cas)")
        return cls(keys, required in ("true", "1", "yes") or bool(settings and settings.require_signature),
                   cas, frozenset(pins), Approvers(approvers, frozenset(approver_pins), approver_cas))

    @property
    def active(self) -> bool:
        return self.required or bool(self.trusted) or bool(self.cas)

    def check(self, label: str, bundle: bytes | None, files: Iterable[tuple[str, str]]) -> Signer | None:
        """The verified signer of the version ``label`` whose files (the manifest included) are ``files``;
        None for an unsigned version the policy accepts. SignatureError naming the version, the file and the
        reason otherwise: unsigned where required, a key outside the policy, a signature that does not verify,
        or any file whose signed sha256 differs from the manifest's."""
        if bundle is None:
            if self.required:
                raise SignatureError(f"{label} is not signed (no {SIGNATURE_FILE}) and {REQUIRE_ENV} requires a "
                                     "signature; publish it with MODELGOV_SIGNING_KEY set")
            return None
        if len(bundle) > MAX_SIGNATURE_BYTES:
            raise SignatureError(f"{label}: {SIGNATURE_FILE} is larger than {MAX_SIGNATURE_BYTES} bytes")
        try:
            material = json.loads(bundle)["verificationMaterial"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SignatureError(f"{label}: {SIGNATURE_FILE} is not a model-signing bundle") from exc
        if isinstance(material, dict) and material.get("x509CertificateChain"):
            signer, signed = self._certificate(label, bundle, material["x509CertificateChain"])
        else:
            signer, signed = self._key(label, bundle, material)
        expected = dict(files)  # in the order given: the files, then the manifest (``signed_files``)
        for path in [*expected, *sorted(p for p in signed if p not in expected)]:
            if path not in expected:
                raise SignatureError(f"{label}: {SIGNATURE_FILE} signs {path}, which the version does not hold")
            if path not in signed:
                raise SignatureError(f"{label}: {path} is not covered by {SIGNATURE_FILE}")
            if signed[path] != expected[path]:
                raise SignatureError(f"{label}: {path} has sha256 {expected[path]}, the signature says "
                                     f"{signed[path]} (changed after it was signed)")
        return signer

    def _key(self, label: str, bundle: bytes, material: object) -> tuple[Signer, dict[str, str]]:
        try:
            hint = material["publicKey"]["hint"]  # type: ignore[index]
        except (KeyError, TypeError) as exc:
            raise SignatureError(f"{label}: {SIGNATURE_FILE} names neither a key nor a certificate") from exc
        fingerprint = f"sha256:{hint}"
        if fingerprint not in self.trusted:
            raise SignatureError(f"{label}: {SIGNATURE_FILE} was made by key {fingerprint}, which the trust "
                                 f"policy ({TRUSTED_KEYS_ENV}, trust: in modelgov.yaml) does not list")
        return Signer("key", fingerprint), _verified_statement(label, bundle, self.trusted[fingerprint])

    def _certificate(self, label: str, bundle: bytes, chain: object) -> tuple[Signer, dict[str, str]]:
        """A certificate signature: the chain must lead to a trusted root, and the leaf be a pinned identity
        (model-signing checks only the root; the leaf's subject is compared here)."""
        import base64

        from cryptography import x509

        if not self.cas:
            raise SignatureError(f"{label}: {SIGNATURE_FILE} is signed with a certificate, and the trust policy "
                                 f"trusts no certificate authority ({TRUSTED_CA_ENV}, trust.trusted_cas)")
        try:
            leaf = x509.load_der_x509_certificate(base64.b64decode(chain["certificates"][0]["rawBytes"]))  # type: ignore[index]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise SignatureError(f"{label}: {SIGNATURE_FILE} carries no readable signing certificate") from exc
        signer = certificate_signer(leaf)
        if not ({signer.subject, signer.fingerprint} & self.identities):
            raise SignatureError(f"{label}: {SIGNATURE_FILE} was signed by {signer.describe()}, which is not "
                                 f"a pinned identity ({TRUSTED_IDENTITIES_ENV}, trust.identities)")
        return signer, _verified_statement(label, bundle, None, cas=self.cas)


def create_key_pair(folder: Path, name: str, password: str | None = None) -> tuple[Path, Path, str]:
    """A new ECDSA P-256 key pair for a person or a service: ``NAME.key`` (private, mode 0600, encrypted with
    ``password`` when given) and ``NAME.pub`` in ``folder``; returns both paths and the fingerprint. Refuses to
    overwrite either file."""
    from cryptography.hazmat.primitives.asymmetric import ec

    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"key name {name!r}: use a plain file name such as alice or ci-deployer")
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    for path in (private, public):
        if path.exists():
            raise ConfigError(f"{path} exists; keys are never overwritten (choose another name or folder)")
    key = ec.generate_private_key(ec.SECP256R1())
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public, key_fingerprint(key.public_key())


def _certificates(from_env: str | None, from_config: Iterable[str], where: str) -> tuple[Path, ...]:
    """Certificate files named comma-separated in the environment and listed in modelgov.yaml, each readable."""
    paths = [Path(c.strip()).expanduser() for c in (from_env or "").split(",") if c.strip()]
    paths += [Path(c) for c in from_config]
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{where}: {path} is not a readable certificate file")
    return tuple(paths)


def _public_keys(sources: list[tuple[str, str]]) -> dict[str, Path]:
    """{fingerprint: file} of the public key files named in ``sources`` ((path, where it was set))."""
    keys: dict[str, Path] = {}
    for raw, where in sources:
        if not raw.strip():
            continue
        path = Path(raw.strip()).expanduser()
        try:
            keys[key_fingerprint(serialization.load_pem_public_key(path.read_bytes()))] = path
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{where}: {path} is not a readable PEM public key") from exc
    return keys


def _verified_statement(label: str, bundle: bytes, public_key: Path | None, *,
                        cas: tuple[Path, ...] = ()) -> dict[str, str]:
    """{path: sha256 hex} that ``bundle`` signs, once its signature verifies with ``public_key`` (or its
    certificate chain leads to one of ``cas``)."""
    from model_signing._signing import sign_certificate, sign_ec_key, sign_sigstore_pb

    with tempfile.TemporaryDirectory(prefix="modelgov-sig-") as tmp:
        path = Path(tmp) / SIGNATURE_FILE
        path.write_bytes(bundle)
        try:
            verifier = (sign_ec_key.Verifier(public_key) if public_key is not None
                        else sign_certificate.Verifier(list(cas)))
            statement = verifier.verify(sign_sigstore_pb.Signature.read(path))
        except Exception as exc:  # noqa: BLE001 - model-signing raises ValueError, KeyError, crypto errors
            reason = str(exc) or exc.__class__.__name__
            against = public_key if public_key is not None else ", ".join(map(str, cas))
            raise SignatureError(f"{label}: {SIGNATURE_FILE} does not verify with {against}: {reason}") from exc
    return {str(d.identifier): d.digest.digest_hex for d in statement.resource_descriptors()}
