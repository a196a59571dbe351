"""Fixtures for serving-target tests: releases built the real way (validate -> publish), the MLeap stand-in,
a fake kubectl, and a tiny V2 inference stub."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from emulators.mleap import MleapServingEmulator, write_linear_regression_bundle
from governance.registries.file import FileRegistry
from governance.staging.validate import validate_repo
from governance.targets.base import Release

FAKES = Path(__file__).parent / "fakes"
FEATURES = ["bathrooms", "bedrooms"]
COEFFICIENTS = [2.0, 3.0]
INTERCEPT = 1.0


def leapframe(rows: list[list[float]]) -> dict:
    return {"schema": {"fields": [{"name": f, "type": "double"} for f in FEATURES]}, "rows": rows}


def make_release(tmp_path: Path, *, name: str = "price-model", version: str = "1.2", executable: bytes | None = None,
                 exe_name: str = "model.zip", framework: str | None = None, request=None, response=None,
                 registry_dir: Path | None = None) -> Release:
    """Stage a repo folder, validate it, publish it to a FileRegistry and wrap it as a Release."""
    stage = tmp_path / f"stage-{name}-{version}"
    (stage / "executable").mkdir(parents=True)
    if executable is None:
        write_linear_regression_bundle(stage / "executable" / exe_name, FEATURES, COEFFICIENTS, INTERCEPT)
    else:
        (stage / "executable" / exe_name).write_bytes(executable)
    lines = [f"model.name={name}", f"model.version={version}", "model.type=regression", "model.owner=ana",
             "model.owner.lob=retail", "model.description=predicts prices"]
    if framework:
        lines.append(f"model.framework={framework}")
    (stage / "metadata.txt").write_text("\n".join(lines) + "\n")
    (stage / "README.md").write_text("# price model\n")
    if request is not None:
        (stage / "examples").mkdir()
        (stage / "examples" / "request.json").write_text(json.dumps(request))
        if response is not None:
            (stage / "examples" / "response.json").write_text(json.dumps(response))
    staged = validate_repo(stage)
    registry = FileRegistry(f"file://{registry_dir or tmp_path / 'registry'}")
    version_ = registry.publish(staged)
    return Release(metadata=staged.metadata, registered=version_, registry=registry,
                   example_request=staged.example_request, example_response=staged.example_response)


def as_remote(release: Release, location: str) -> Release:
    """The same release as if its registry were remote (KServe only reads the location)."""
    registered = dataclasses.replace(release.registered, location=location,
                                     registry_uri=location.rsplit("/", 2)[0])
    return dataclasses.replace(release, registered=registered)


@pytest.fixture
def mleap_server() -> Iterator[MleapServingEmulator]:
    emulator = MleapServingEmulator(host="127.0.0.1", port=0).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@dataclasses.dataclass
class FakeKubectl:
    log: Path
    state: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def set(self, **env: str | int) -> None:
        for key, value in env.items():
            self.monkeypatch.setenv(f"FAKE_KUBECTL_{key.upper()}", str(value))


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    monkeypatch.setenv("MODELGOV_KUBECTL", str(FAKES / "kubectl"))
    # the fake's shebang is `env python3`: let it find this interpreter (which has pyyaml)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    fake = FakeKubectl(tmp_path / "kubectl.jsonl", tmp_path / "kubectl-state.json", monkeypatch)
    monkeypatch.setenv("FAKE_KUBECTL_LOG", str(fake.log))
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(fake.state))
    for key in ("READY_AFTER", "MODE", "URL", "CONTEXTS", "FAIL_FIRST"):
        monkeypatch.delenv(f"FAKE_KUBECTL_{key}", raising=False)
    return fake


class _V2Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append((self.path, body))  # type: ignore[attr-defined]
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v2", "models"] or parts[3] != "infer":
            data, status = b'{"error":"Not Found"}', 404
        else:
            rows = body["inputs"][0]["data"]
            preds = [sum(c * x for c, x in zip(COEFFICIENTS, row, strict=True)) + INTERCEPT for row in rows]
            data = json.dumps({"model_name": parts[2], "model_version": "v1", "id": "abc", "parameters": {},
                               "outputs": [{"name": "predict", "shape": [len(preds), 1], "datatype": "FP64",
                                            "data": preds}]}).encode()
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def v2_stub() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V2Handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
