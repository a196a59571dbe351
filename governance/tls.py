"""Which CAs every HTTPS client of modelgov trusts: one setting, read the same way by all of them.

The company's clusters (Atlas, WebHDFS, MLServer, MLflow, S3 endpoints) present certificates signed by the
company's own CA, which is not in certifi's bundle. The bundle is, first found wins:

1. ``MODELGOV_CA_BUNDLE`` (a PEM file, or a folder prepared with ``c_rehash``),
2. ``REQUESTS_CA_BUNDLE`` (what requests itself would read),
3. ``tls.ca_bundle`` in ``modelgov.yaml``,
4. else the default trust store (certifi for requests, botocore's for S3).

Verification is never off by accident: only ``MODELGOV_TLS_INSECURE=true`` or ``tls.insecure: true`` turns
it off (MLflow's ``MLFLOW_TRACKING_INSECURE_TLS=true`` counts too), every session built so logs a warning, and a deploy to a production environment is refused
(``refuse_insecure_for``). A certificate that does not verify fails with a message naming the server and
where the trusted CAs came from (``untrusted_message``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from governance.errors import ConfigError

if TYPE_CHECKING:
    from governance.config import Config

log = logging.getLogger(__name__)

CA_ENV = "MODELGOV_CA_BUNDLE"
REQUESTS_CA_ENV = "REQUESTS_CA_BUNDLE"
INSECURE_ENV = "MODELGOV_TLS_INSECURE"
MLFLOW_INSECURE_ENV = "MLFLOW_TRACKING_INSECURE_TLS"  # MLflow's own switch: the same policy
CONFIG_KEY = "tls.ca_bundle in modelgov.yaml"
HOW_TO_SET = f"set {CA_ENV} (or {REQUESTS_CA_ENV}, or tls.ca_bundle in modelgov.yaml) to the company's CA file"


@dataclass(frozen=True)
class TlsSettings:
    """The CA bundle in force (None: the default trust store), the setting it came from, and ``insecure``."""

    ca_bundle: str | None = None
    source: str = "the default trust store (certifi)"
    insecure: bool = False

    @property
    def verify(self) -> bool | str:
        """What requests' ``verify=`` takes."""
        if self.insecure:
            return False
        return self.ca_bundle or True

    @property
    def boto_verify(self) -> bool | str | None:
        """What boto3's ``verify=`` takes: None keeps botocore's own default (``AWS_CA_BUNDLE``, its store)."""
        if self.insecure:
            return False
        return self.ca_bundle


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def tls_settings(config: Config | None = None) -> TlsSettings:
    """The settings from the environment, then ``config`` (default: ``modelgov.yaml`` as ``load_config``
    finds it); ConfigError when a named bundle is missing."""
    from governance.config import load_config

    cfg_tls = (config or load_config()).tls
    insecure = (_truthy(os.environ.get(INSECURE_ENV)) or bool(cfg_tls.get("insecure"))
                or _truthy(os.environ.get(MLFLOW_INSECURE_ENV)))
    for name, value in ((CA_ENV, os.environ.get(CA_ENV)), (REQUESTS_CA_ENV, os.environ.get(REQUESTS_CA_ENV)),
                        (CONFIG_KEY, cfg_tls.get("ca_bundle"))):
        if value:
            if not os.path.exists(value):
                raise ConfigError(f"{name}={value}: no such CA bundle file")
            return TlsSettings(str(value), name, insecure)
    return TlsSettings(insecure=insecure)


_warned = False


def session_verify() -> bool | str:
    """``verify=`` for a session being built; logs loudly (once per process) when verification is off, in
    place of urllib3's warning on every request."""
    global _warned
    settings = tls_settings()
    if settings.insecure:
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        if not _warned:
            _warned = True
            log.warning("TLS CERTIFICATE VERIFICATION IS OFF (%s or tls.insecure in modelgov.yaml): any server "
                        "can impersonate Atlas, HDFS or a target; never use this outside a sandbox", INSECURE_ENV)
    return settings.verify


def refuse_insecure_for(environment: str | None, config: Config | None = None) -> None:
    """A production deploy never runs with certificate verification off."""
    if environment == "production" and tls_settings(config).insecure:
        raise ConfigError(f"TLS verification is off ({INSECURE_ENV} or tls.insecure in modelgov.yaml): refused "
                          f"for a production deploy; {HOW_TO_SET} instead")


def untrusted_message(url: str, exc: BaseException, verify: bool | str = True) -> str:
    """Why a TLS handshake with ``url``'s server failed, and which setting to fix: names host and CA source
    (``verify``: the session's own CA file when a client was given one, e.g. ATLAS_CA_BUNDLE)."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 443}"
    text = str(exc)
    found = re.search(r"certificate verify failed: ([^(']+)", text)
    reason = found.group(1).strip() if found else exc.__class__.__name__
    if isinstance(verify, str):
        trusted = verify
        with contextlib.suppress(ConfigError):
            settings = tls_settings()
            trusted += f" ({settings.source})" if settings.ca_bundle == verify else " (this client's own setting)"
    else:
        trusted = "the default trust store (certifi)"
    return (f"TLS: the certificate of {where} is not trusted ({reason}); trusted CAs: {trusted}. "
            f"If {parts.hostname} is signed by the company's CA, {HOW_TO_SET}")


@dataclass(frozen=True)
class ServerCertificate:
    """What a server presents, for ``modelgov doctor``: subject, issuer, expiry, and whether we trust it."""

    where: str
    subject: str
    issuer: str
    expires: datetime
    trusted: bool
    problem: str | None = None


def server_certificate(url: str, timeout: float = 5.0) -> ServerCertificate | None:
    """The certificate of ``url``'s server (None for a plain-HTTP URL), checked against the CA bundle in force.
    Read even when it does not verify, so doctor can say whose it is."""
    import socket
    import ssl

    from cryptography import x509

    parts = urlsplit(url)
    if parts.scheme not in ("https", "swebhdfs"):
        return None
    host, port = parts.hostname or "localhost", parts.port or 443
    where = f"{host}:{port}"
    peek = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    peek.check_hostname, peek.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as sock, \
            peek.wrap_socket(sock, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    verify = tls_settings().verify
    problem = None
    if verify is not False:
        if isinstance(verify, str):
            check = ssl.create_default_context(cafile=verify if os.path.isfile(verify) else None,
                                               capath=verify if os.path.isdir(verify) else None)
        else:
            import certifi

            check = ssl.create_default_context(cafile=certifi.where())
        try:
            with socket.create_connection((host, port), timeout=timeout) as sock, \
                    check.wrap_socket(sock, server_hostname=host):
                pass
        except ssl.SSLCertVerificationError as exc:
            problem = exc.verify_message or str(exc)
    else:
        problem = "not checked: TLS verification is off"
    return ServerCertificate(where, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                             cert.not_valid_after_utc, problem is None, problem)
