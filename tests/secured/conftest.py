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
