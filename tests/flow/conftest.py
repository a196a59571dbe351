"""Fixtures for flow tests: one Prefect test harness per session and ``atlas_server`` for the flows that
also run against the session's real Apache Atlas (the per-test Atlas emulator, ``atlas``, is in tests/conftest.py)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

from governance.atlas.client import AtlasClient, AtlasSettings
from tests.record_invariant import assert_no_build_rewritten
from tests.targets.conftest import fake_kubectl  # noqa: F401  (the fake kubectl on PATH, shared)


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API (temporary SQLite DB, subprocess server) shared by the session's flow runs."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@dataclass(frozen=True)
class RealAtlas:
    url: str
    is_real: bool = True


REAL_RUN = uuid.uuid4().hex[:4]  # model names on the real Atlas: unique per run, so a reused Atlas works too


def model_name_for(request, base: str) -> str:
    """``base`` on the emulator (fresh per test); ``base-real-<run>`` on the real Atlas, shared by the session."""
    real = getattr(request.node, "callspec", None) and request.node.callspec.params.get("atlas_server") == "real"
    return f"{base}-real-{REAL_RUN}" if real else base


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.real_atlas)])
def atlas_server(request, monkeypatch):
    """The flow's Atlas twice: a fresh emulator, and the session's real Apache Atlas (shared by every test
    of the session, so tests use model names of their own and wait for what a real Atlas does later)."""
    if request.param == "emulator":
        yield request.getfixturevalue("atlas_emulator")
        return
    info = request.getfixturevalue("real_atlas")
    monkeypatch.setenv("ATLAS_USERNAME", info["username"])
    monkeypatch.setenv("ATLAS_PASSWORD", info["password"])
    yield RealAtlas(info["url"])
    assert_no_build_rewritten(info["url"], info["username"], info["password"])


@pytest.fixture
def atlas_client(atlas):
    client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
    yield client
    client.close()


@pytest.fixture
def clean_env(monkeypatch):
    for key in [k for k in os.environ if k.startswith("ATLAS_")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A shared Prefect server on PostgreSQL (``python -m testbed prefect-server``), once per session."""
    from testbed.prefect_server import PrefectServerService

    service = PrefectServerService(tmp_path_factory.mktemp("prefect-server"))
    try:
        yield service.start()
    finally:
        service.stop()


@pytest.fixture
def on_prefect_server(prefect_server, monkeypatch):
    """This test's Prefect client talks to the shared PostgreSQL-backed server (not the session harness)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_server["url"])
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        yield prefect_server["url"]
