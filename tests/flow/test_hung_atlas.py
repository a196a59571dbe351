"""A hung Atlas (accepts connections, never answers) fails every command within its configured deadline."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.errors import AtlasUnavailable
from tests.conftest import ROOT

pytestmark = pytest.mark.slow
DEADLINE = 4


@pytest.fixture
def hung_atlas():
    """A listener that accepts every connection and holds it open without a byte of answer."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def _modelgov(*args: str, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "governance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MODELGOV_ATLAS_DEADLINE": str(DEADLINE), **env})
    return proc, time.monotonic() - start


def test_client_gives_up_at_its_deadline(hung_atlas):
    client = AtlasClient(AtlasSettings(url=hung_atlas, deadline=1.5))
    start = time.monotonic()
    with pytest.raises(AtlasUnavailable, match=rf"{hung_atlas} did not answer GET /admin/status.*deadline"):
        client.status()
    assert time.monotonic() - start < 3


def test_search_fails_within_the_deadline(hung_atlas):
    proc, elapsed = _modelgov("search", "--atlas", hung_atlas, env={})
    assert proc.returncode == 1
    assert f"Atlas at {hung_atlas} did not answer" in proc.stderr
    assert f"deadline for one Atlas operation is {DEADLINE} s" in proc.stderr
    assert elapsed < DEADLINE + 10  # interpreter start-up included; unbounded before (100 s and counting)


def test_deploy_preflight_fails_within_the_deadline(hung_atlas, prefect_api, example_repo, tmp_path):
    proc, elapsed = _modelgov("deploy", str(example_repo), "--target", "mlserver://127.0.0.1:9?repository=/x",
                              "--registry", f"file://{tmp_path / 'registry'}", "--atlas", hung_atlas,
                              env={"PREFECT_API_URL": prefect_api})
    assert proc.returncode == 1
    assert "preflight step failed" in proc.stderr and "did not answer" in proc.stderr
    assert not (tmp_path / "registry").exists()  # nothing written
    # Prefect client start-up included; per-read timeouts times retries would be 4 x 60 s and more
    assert elapsed < 90
