"""The types check costs two calls, once per process: a batch of 100 deploys must not repeat it 100 times,
and a server that ignores the ``servicetype`` filter still gets a correct answer (GET by name)."""

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas import typedefs
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.deploy.ledger import Ledger


class CountingClient(AtlasClient):
    def __init__(self, settings: AtlasSettings):
        super().__init__(settings)
        self.calls: list[tuple[str, str]] = []

    def _request(self, method, path, **kwargs):
        self.calls.append((method, path))
        return super()._request(method, path, **kwargs)


@pytest.fixture
def emulator():
    with AtlasEmulator(host="127.0.0.1", port=0) as emu:
        yield emu


def typedef_reads(client: CountingClient) -> list[tuple[str, str]]:
    return [c for c in client.calls if c[0] == "GET" and "/types/" in c[1]]


def test_install_reads_types_in_two_searches(emulator):
    client = CountingClient(AtlasSettings(url=emulator.url, username="admin", password="admin"))
    typedefs.install_types(client)  # creates them
    client.calls.clear()
    report = typedefs.install_types(client)
    assert not report.created and not report.updated
    assert typedef_reads(client) == [("GET", "/v2/types/typedefs")] * 2  # ml base types, then ours


def test_ledger_checks_types_once_per_process(emulator, tmp_path):
    client = CountingClient(AtlasSettings(url=emulator.url, username="admin", password="admin"))
    typedefs.install_types(client)  # a fresh Atlas: created (not yet seen by the per-process check)
    client.calls.clear()
    for _ in range(3):
        Ledger(client, "modelgov").check()
    reads = typedef_reads(client)
    assert reads.count(("GET", "/v2/types/typedefs")) == 2  # the full check once
    assert len(reads) == 2 + 2  # then one GET each to confirm the types are still there


def test_an_atlas_restarted_empty_at_the_same_url_gets_the_types_again(tmp_path):
    """Found by CI: a fresh Atlas answering at a URL this process had checked before had no types, and the
    deploy failed at preflight with 'Unknown/invalid typename'."""
    from tests.emulators.test_atlas_emulator import _free_port

    port = _free_port()
    with AtlasEmulator(host="127.0.0.1", port=port) as first:
        client = CountingClient(AtlasSettings(url=first.url, username="admin", password="admin"))
        Ledger(client, "modelgov").check()
    with AtlasEmulator(host="127.0.0.1", port=port) as second:
        client = CountingClient(AtlasSettings(url=second.url, username="admin", password="admin"))
        Ledger(client, "modelgov").check()
        assert client.get_typedef("modelgov_model_deployment") is not None


def test_a_server_ignoring_the_filter_still_gets_a_correct_answer(emulator):
    client = CountingClient(AtlasSettings(url=emulator.url, username="admin", password="admin"))
    typedefs.install_types(client)
    client.search_typedefs = lambda **filters: {}  # as if the filter matched nothing
    client.calls.clear()
    report = typedefs.install_types(client)
    assert not report.created and not report.updated  # found by name, nothing re-created
    assert len([c for c in client.calls if "/types/typedef/name/" in c[1]]) > 10
