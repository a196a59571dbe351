"""ECDSA P-256 key pairs for signing tests (model-signing accepts P-256/384/521 only)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def write_key_pair(folder: Path, name: str, *, ed25519_key: bool = False) -> tuple[Path, Path]:
    """(private key PEM, public key PEM) written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate() if ed25519_key else ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def write_certificate_chain(folder: Path, cn: str = "model-publisher", *, leaf_key_file: Path | None = None,
                            expired: bool = False) -> dict[str, Path | str]:
    """A root CA and a leaf certificate for signing (KeyUsage digitalSignature), as files under ``folder``:
    ca (root certificate), key and cert (the leaf's), and subject (the leaf's RFC 4514 subject).
    ``leaf_key_file``: certify this existing private key; ``expired``: a leaf that expired an hour ago."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{cn} test root")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = (serialization.load_pem_private_key(leaf_key_file.read_bytes(), None) if leaf_key_file
                else ec.generate_private_key(ec.SECP256R1()))
    ends = now - datetime.timedelta(hours=1) if expired else now + datetime.timedelta(days=7)
    leaf_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modelgov tests"),
                           x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    leaf = (x509.CertificateBuilder().subject_name(leaf_name).issuer_name(ca_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=2)).not_valid_after(ends)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": folder / f"{cn}-ca.pem", "key": folder / f"{cn}.key", "cert": folder / f"{cn}.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    return {**paths, "subject": leaf.subject.rfc4514_string()}
