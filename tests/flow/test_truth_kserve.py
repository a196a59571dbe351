"""The invariant on KServe (the stateful fake kubectl keeps InferenceServices and their revisions across calls,
as the API server does), through the flow and the CLI: Atlas's ``deployed`` records for a model on the target
are exactly the versions receiving traffic, after canaries, promotion, failures, SIGTERM and kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.deploy_model import deploy_model
from governance.errors import StepFailed
from governance.targets.kserve import KServeTarget
from tests.conftest import EXAMPLE, ROOT, write_metadata

pytestmark = pytest.mark.slow
TARGET = "kserve://models?context=prod&poll_interval=0.05"
HOST = "prod/models"


@pytest.fixture
def kserve_env(fake_kubectl, webhdfs, atlas):
    fake_kubectl.set(ready_after=2, url="http://127.0.0.1:9")  # nothing listens: the smoke test is skipped
    return {"registry": f"hdfs://127.0.0.1:{webhdfs.url.rsplit(':', 1)[1]}/registry", "fake": fake_kubectl}


def stage(tmp_path: Path, name: str, version: str) -> Path:
    repo = tmp_path / f"stage-{name}-{version}-{len(list(tmp_path.glob('stage-*')))}"
    shutil.copytree(EXAMPLE, repo)
    write_metadata(repo, model_name=name, model_version=version)
    return repo


def served(name: str) -> dict[str, int | None]:
    """{version: traffic percent} as the cluster reports it."""
    return {m.version: m.traffic_percent for m in KServeTarget(TARGET).served(name)}


def isvcs() -> list[dict]:
    proc = subprocess.run([os.environ["MODELGOV_KUBECTL"], "--context", "prod", "-n", "models", "get",
                           "inferenceservices", "-l", "app.kubernetes.io/managed-by=modelgov", "-o", "json"],
                          capture_output=True, text=True, check=True, timeout=30)
    return json.loads(proc.stdout)["items"]


def recorded(atlas_client, name: str) -> dict[str, list[dict]]:
    params = {"typeName": "modelgov_model_deployment", "excludeDeletedEntities": True,
              "entityFilters": {"condition": "AND", "criterion": [
                  {"attributeName": "modelName", "operator": "=", "attributeValue": name},
                  {"attributeName": "targetDetail", "operator": "=", "attributeValue": HOST}]},
              "attributes": ["status", "outcome", "modelVersion", "failureReason", "stoppedTime",
                             "orchestratorRunId"]}
    out: dict[str, list[dict]] = {}
    for header in atlas_client.search_basic(params):
        out.setdefault(header["attributes"]["status"], []).append(header["attributes"])
    return out


def assert_invariant(atlas_client, name: str) -> dict[str, int | None]:
    now_served = served(name)
    records = recorded(atlas_client, name)
    assert sorted(r["modelVersion"] for r in records.get("deployed", [])) == sorted(now_served), (records,
                                                                                                 now_served)
    assert not records.get("deploying")
    return now_served


def test_canary_keeps_both_versions_deployed_until_promotion(prefect_api, tmp_path, kserve_env, atlas,
                                                             atlas_client):
    name = "truth-canary"
    deploy_model(source=str(stage(tmp_path, name, "1.0")), target=TARGET, registry=kserve_env["registry"],
                 atlas_url=atlas.url)
    assert assert_invariant(atlas_client, name) == {"1.0": 100}

    canary = deploy_model(source=str(stage(tmp_path, name, "2.0")), target=TARGET + "&canary_percent=20",
                          registry=kserve_env["registry"], atlas_url=atlas.url)
    assert canary["superseded"] == []
    assert assert_invariant(atlas_client, name) == {"1.0": 80, "2.0": 20}
    [isvc] = isvcs()  # one InferenceService per model, updated in place
    assert isvc["metadata"]["name"] == name and isvc["spec"]["predictor"]["canaryTrafficPercent"] == 20

    promoted = deploy_model(source=str(stage(tmp_path, name, "2.0")), target=TARGET,
                            registry=kserve_env["registry"], atlas_url=atlas.url)
    assert promoted["status"] == "deployed"  # a full deploy of the canary's version is not a no-op
    assert assert_invariant(atlas_client, name) == {"2.0": 100}
    records = recorded(atlas_client, name)
    assert len(records["deployed"]) == 1
    assert sorted(r["modelVersion"] for r in records["stopped"]) == ["1.0", "2.0"]  # v1, and the canary record
    assert all(r["outcome"] == "succeeded" and r["stoppedTime"] for r in records["stopped"])
    [isvc] = isvcs()
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]


def test_failed_load_of_v3_leaves_v2_serving_and_the_isvc_restored(prefect_api, tmp_path, kserve_env, atlas,
                                                                   atlas_client):
    name = "truth-kserve-fail"
    deploy_model(source=str(stage(tmp_path, name, "2.0")), target=TARGET, registry=kserve_env["registry"],
                 atlas_url=atlas.url)
    kserve_env["fake"].set(fail_storage=f"/{name}/3.0/")
    with pytest.raises(StepFailed) as info:
        deploy_model(source=str(stage(tmp_path, name, "3.0")), target=TARGET, registry=kserve_env["registry"],
                     atlas_url=atlas.url)
    assert info.value.step == "deploy" and "failed to load the model" in str(info.value.cause)
    assert assert_invariant(atlas_client, name) == {"2.0": 100}
    [isvc] = isvcs()
    assert isvc["metadata"]["annotations"]["modelgov.io/model-version"] == "2.0"  # the spec was put back
    assert f"/{name}/2.0/" in isvc["spec"]["predictor"]["model"]["storageUri"]
    [failed] = recorded(atlas_client, name)["stopped"]
    assert (failed["modelVersion"], failed["outcome"]) == ("3.0", "failed")
    assert "failed to load the model" in failed["failureReason"]


def cli_deploy(repo: Path | list[Path], registry: str, atlas, prefect_api: str, log: Path,
               **env: str) -> subprocess.Popen:
    environment = {**os.environ, "PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin",
                   "ATLAS_PASSWORD": "admin", **env}
    repos = [str(r) for r in (repo if isinstance(repo, list) else [repo])]
    return subprocess.Popen([sys.executable, "-m", "governance", "deploy", *repos, "--target", TARGET,
                             "--registry", registry, "--atlas", atlas.url, "--json"], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def wait_for_rollout(atlas_client, name: str, version: str, proc: subprocess.Popen, log: Path) -> None:
    """Until the run has recorded its intent and applied the new version (which never becomes ready)."""
    deadline = time.monotonic() + 240
    while True:
        deploying = [r for r in recorded(atlas_client, name).get("deploying", []) if r["modelVersion"] == version]
        applied = any(i["metadata"]["annotations"]["modelgov.io/model-version"] == version for i in isvcs())
        if deploying and applied:
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


@pytest.mark.timeout(600)
def test_sigterm_during_a_rollout_restores_the_target_and_records_interrupted(prefect_api, tmp_path, kserve_env,
                                                                              atlas, atlas_client):
    name = "truth-sigterm"
    deploy_model(source=str(stage(tmp_path, name, "1.0")), target=TARGET, registry=kserve_env["registry"],
                 atlas_url=atlas.url)
    log = tmp_path / "deploy-2.0.err"
    proc = cli_deploy(stage(tmp_path, name, "2.0"), kserve_env["registry"], atlas, prefect_api, log,
                      FAKE_KUBECTL_NEVER_STORAGE=f"/{name}/2.0/")
    wait_for_rollout(atlas_client, name, "2.0", proc, log)
    assert served(name) == {"1.0": 100}  # the old revision keeps the traffic while the new one is not ready
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, log.read_text()[-3000:]
    assert "deploy step failed: interrupted" in log.read_text()
    assert json.loads(stdout)["failure"] == "interrupted"

    assert assert_invariant(atlas_client, name) == {"1.0": 100}
    [isvc] = isvcs()
    assert isvc["metadata"]["annotations"]["modelgov.io/model-version"] == "1.0"  # put back as it was
    [failed] = recorded(atlas_client, name)["stopped"]
    assert (failed["modelVersion"], failed["outcome"], failed["failureReason"]) == ("2.0", "failed", "interrupted")
    assert flow_run_state(prefect_api, failed["orchestratorRunId"]) in ("FAILED", "CRASHED", "CANCELLED")


@pytest.mark.timeout(600)
def test_sigterm_during_a_batch_puts_back_the_rollout_on_its_thread_and_starts_nothing_else(
        prefect_api, tmp_path, kserve_env, atlas, atlas_client):
    """Issue 20: a batch's deploys run on worker threads, which never see a signal; before, a SIGTERM killed the
    process with the running rollout half done (its spec applied, its record left 'deploying'). Now the batch
    forwards it: the running deploy puts its InferenceService back and is recorded interrupted, the model
    waiting behind it never starts."""
    names = ["truth-batch-a", "truth-batch-b"]
    for name in names:
        deploy_model(source=str(stage(tmp_path, name, "1.0")), target=TARGET, registry=kserve_env["registry"],
                     atlas_url=atlas.url)
    log = tmp_path / "batch.err"
    proc = cli_deploy([stage(tmp_path, name, "2.0") for name in names], kserve_env["registry"], atlas, prefect_api,
                      log, FAKE_KUBECTL_NEVER_STORAGE="/2.0/")
    deadline = time.monotonic() + 240
    while not any(r["modelVersion"] == "2.0" for n in names for r in recorded(atlas_client, n).get("deploying", [])
                  ) or not any(i["metadata"]["annotations"]["modelgov.io/model-version"] == "2.0" for i in isvcs()):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=180)
    assert proc.returncode == 1, log.read_text()[-3000:]
    assert "stopping the batch" in log.read_text()

    assert sorted(i["metadata"]["annotations"]["modelgov.io/model-version"] for i in isvcs()) == ["1.0", "1.0"]
    interrupted = []
    for name in names:
        assert assert_invariant(atlas_client, name) == {"1.0": 100}  # no record left 'deploying'
        interrupted += [(r["modelVersion"], r["outcome"], r["failureReason"])
                        for r in recorded(atlas_client, name).get("stopped", [])]
    assert interrupted == [("2.0", "failed", "interrupted")]  # the one that ran; the other never reached Atlas


@pytest.mark.timeout(600)
def test_a_killed_runs_deploying_record_is_settled_by_the_next_deploy(prefect_api, tmp_path, kserve_env, atlas,
                                                                      atlas_client):
    name = "truth-kill9"
    first = deploy_model(source=str(stage(tmp_path, name, "1.0")), target=TARGET, registry=kserve_env["registry"],
                         atlas_url=atlas.url)
    log = tmp_path / "deploy-2.0.err"
    proc = cli_deploy(stage(tmp_path, name, "2.0"), kserve_env["registry"], atlas, prefect_api, log,
                      FAKE_KUBECTL_NEVER_STORAGE=f"/{name}/2.0/")
    wait_for_rollout(atlas_client, name, "2.0", proc, log)
    proc.kill()
    proc.wait(timeout=60)
    assert [r["modelVersion"] for r in recorded(atlas_client, name)["deploying"]] == ["2.0"]  # left behind

    again = deploy_model(source=str(stage(tmp_path, name, "1.0")), target=TARGET, registry=kserve_env["registry"],
                         atlas_url=atlas.url)
    assert again["status"] == "unchanged"  # v1 still served all along: nothing to deploy, and no new entity
    assert again["existing_deployment"]["guid"] == first["atlas"]["deployment"]["guid"]
    assert [(s["status"], s["reason"]) for s in again["settled"]] == [("stopped", "abandoned")]
    assert assert_invariant(atlas_client, name) == {"1.0": 100}
    [abandoned] = recorded(atlas_client, name)["stopped"]
    assert (abandoned["modelVersion"], abandoned["outcome"], abandoned["failureReason"]) == ("2.0", "failed",
                                                                                           "abandoned")
    [isvc] = isvcs()  # the killed run's never-ready spec was rolled back to what serves
    assert isvc["metadata"]["annotations"]["modelgov.io/model-version"] == "1.0"


def flow_run_state(api_url: str, flow_run_id: str) -> str:
    import httpx

    resp = httpx.get(f"{api_url}/flow_runs/{flow_run_id}", timeout=30)
    resp.raise_for_status()
    return resp.json()["state"]["type"]
