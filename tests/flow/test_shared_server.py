"""Operations at scale: a shared Prefect server on PostgreSQL, deployments registered with flows.register,
two process workers sharing the runs, names from modelgov.yaml resolved on the workers, a report per run."""

from __future__ import annotations

import re
import shutil

import pytest

from flows.register import register
from tests.conftest import write_metadata
from tests.flow.workers import artifacts_of, process_workers, wait_for_runs, wait_for_workers, which_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # real servers on a shared 2-core box


def test_two_workers_share_named_runs_on_postgres(on_prefect_server, prefect_server, example_repo, tmp_path,
                                                  mlserver, atlas, atlas_client):
    from prefect.deployments import run_deployment

    assert prefect_server["database_url"].startswith("postgresql+asyncpg://")
    config = tmp_path / "modelgov.yaml"
    config.write_text(f"""
atlas: {{url: "{atlas.url}", namespace: shared-ops}}
registries: {{shared-reg: "file://{tmp_path / 'registry'}"}}
targets:
  mlserver-shared: {{uri: "{mlserver.target_uri()}", environment: staging}}
""")
    register("modelgov-shared", name="ops")
    register("modelgov-shared", name="nightly", cron="0 3 * * *",
             parameters={"source": str(example_repo), "target": "mlserver-shared", "registry": "shared-reg"})
    register("modelgov-shared", name="every-30-min", cron="*/30 * * * *", flow_name="reconcile",
             parameters={"targets": ["mlserver-shared"]})
    sources = []
    for i in range(4):
        repo = shutil.copytree(example_repo, tmp_path / f"staged-{i}")
        write_metadata(repo, model_name=f"shared-{i}")
        sources.append(str(repo))

    # one run at a time per worker, both polling before the runs exist: each run takes seconds and a worker
    # polls every second, so the second run cannot wait for the first worker (it did at high load with limit 2)
    with process_workers(on_prefect_server, "modelgov-shared", ["w1", "w2"], tmp_path, limit=1,
                         env={"MODELGOV_CONFIG": str(config)}) as logs:
        wait_for_workers("modelgov-shared", ["w1", "w2"])
        runs = [run_deployment("deploy-model/ops", timeout=0, parameters={
            "source": src, "target": "mlserver-shared", "registry": "shared-reg"}) for src in sources]
        finished = wait_for_runs([r.id for r in runs])
        # the scheduled reconcile, run now on the same workers: the four deploys left nothing to fix
        reconciled = run_deployment("reconcile/every-30-min", timeout=0)
        [reconcile_run] = wait_for_runs([reconciled.id])

    assert [r.state.type.value for r in finished] == ["COMPLETED"] * 4, [r.state for r in finished]
    assert reconcile_run.state.is_completed(), reconcile_run.state
    from prefect import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("reconcile/every-30-min")
    assert deployment.schedules[0].schedule.cron == "*/30 * * * *"
    [report] = [a for a in artifacts_of(reconciled.id) if a.type == "markdown"]
    assert report.data.startswith("# Reconcile:")
    rows = [line.split("|")[1:-1] for line in report.data.splitlines() if line.startswith("| mlserver://")]
    assert not [r for r in rows if r[2].strip().startswith("shared-")], rows  # governed and served as recorded
    ran_by = {str(r.id): which_worker(r.id, logs) for r in runs}
    assert set(ran_by.values()) == {"w1", "w2"}, ran_by

    for i, run in enumerate(runs):
        hits = list(atlas_client.search_basic({
            "typeName": "modelgov_model_deployment", "attributes": ["orchestratorRunId", "status"],
            "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": f"shared-{i}"}}))
        assert [(h["attributes"]["orchestratorRunId"], h["attributes"]["status"]) for h in hits] == [
            (str(run.id), "deployed")]
        assert hits[0]["attributes"]["qualifiedName"].endswith("@shared-ops")  # the configured namespace
        [artifact] = [a for a in artifacts_of(run.id) if a.type == "markdown"]
        assert artifact.key == f"deploy-shared-{i}"
        assert f"shared-{i} 1.0: deployed" in artifact.data
        assert f"mlserver://{mlserver.target_uri().split('://')[1].split('?')[0]}" in artifact.data
        shown = re.sub(r"\\(.)", r"\1", artifact.data)  # as rendered: values are Markdown-escaped (issue 20)
        assert f"file://{tmp_path / 'registry'}/shared-{i}/1.0" in shown
        assert hits[0]["guid"] in artifact.data  # the Atlas deployment guid
