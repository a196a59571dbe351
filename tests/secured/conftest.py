"""HTTPS stand-ins for the secured-cluster tests: the "company" CA that signs them, and another CA whose
certificate a client told about the company's CA must refuse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.atlas import AtlasEmulator
from testbed.certs import TestCa
from tests.conftest import ROOT


@pytest.fixture(scope="session")
def company_ca(tmp_path_factory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("company-ca"), "company")


@pytest.fixture(scope="session")
def other_ca(tmp_path_factory) -> TestCa:
    return TestCa(tmp_path_factory.mktemp("other-ca"), "other")


@pytest.fixture(scope="session")
def atlas_https(company_ca, tmp_path_factory):
    """The Atlas emulator over HTTPS with a certificate of the company's CA."""
    cert = company_ca.server("atlas")
    state = tmp_path_factory.mktemp("atlas-https") / "state.json"
    with AtlasEmulator(state_path=str(state), tls=cert.server_context()) as emu:
        yield emu


@pytest.fixture(scope="session")
def atlas_other_ca(other_ca, tmp_path_factory):
    """The same emulator, its certificate signed by a CA nobody told modelgov about."""
    cert = other_ca.server("atlas")
    state = tmp_path_factory.mktemp("atlas-other") / "state.json"
    with AtlasEmulator(state_path=str(state), tls=cert.server_context()) as emu:
        yield emu


CLEAN_ENV = ("MODELGOV_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "MODELGOV_TLS_INSECURE",
             "MODELGOV_CONFIG", "ATLAS_CA_BUNDLE", "ATLAS_TLS_VERIFY", "MLFLOW_TRACKING_INSECURE_TLS")


def modelgov(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT,
             timeout: int = 120) -> subprocess.CompletedProcess:
    """The ``modelgov`` command in its own process, with no TLS setting but those given."""
    base = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    base.setdefault("PYTHONPATH", str(ROOT))
    return subprocess.run([sys.executable, "-m", "governance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**base, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
                                                **(env or {})})


@pytest.fixture(scope="session")
def kdc(shared_kdc):
    """The session's real MIT KDC (``python -m testbed kdc``'s service, shared with the Kerberized HDFS and the
    secured real Atlas). Its krb5.conf is this process's too (the emulators' SPNEGO acceptors run here) and
    every modelgov subprocess's."""
    before = os.environ.get("KRB5_CONFIG")
    os.environ["KRB5_CONFIG"] = shared_kdc["krb5_conf"]
    try:
        yield shared_kdc
    finally:
        if before is None:
            os.environ.pop("KRB5_CONFIG", None)
        else:
            os.environ["KRB5_CONFIG"] = before


def keytab_of(kdc: dict, principal: str) -> str:
    return kdc["principals"][f"{principal}@{kdc['realm']}"]


@pytest.fixture(scope="session")
def http_acceptor(kdc):
    from emulators.spnego import SpnegoAcceptor

    return SpnegoAcceptor(keytab_of(kdc, "HTTP/localhost"))


@pytest.fixture(scope="session")
def atlas_kerberos(company_ca, http_acceptor, tmp_path_factory):
    """Atlas with ``atlas.authentication.method.kerberos=true`` over HTTPS: SPNEGO against the real KDC."""
    cert = company_ca.server("atlas-kerberos")
    state = tmp_path_factory.mktemp("atlas-kerberos") / "state.json"
    with AtlasEmulator(host="localhost", state_path=str(state), tls=cert.server_context(),
                       spnego=http_acceptor) as emu:
        yield emu


@pytest.fixture(scope="session")
def kerberized_hdfs(tmp_path_factory, shared_kdc):
    from testbed.hdfs import HdfsService
    from testbed.service import ServiceError

    service = HdfsService(tmp_path_factory.mktemp("kerberized-hdfs"), kerberos=True, kdc=shared_kdc)
    try:
        info = service.start()
    except ServiceError as exc:
        service.stop()
        pytest.fail(f"the Kerberized MiniDFSCluster did not start: {exc}", pytrace=False)
    try:
        yield info, service
    finally:
        service.stop()
