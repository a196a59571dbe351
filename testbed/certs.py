"""A private CA and server certificates for the testbed's HTTPS services, made here with ``cryptography``
(never downloaded): the stand-in for "the company's CA" that modelgov must be told about.

``TestCa(folder, name).server(hosts)`` writes ``<name>-ca.pem`` (the bundle a client trusts) and a
certificate + key for the hosts (DNS names and IP addresses), and returns an ``ssl.SSLContext`` ready to
wrap a server socket. Two CAs with different names make the "signed by another CA" case.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from testbed.service import ServiceError

DEFAULT_HOSTS = ("localhost", "127.0.0.1")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modelgov testbed"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass
class ServerCert:
    cert: Path
    key: Path
    ca_bundle: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


class TestCa:
    """A self-signed CA kept in ``folder`` (made once, reused by a second service in the same folder)."""

    __test__ = False  # not a pytest class

    def __init__(self, folder: Path, name: str = "modelgov-testbed", *, days: int = 30):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.days = days
        self.bundle = self.folder / f"{name}-ca.pem"
        key_path = self.folder / f"{name}-ca.key"
        if self.bundle.is_file() and key_path.is_file():
            self.key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            self.cert = x509.load_pem_x509_certificate(self.bundle.read_bytes())
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(_name(f"{name} CA")).issuer_name(_name(f"{name} CA"))
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        key_path.write_bytes(_pem_key(self.key))
        key_path.chmod(0o600)
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server(self, service: str, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> ServerCert:
        """A server certificate for ``hosts`` signed by this CA, written as ``<service>.pem``/``.key``."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=self.days))
                .add_extension(_san(hosts), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_path, key_path = self.folder / f"{service}.pem", self.folder / f"{service}.key"
        key_path.write_bytes(_pem_key(key))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return ServerCert(cert_path, key_path, self.bundle)


def java_keystores(cert: ServerCert, keystore: Path, truststore: Path, password: str) -> None:
    """The server's key and certificate chain as a JKS keystore, the CA as a JKS truststore, for Java servers
    (Atlas 2.1 opens both as ``jks``; Hadoop's ssl-server.xml names them). ``keytool`` reads the passwords from
    the environment (``:env``), never from argv. ServiceError when keytool is missing or fails."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    keytool = shutil.which("keytool")
    if keytool is None:
        raise ServiceError("keytool (the JDK's) is not on PATH: a Java server over TLS needs it for its keystore")
    key = serialization.load_pem_private_key(cert.key.read_bytes(), None)
    chain = [x509.load_pem_x509_certificate(cert.cert.read_bytes()),
             x509.load_pem_x509_certificate(cert.ca_bundle.read_bytes())]
    p12 = keystore.with_suffix(".p12")
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"atlas", key, chain[0], chain[1:], serialization.BestAvailableEncryption(password.encode())))
    env = {**os.environ, "MODELGOV_STORE_PASSWORD": password}
    for path in (keystore, truststore):
        path.unlink(missing_ok=True)
    commands = [[keytool, "-importkeystore", "-noprompt", "-srckeystore", str(p12), "-srcstoretype", "PKCS12",
                 "-srcstorepass:env", "MODELGOV_STORE_PASSWORD", "-destkeystore", str(keystore),
                 "-deststoretype", "JKS", "-deststorepass:env", "MODELGOV_STORE_PASSWORD",
                 "-destkeypass:env", "MODELGOV_STORE_PASSWORD"],
                [keytool, "-importcert", "-noprompt", "-alias", "testbed-ca", "-file", str(cert.ca_bundle),
                 "-keystore", str(truststore), "-storetype", "JKS", "-storepass:env", "MODELGOV_STORE_PASSWORD"]]
    try:
        for command in commands:
            run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            if run.returncode != 0:
                raise ServiceError(f"keytool {command[1]} failed: {(run.stdout + run.stderr)[-1000:]}")
    finally:
        p12.unlink(missing_ok=True)


@dataclass
class JavaStores:
    """A Java server's TLS files: its CA's bundle (what clients trust), its certificate, the JKS stores and
    their password (random: the stores are this test server's own files)."""

    ca_bundle: Path
    certificate: Path
    keystore: Path
    truststore: Path
    password: str


def java_server_stores(folder: Path, service: str) -> JavaStores:
    """A certificate of a CA of the service's own (``<service>-testbed``) for localhost and 127.0.0.1, in JKS
    stores (``java_keystores``) under ``folder``."""
    ca = TestCa(folder, f"{service}-testbed")
    cert = ca.server(service)
    stores = JavaStores(ca.bundle, cert.cert, folder / f"{service}.keystore.jks", folder / f"{service}.truststore.jks",
                        secrets.token_urlsafe(18))
    java_keystores(cert, stores.keystore, stores.truststore, stores.password)
    return stores
