"""Targets that accept connections and never answer (or answer one byte at a time), and a kubectl that hangs:
every target operation gives up after ``MODELGOV_TARGET_DEADLINE`` with TargetDeadlineExceeded naming the
operation, the target and the setting, and a deploy whose smoke request hangs is taken back.

Before the deadline a hung MLServer held ``modelgov undeploy`` for 3 x 60 s per readiness call, a trickling one
for ever; a hung MLeap for 4 x 60 s per call; a hung kubectl for 4 x 60 s per call."""

from __future__ import annotations

import json
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from emulators.atlas import AtlasEmulator
from governance.cli.main import main
from governance.errors import TargetDeadlineExceeded
from governance.targets import get_target
from tests.silent_server import silent_server, trickling_server
from tests.targets_mlserver.test_mlserver_readiness import _NeverReady
from tests.targets_mlserver.test_mlserver_target import release_for

DEADLINE = 2.0
MARGIN = 10.0


@pytest.fixture
def deadline(monkeypatch):
    monkeypatch.setenv("MODELGOV_TARGET_DEADLINE", str(DEADLINE))


def _undeploy(target: str, atlas: AtlasEmulator) -> tuple[int, float]:
    start = time.monotonic()
    code = main(["undeploy", "m", "--target", target, "--reason", "retired", "--atlas", atlas.url])
    return code, time.monotonic() - start


@pytest.mark.parametrize("server", [silent_server, trickling_server], ids=["hung", "trickling"])
def test_undeploy_from_a_hung_mlserver_gives_up_at_the_deadline(deadline, atlas, server, tmp_path, capsys):
    repository = tmp_path / "models"
    (repository / "m" / "1").mkdir(parents=True)
    (repository / "m" / "1" / "model-settings.json").write_text(json.dumps({"name": "m"}))
    with server() as mlserver:
        code, took = _undeploy(f"mlserver://127.0.0.1:{mlserver.port}?repository={repository}", atlas)
    err = capsys.readouterr().err
    assert code != 0 and took < MARGIN, f"exit {code}, took {took:.1f} s"
    assert "deadline of 2 s" in err and f"127.0.0.1:{mlserver.port}" in err and "MODELGOV_TARGET_DEADLINE" in err
    assert (repository / "m" / "1" / "model-settings.json").is_file()  # nothing taken away on a guess


def test_undeploy_from_a_hung_mleap_gives_up_at_the_deadline(deadline, atlas, tmp_path, capsys):
    with silent_server() as mleap:
        code, took = _undeploy(f"mleap://127.0.0.1:{mleap.port}?bundle_dir={tmp_path}", atlas)
        assert mleap.accepted <= 4  # the session's retries, each under the one clock
    err = capsys.readouterr().err
    assert code != 0 and took < MARGIN, f"exit {code}, took {took:.1f} s"
    assert "mleap GET /model" in err and "deadline of 2 s" in err and "MODELGOV_TARGET_DEADLINE" in err


def test_undeploy_with_a_hung_kubectl_gives_up_at_the_deadline(deadline, atlas, tmp_path, monkeypatch, capsys):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text("#!/bin/sh\nexec sleep 600\n")
    kubectl.chmod(0o755)
    monkeypatch.setenv("MODELGOV_KUBECTL", str(kubectl))
    code, took = _undeploy("kserve://models?context=prod", atlas)
    err = capsys.readouterr().err
    assert code != 0 and took < MARGIN, f"exit {code}, took {took:.1f} s"
    assert "kubectl get inferenceservices" in err and "prod/models" in err and "MODELGOV_TARGET_DEADLINE" in err


class _HangsOnInfer(_NeverReady):
    """An MLServer that loads and reports ready at once, then never answers the smoke inference."""

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.calls.append(("POST", self.path))  # type: ignore[attr-defined]
        if self.path.endswith("/infer"):
            self.server.release.wait(30)  # type: ignore[attr-defined]
            return
        self._answer(200, {})

    def do_GET(self) -> None:  # noqa: N802
        self._answer(200, {})


@pytest.fixture
def hangs_on_infer():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HangsOnInfer)
    server.calls, server.release = [], threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.release.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_a_hung_smoke_request_is_cut_at_the_deadline_and_the_deploy_taken_back(deadline, hangs_on_infer,
                                                                            example_repo, tmp_path):
    models = tmp_path / "models"
    target = get_target(f"mlserver://127.0.0.1:{hangs_on_infer.server_port}?repository={models}")
    release, _ = release_for(example_repo, tmp_path / "reg")
    start = time.monotonic()
    with pytest.raises(TargetDeadlineExceeded, match=r"MLServer POST /v2/models/iris-classifier/versions/"
                                                     r"1000000/infer at 127\.0\.0\.1:\d+: no answer within the "
                                                     r"deadline of 2 s") as info:
        target.deploy(release)
    assert time.monotonic() - start < MARGIN
    assert info.value.deadline == DEADLINE
    assert not (models / "iris-classifier" / "1000000").exists()  # the unproven version was taken back
    assert ("POST", "/v2/repository/models/iris-classifier/unload") in hangs_on_infer.calls


def test_a_bad_deadline_setting_is_a_usage_error(monkeypatch, atlas, tmp_path, capsys):
    monkeypatch.setenv("MODELGOV_TARGET_DEADLINE", "soon")
    code = main(["undeploy", "m", "--target", f"mlserver://127.0.0.1:1?repository={tmp_path}", "--reason", "r",
                 "--atlas", atlas.url])
    assert code == 2 and "MODELGOV_TARGET_DEADLINE" in capsys.readouterr().err
