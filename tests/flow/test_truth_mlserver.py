"""The invariant on a real MLServer, through the flow: Atlas's ``deployed`` records for a model on the target
are exactly the versions MLServer itself reports serving, after replacements, failures and redeploys."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from flows.deploy_model import deploy_model
from governance.errors import StepFailed
from governance.targets.mlserver import MLServerTarget
from tests.conftest import EXAMPLE, ROOT, write_metadata
from tests.flow.conftest import model_name_for

pytestmark = pytest.mark.slow


def stage(tmp_path: Path, name: str, version: str, executable: bytes | None = None) -> Path:
    repo = tmp_path / f"stage-{name}-{version}-{len(list(tmp_path.glob('stage-*')))}"
    shutil.copytree(EXAMPLE, repo)
    write_metadata(repo, model_name=name, model_version=version)
    if executable is not None:
        (repo / "executable" / "model.joblib").write_bytes(executable)
    return repo


def deploy(repo: Path, target: str, registry: Path, atlas) -> dict:
    return deploy_model(source=str(repo), target=target, registry=f"file://{registry}", atlas_url=atlas.url)


def served(mlserver, name: str) -> dict[str, str | None]:
    """{dotted version: sha256} as MLServer reports it (index + per-version readiness)."""
    return {m.version: m.sha256 for m in MLServerTarget(mlserver.target_uri()).served(name)}


def recorded(atlas_client, name: str, host: str) -> dict[str, list[dict]]:
    """Atlas's deployment records of the model on the target, by status."""
    params = {"typeName": "modelgov_model_deployment", "excludeDeletedEntities": True,
              "entityFilters": {"condition": "AND", "criterion": [
                  {"attributeName": "modelName", "operator": "=", "attributeValue": name},
                  {"attributeName": "targetDetail", "operator": "=", "attributeValue": host}]},
              "attributes": ["status", "outcome", "modelVersion", "failureReason", "stoppedTime"]}
    out: dict[str, list[dict]] = {}
    for header in atlas_client.search_basic(params):
        out.setdefault(header["attributes"]["status"], []).append(header["attributes"])
    return out


def assert_invariant(mlserver, atlas_client, name: str) -> dict[str, str | None]:
    host = f"{mlserver.host}:{mlserver.http_port}"
    now_served = served(mlserver, name)
    deployed = [r["modelVersion"] for r in recorded(atlas_client, name, host).get("deployed", [])]
    assert sorted(deployed) == sorted(now_served), (deployed, now_served)
    assert not recorded(atlas_client, name, host).get("deploying")
    return now_served


def predict(mlserver, name: str, version: str) -> list:
    request = (EXAMPLE / "examples" / "request.json").read_text()
    resp = requests.post(f"{mlserver.url}/v2/models/{name}/versions/{version}/infer", data=request,
                         headers={"Content-Type": "application/json"}, timeout=30)
    resp.raise_for_status()
    return resp.json()["outputs"][0]["data"]


def test_v2_replaces_v1_and_v1_is_recorded_stopped(prefect_api, tmp_path, mlserver, atlas_server, request):
    """Superseding, on the emulator and on the session's real Atlas (shared: a model name per server)."""
    from governance.atlas.client import AtlasClient, AtlasSettings

    atlas = atlas_server
    atlas_client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
    request.addfinalizer(atlas_client.close)
    name = model_name_for(request, "truth-replace")
    first = deploy(stage(tmp_path, name, "1.0"), mlserver.target_uri(), tmp_path / "reg", atlas)
    assert assert_invariant(mlserver, atlas_client, name).keys() == {"1.0"}
    second = deploy(stage(tmp_path, name, "2.0"), mlserver.target_uri(), tmp_path / "reg", atlas)
    assert assert_invariant(mlserver, atlas_client, name).keys() == {"2.0"}
    assert second["superseded"] == [first["atlas"]["deployment"]["qualifiedName"]]
    [old] = recorded(atlas_client, name, f"{mlserver.host}:{mlserver.http_port}")["stopped"]
    assert (old["modelVersion"], old["outcome"]) == ("1.0", "succeeded") and old["stoppedTime"]


def test_keep_previous_keeps_both_versions_serving_and_deployed(prefect_api, tmp_path, mlserver, atlas,
                                                                atlas_client):
    name = "truth-keep"
    target = mlserver.target_uri() + "&keep_previous=true"
    deploy(stage(tmp_path, name, "1.0"), target, tmp_path / "reg", atlas)
    second = deploy(stage(tmp_path, name, "2.0"), target, tmp_path / "reg", atlas)
    assert assert_invariant(mlserver, atlas_client, name).keys() == {"1.0", "2.0"}
    assert second["superseded"] == []  # v1 still serves, so its record stays deployed
    assert predict(mlserver, name, "1000000") == predict(mlserver, name, "2000000") == [0, 2]


def test_same_version_with_other_bytes_from_another_registry_is_refused_and_the_old_copy_serves(
        prefect_api, tmp_path, mlserver, atlas, atlas_client, constant_model):
    """Issue 20: the record is the reference. The same name and version with other bytes (a model answering
    [1, 1]) from a second registry used to reach the target and fail only its smoke test; now it is refused
    before the second registry or the target is touched, and the first record stays as it was."""
    name = "truth-same-version"
    first = deploy(stage(tmp_path, name, "1.0"), mlserver.target_uri(), tmp_path / "reg-a", atlas)
    before = served(mlserver, name)
    with pytest.raises(StepFailed) as info:
        deploy(stage(tmp_path, name, "1.0", constant_model), mlserver.target_uri(), tmp_path / "reg-b", atlas)
    assert info.value.step == "preflight" and "not the version Atlas recorded" in str(info.value.cause)
    assert not (tmp_path / "reg-b" / name).exists()
    assert served(mlserver, name) == before  # same version, the original bytes
    assert predict(mlserver, name, "1000000") == [0, 2]
    assert assert_invariant(mlserver, atlas_client, name).keys() == {"1.0"}
    records = recorded(atlas_client, name, f"{mlserver.host}:{mlserver.http_port}")
    assert not records.get("stopped")
    [kept] = records["deployed"]
    assert kept["modelVersion"] == "1.0" and first["status"] == "deployed"
    assert not list((mlserver.repository / name).glob(".*"))  # no backup or temp folder left


def test_failed_load_of_v3_leaves_v2_serving_and_deployed(prefect_api, tmp_path, mlserver, atlas, atlas_client):
    name = "truth-failed-load"
    deploy(stage(tmp_path, name, "2.0"), mlserver.target_uri(), tmp_path / "reg", atlas)
    before = served(mlserver, name)
    with pytest.raises(StepFailed) as info:
        deploy(stage(tmp_path, name, "3.0", b"not a model"), mlserver.target_uri(), tmp_path / "reg", atlas)
    assert info.value.step == "deploy" and "failed to load" in str(info.value.cause)
    assert served(mlserver, name) == before
    assert predict(mlserver, name, "2000000") == [0, 2]
    assert not (mlserver.repository / name / "3000000").exists()
    assert assert_invariant(mlserver, atlas_client, name).keys() == {"2.0"}
    [failed] = recorded(atlas_client, name, f"{mlserver.host}:{mlserver.http_port}")["stopped"]
    assert (failed["modelVersion"], failed["outcome"]) == ("3.0", "failed")
    assert "HTTP 500" in failed["failureReason"]


@pytest.mark.timeout(900)  # four CLI processes (Python + Prefect start-up each) on a shared 2-core machine
def test_four_concurrent_cli_deploys_leave_one_deployed_record_equal_to_what_serves(
        prefect_api, tmp_path, mlserver, atlas, atlas_client):
    """Four `modelgov deploy` processes of different versions, forced to contend: the test holds the target's
    deploy lock until all four are waiting for it, then lets them go."""
    import fcntl
    import os
    import sys
    import time

    name = "truth-race"
    # the library's own lock is what this test forces (the Prefect limit per target is tested on its own)
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
           "MODELGOV_PREFECT_TARGET_LIMIT": "off"}
    lock = (mlserver.repository / ".modelgov-deploy.lock").open("a+")
    fcntl.flock(lock, fcntl.LOCK_EX)
    procs = []
    try:
        for version in ("1.0", "2.0", "3.0", "4.0"):
            repo = stage(tmp_path, name, version)
            err = (tmp_path / f"deploy-{version}.err").open("w")
            out = (tmp_path / f"deploy-{version}.out").open("w")
            procs.append((version, subprocess.Popen(
                [sys.executable, "-m", "governance", "deploy", str(repo), "--target", mlserver.target_uri(),
                 "--registry", f"file://{tmp_path / 'reg'}", "--atlas", atlas.url, "--json"],
                cwd=ROOT, env=env, stdout=out, stderr=err), tmp_path / f"deploy-{version}.err"))
        deadline = time.monotonic() + 240
        while not all("waiting for the deploy lock" in p.read_text() for _, _, p in procs):
            assert time.monotonic() < deadline, [p.read_text()[-2000:] for _, _, p in procs]
            assert all(proc.poll() is None for _, proc, _ in procs), [p.read_text()[-2000:] for _, _, p in procs]
            time.sleep(0.5)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    for version, proc, err in procs:
        assert proc.wait(timeout=300) == 0, (version, err.read_text()[-3000:])

    now_served = assert_invariant(mlserver, atlas_client, name)
    assert len(now_served) == 1  # keep_previous is off: one version serves, and exactly it is deployed
    records = recorded(atlas_client, name, f"{mlserver.host}:{mlserver.http_port}")
    assert len(records["deployed"]) == 1 and len(records["stopped"]) == 3
    assert all(r["outcome"] == "succeeded" and r["stoppedTime"] for r in records["stopped"])
