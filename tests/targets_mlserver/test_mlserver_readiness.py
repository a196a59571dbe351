"""A model slower to become ready than the target's ready_timeout: the error says how long it waited, and the
half-installed version is taken back. An HTTP edge case, so a stub MLServer answers here."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from governance.errors import TargetDeadlineExceeded
from governance.targets import get_target
from tests.targets_mlserver.test_mlserver_target import release_for


class _NeverReady(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append(("POST", self.path))  # type: ignore[attr-defined]
        self._answer(200, [] if self.path == "/v2/repository/index" else {})

    def do_GET(self) -> None:  # noqa: N802
        self.server.calls.append(("GET", self.path))  # type: ignore[attr-defined]
        self._answer(404, {"error": "Model not found"})


@pytest.fixture
def never_ready():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NeverReady)
    server.calls = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_ready_timeout_error_says_how_long_it_waited(never_ready, example_repo, tmp_path):
    models = tmp_path / "models"
    target = get_target(f"mlserver://127.0.0.1:{never_ready.server_port}?repository={models}&ready_timeout=1")
    release, _ = release_for(example_repo, tmp_path / "reg")
    with pytest.raises(TargetDeadlineExceeded, match=r"iris-classifier version 1000000 not ready after waiting [12]s "
                                          r"\(ready_timeout 1s; last HTTP 404\)"):
        target.deploy(release)
    assert not (models / "iris-classifier" / "1000000").exists()  # the attempt was taken back
    assert ("POST", "/v2/repository/models/iris-classifier/unload") in never_ready.calls
