"""The `modelgov` command as operators run it: a separate process, JSON on stdout, messages on stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, write_metadata
from tests.flow.conftest import model_name_for

pytestmark = pytest.mark.slow


def modelgov(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "governance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_validate_reports_every_problem_with_file_and_line(example_repo):
    write_metadata(example_repo, model_version="", model_owner=None)
    (example_repo / "executable" / "extra.pkl").write_bytes(b"x")
    proc = modelgov("validate", str(example_repo))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert "metadata.txt:2: model.version is empty" in lines
    assert "metadata.txt: model.owner is missing" in lines
    assert any(line.startswith("executable/: must hold exactly one") for line in lines)
    ok = modelgov("validate", str(ROOT / "staging_template" / "example"), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["model"]["name"] == "iris-classifier"


def test_deploy_json_then_search(prefect_api, example_repo, tmp_path, mlserver, atlas_server, request):
    """Against the emulator and the real Atlas (shared by the session: a model name per server)."""
    atlas = atlas_server
    model = model_name_for(request, "cli-model")
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    write_metadata(example_repo, model_name=model)
    proc = modelgov("deploy", str(example_repo), "--target", mlserver.target_uri(), "--registry",
                    f"file://{tmp_path / 'registry'}", "--atlas", atlas.url, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)  # stdout holds exactly one JSON object
    assert summary["status"] == "deployed"
    assert summary["model"]["name"] == model and summary["model"]["version"] == "1.0"
    assert {"path", "sha256", "size"} <= set(summary["artifacts"][0])
    assert summary["registry_uri"] == f"file://{tmp_path / 'registry'}/{model}/1.0"
    assert summary["endpoint"].startswith(mlserver.url)
    for role in ("build", "deployment"):
        assert set(summary["atlas"][role]) == {"guid", "qualifiedName", "typeName"}
    assert "admin" not in proc.stdout + proc.stderr.replace("admin/admin", "")

    deadline = time.monotonic() + 60  # a real Atlas searches its Solr index: bounded wait for the commit
    while True:
        found = modelgov("search", "--name", model, "--json", "--atlas", atlas.url, env=env)
        assert found.returncode == 0, found.stderr
        if json.loads(found.stdout) or time.monotonic() > deadline:
            break
        time.sleep(1)
    [row] = json.loads(found.stdout)
    assert row["qualifiedName"] == summary["atlas"]["deployment"]["qualifiedName"]
    assert (row["status"], row["owner"], row["targetKind"]) == ("deployed", "Ana Müller", "mlserver")
    assert row["deployedTime"].endswith("+00:00")

    text = modelgov("search", "--owner", "Nobody", "--atlas", atlas.url, env=env)
    assert text.returncode == 0 and "no deployments recorded" in text.stdout


def test_deploy_failure_names_the_step(prefect_api, example_repo, tmp_path, mlserver, atlas):
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    write_metadata(example_repo, model_name="cli-broken")
    (example_repo / "executable" / "model.joblib").write_bytes(b"garbage")
    proc = modelgov("deploy", str(example_repo), "--target", mlserver.target_uri(), "--registry",
                    f"file://{tmp_path / 'registry'}", "--atlas", atlas.url, "--json", env=env)
    assert proc.returncode == 1
    assert "modelgov deploy: deploy step failed: MLServer at" in proc.stderr
    assert json.loads(proc.stdout)["status"] == "failed"


def test_bad_credentials_and_unknown_scheme(atlas, tmp_path):
    proc = modelgov("atlas", "install-types", "--atlas", atlas.url,
                    env={"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "wrong"})
    assert proc.returncode == 1 and "rejected the credentials (HTTP 401)" in proc.stderr
    proc = modelgov("registry", "verify", "ftp://x/y", "m", "1")
    assert proc.returncode == 2 and "unknown registry scheme 'ftp'" in proc.stderr


def test_install_types_is_idempotent(atlas):
    env = {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    first = modelgov("atlas", "install-types", "--atlas", atlas.url, env=env)
    assert first.returncode == 0 and "created: modelgov_target_kind" in first.stdout
    second = modelgov("atlas", "install-types", "--atlas", atlas.url, env=env)
    assert second.returncode == 0 and "created" not in second.stdout and "unchanged" in second.stdout
    doctor = modelgov("doctor", "--atlas", atlas.url, env=env)
    assert doctor.returncode == 0, doctor.stdout
    assert "[ok] modelgov types: installed" in doctor.stdout


def test_doctor_reports_each_service_in_plain_words(atlas, tmp_path, mlserver):
    env = {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    before = modelgov("doctor", "--atlas", atlas.url, env=env)
    assert before.returncode == 1
    assert "[FAIL] modelgov types: not installed: run `modelgov atlas install-types`" in before.stdout
    assert modelgov("atlas", "install-types", "--atlas", atlas.url, env=env).returncode == 0
    good = modelgov("doctor", "--atlas", atlas.url, "--registry", f"file://{tmp_path}/reg", "--target",
                    mlserver.target_uri(), env=env)
    assert good.returncode == 0, good.stdout
    assert "[ok] atlas reachable" in good.stdout and "[ok] target: 127.0.0.1:" in good.stdout
    bad = modelgov("doctor", "--atlas", atlas.url, "--target", "mlserver://127.0.0.1:9?repository=/x",
                   env={"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "wrong"})
    assert bad.returncode == 1
    assert "[FAIL] atlas credentials:" in bad.stdout and "rejected the credentials" in bad.stdout
    assert "[FAIL] target: mlserver://127.0.0.1:9?repository=/x: MLServer at 127.0.0.1:9 is not reachable" \
        in bad.stdout


def test_deploy_refuses_a_token_in_the_source_url_before_anything_runs(tmp_path):
    proc = modelgov("deploy", "git+https://ci:tok3n-value@git.example/m.git@v1", "--target",
                    "mlserver://127.0.0.1:9?repository=/x", "--registry", f"file://{tmp_path}/r")
    assert proc.returncode == 2
    assert "contains user information" in proc.stderr and "tok3n-value" not in proc.stderr + proc.stdout
    assert "git credential helper" in proc.stderr or "credential.helper" in proc.stderr
    assert "prefect" not in proc.stderr.lower()  # refused before a flow run (and its stored parameters) existed


def test_cli_flow_runs_skip_the_heartbeat_thread_unless_asked(monkeypatch):
    """A sync flow joins its heartbeat thread at exit (up to 1 s per deploy): the CLI's foreground runs turn it
    off, and an operator who sets PREFECT_FLOWS_HEARTBEAT_FREQUENCY keeps it."""
    from prefect import flow
    from prefect.settings import get_current_settings

    from governance.cli.common import foreground_run

    @flow
    def heartbeat_setting() -> int | None:
        return get_current_settings().flows.heartbeat_frequency

    monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    with foreground_run():
        assert heartbeat_setting() is None
    assert heartbeat_setting() is not None  # outside a CLI run (workers, served deployments) Prefect's default
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    with foreground_run():
        assert heartbeat_setting() is not None
