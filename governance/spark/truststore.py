"""The company's CA bundle as a Java trust store, so Spark's JVM (S3A over HTTPS) trusts what every other client
of modelgov trusts (``governance.tls``: ``MODELGOV_CA_BUNDLE``, ``REQUESTS_CA_BUNDLE``, ``tls.ca_bundle``).

The JDK reads no PEM bundle. The store is written here in the JDK's own JKS format (trusted-certificate entries
only: magic, version, entries, and the format's keyed SHA-1 integrity digest), which every JDK reads: no JVM or
``keytool`` run per certificate (a system bundle holds 140 of them). It is kept under the state folder, named by
the bundle's sha256, so a changed bundle gets a new store. A trust store holds only public certificates: its
password protects nothing and is the JDK's customary ``changeit``. As with requests' ``verify=``, the store
replaces the JDK's default CAs for that JVM.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import struct
import tempfile
import time
from pathlib import Path

from governance.config import state_dir
from governance.errors import ConfigError

STORE_PASSWORD = "changeit"  # noqa: S105 - public certificates only; the JDK's customary trust store password
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)
JKS_MAGIC, JKS_VERSION, TRUSTED_CERT = 0xFEEDFEED, 2, 2
JKS_WHITENER = b"Mighty Aphrodite"  # the constant the JDK's JavaKeyStore mixes into its integrity digest


def _certificates(bundle: Path) -> list[bytes]:
    """Every certificate of the bundle (a PEM file, or a folder of them), DER-encoded."""
    files = sorted(p for p in bundle.iterdir() if p.is_file()) if bundle.is_dir() else [bundle]
    try:
        found = [base64.b64decode(b"".join(m.group(1).split()), validate=True)
                 for f in files for m in PEM_CERT.finditer(f.read_bytes())]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"CA bundle {bundle}: cannot read it as PEM certificates ({exc})") from exc
    if not found:
        raise ConfigError(f"CA bundle {bundle}: no PEM certificate in it")
    return found


def _utf(text: str) -> bytes:
    data = text.encode("utf-8")  # Java's modified UTF-8 equals UTF-8 for these ASCII aliases
    return struct.pack(">H", len(data)) + data


def jks_bytes(certificates: list[bytes], password: str = STORE_PASSWORD) -> bytes:
    """A JKS store of trusted-certificate entries ``ca-0``, ``ca-1``, ... (java.security.KeyStore "JKS")."""
    now = int(time.time() * 1000)
    body = struct.pack(">III", JKS_MAGIC, JKS_VERSION, len(certificates))
    for number, der in enumerate(certificates):
        body += struct.pack(">I", TRUSTED_CERT) + _utf(f"ca-{number}") + struct.pack(">q", now)
        body += _utf("X.509") + struct.pack(">I", len(der)) + der
    digest = hashlib.sha1(password.encode("utf-16-be") + JKS_WHITENER + body).digest()  # noqa: S324 - JKS's own
    return body + digest


def java_truststore(bundle: str | Path) -> Path:
    """A JKS trust store holding every certificate of ``bundle`` (written once per bundle content)."""
    bundle = Path(bundle)
    certificates = _certificates(bundle)
    folder = state_dir() / "spark" / "truststores"
    store = folder / f"ca-{hashlib.sha256(b''.join(certificates)).hexdigest()[:16]}.jks"
    if store.is_file():
        return store
    data = jks_bytes(certificates)
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, suffix=".partial")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, store)  # whole or not at all: another process may be writing the same store
    return store
