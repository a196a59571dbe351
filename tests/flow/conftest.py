"""Fixtures for flow tests: one Prefect test harness per session, a fresh Atlas emulator per test."""

from __future__ import annotations

import os

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from tests.targets.conftest import fake_kubectl  # noqa: F401  (the fake kubectl on PATH, shared)


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API (temporary SQLite DB, subprocess server) shared by the session's flow runs."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture
def atlas(monkeypatch):
    with AtlasEmulator(host="127.0.0.1", port=0) as emulator:
        monkeypatch.setenv("ATLAS_USERNAME", "admin")
        monkeypatch.setenv("ATLAS_PASSWORD", "admin")
        yield emulator


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
