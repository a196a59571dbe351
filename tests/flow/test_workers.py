"""Scale-out as operations run it: a Prefect deployment on a process work pool, executed by a real worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from flows.register import register
from tests.conftest import ROOT, write_metadata

pytestmark = pytest.mark.slow


def test_worker_runs_a_registered_deployment(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client):
    from prefect.deployments import run_deployment

    write_metadata(example_repo, model_name="worker-model")
    deployment_id = register("modelgov-test", name="nightly", cron="0 3 * * *",
                             parameters={"registry": f"file://{tmp_path / 'registry'}", "atlas_url": atlas.url})
    assert deployment_id
    flow_run = run_deployment("deploy-model/nightly", timeout=0,
                              parameters={"source": str(example_repo), "target": mlserver.target_uri()})
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
           "PREFECT_WORKER_QUERY_SECONDS": "1"}
    worker = subprocess.run([sys.executable, "-m", "prefect", "worker", "start", "--pool", "modelgov-test",
                             "--run-once"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stdout[-2000:] + worker.stderr[-2000:]

    from prefect import get_client

    with get_client(sync_client=True) as client:
        finished = client.read_flow_run(flow_run.id)
        deployment = client.read_deployment(deployment_id)
    assert finished.state.is_completed(), finished.state
    assert deployment.schedules and deployment.schedules[0].schedule.cron == "0 3 * * *"
    found = list(atlas_client.search_basic({"typeName": "modelgov_model_deployment", "attributes":
                                            ["orchestratorRunId", "status"],
                                            "entityFilters": {"attributeName": "modelName", "operator": "=",
                                                              "attributeValue": "worker-model"}}))
    assert [(h["attributes"]["orchestratorRunId"], h["attributes"]["status"]) for h in found] == [
        (str(flow_run.id), "deployed")]
