"""Push-triggered deploys end to end on the shared Prefect server: `modelgov notify-push` (what a git hook or CI
step runs) emits modelgov.staging.pushed, the automation registered by flows.register runs deploy-model on a
worker, and the pushed commit is what gets deployed and recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from flows.register import register, register_push_trigger
from tests.conftest import write_metadata
from tests.flow.test_cli import modelgov
from tests.flow.workers import process_workers, wait_for_runs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # real servers on a shared 2-core box
POOL = "modelgov-push"


def git_repo(example_repo, tmp_path) -> tuple:
    repo = shutil.copytree(example_repo, tmp_path / "owner-repo")
    write_metadata(repo, model_name="pushed-model")
    env = {"GIT_AUTHOR_NAME": "Ana", "GIT_AUTHOR_EMAIL": "ana@example.org", "GIT_COMMITTER_NAME": "Ana",
           "GIT_COMMITTER_EMAIL": "ana@example.org", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "model v1"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env, capture_output=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                            text=True).stdout.strip()
    return repo, commit


def test_push_event_triggers_a_deploy_of_the_pushed_commit(on_prefect_server, example_repo, tmp_path, mlserver,
                                                            atlas, atlas_client):
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    repo, commit = git_repo(example_repo, tmp_path)
    config = tmp_path / "modelgov.yaml"
    config.write_text(f"""
atlas: {{url: "{atlas.url}"}}
registries: {{reg: "file://{tmp_path / 'registry'}"}}
targets: {{mlserver-push: "{mlserver.target_uri()}"}}
""")
    deployment_id = register(POOL, name="on-push", parameters={"target": "mlserver-push", "registry": "reg",
                                                               "config": str(config)})
    register_push_trigger("deploy-model/on-push")

    with process_workers(on_prefect_server, POOL, ["push-worker"], tmp_path):
        sent = modelgov("notify-push", f"git+file://{repo}", "--ref", "main", "--json",
                        env={"PREFECT_API_URL": on_prefect_server})
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout)["source"] == f"git+file://{repo}@main"
        deadline = time.monotonic() + 60
        with get_client(sync_client=True) as client:
            while not (runs := client.read_flow_runs(deployment_filter=DeploymentFilter(
                    id=DeploymentFilterId(any_=[deployment_id])))):
                assert time.monotonic() < deadline, "the automation created no run"
                time.sleep(0.5)
        [run] = runs
        [done] = wait_for_runs([run.id])

    assert done.state.is_completed(), done.state
    assert done.created_by and done.created_by.type == "AUTOMATION"
    assert done.parameters["source"] == f"git+file://{repo}@main"
    [hit] = list(atlas_client.search_basic({"typeName": "modelgov_model_build", "attributes": ["stagingCommit"],
                                            "entityFilters": {"attributeName": "qualifiedName", "operator": "=",
                                                              "attributeValue": "pushed-model/1.0@modelgov"}}))
    assert hit["attributes"]["stagingCommit"] == commit


def test_notify_push_refuses_credentials_and_needs_a_server(tmp_path):
    proc = modelgov("notify-push", "git+https://bot:s3cret@git.corp/m.git", "--ref", "main")
    # a credential in a URL is a usage error (exit 2) on every path, as for deploy (one type: CredentialInUrl)
    assert proc.returncode == 2 and "contains user information" in proc.stderr and "s3cret" not in proc.stderr + proc.stdout
    proc = modelgov("notify-push", "git+https://git.corp/m.git", env={"PREFECT_API_URL": ""})
    assert proc.returncode == 2 and "needs PREFECT_API_URL" in proc.stderr


def test_on_push_is_only_for_deploy_model(capsys):
    from flows.register import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--flow", "reconcile", "--on-push"])
    assert exit_info.value.code == 2 and "--on-push runs deploy-model" in capsys.readouterr().err
