"""Batch deploys as operations run them: ``modelgov deploy SRC1 SRC2 ...`` / ``--from-file LIST``, one flow run,
concurrent under a per-target limit, one failing model does not stop the others, one row/object per model."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.conftest import write_metadata
from tests.flow.test_cli import modelgov

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # real servers on a shared 2-core box


def stage(example_repo, tmp_path, name, broken=False):
    repo = shutil.copytree(example_repo, tmp_path / name)
    write_metadata(repo, model_name=name)
    if broken:
        (repo / "executable" / "model.joblib").write_bytes(b"garbage, not a pickle")
    return str(repo)


def max_overlap(intervals):
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_batch_of_ten_with_one_failing(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    names = [f"batch-{i}" for i in range(10)]
    sources = [stage(example_repo, tmp_path, name, broken=(name == "batch-6")) for name in names]
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    proc = modelgov("deploy", *sources[:4], "--from-file", str(_list(tmp_path, sources[4:])), "--target",
                    mlserver.target_uri(), "--registry", f"file://{tmp_path / 'registry'}", "--atlas", atlas.url,
                    "--per-target-limit", "3", "--json", env=env, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["model"]["name"] for r in rows] == names  # one object per model, in the order given
    assert {r["model"]["name"]: r["status"] for r in rows} == {n: "failed" if n == "batch-6" else "deployed"
                                                                for n in names}
    failed = rows[6]
    assert failed["step"] == "deploy" and "MLServer" in failed["error"]
    assert "[10/10]" in proc.stderr and "modelgov deploy: 1 of 10 failed" in proc.stderr  # progress was shown

    deployments = {}
    for hit in atlas_client.search_basic({"typeName": "modelgov_model_deployment", "attributes": [
            "modelName", "status", "outcome", "createTime", "deployedTime", "orchestratorRunId"]}):
        if hit["attributes"]["modelName"] in names:
            deployments[hit["attributes"]["modelName"]] = hit["attributes"]
    assert {n: (d["status"], d["outcome"]) for n, d in deployments.items()} == {
        n: ("stopped", "failed") if n == "batch-6" else ("deployed", "succeeded") for n in names}
    [run_id] = {d["orchestratorRunId"] for d in deployments.values()}  # one flow run
    spans = [(d["createTime"], d["deployedTime"]) for n, d in deployments.items() if n != "batch-6"]
    assert 1 < max_overlap(spans) <= 3  # concurrent, never more than the per-target limit

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(artifact_filter=ArtifactFilter(  # this run's: the session runs others
            key=ArtifactFilterKey(any_=["deploy-batch"]), flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    assert "# Batch deploy: 9 of 10 deployed" in artifact.data and artifact.data.count("| batch-") == 10


def _list(tmp_path, sources):
    path = tmp_path / "models.txt"
    path.write_text("# tonight's models\n" + "\n\n".join(sources) + "\n")
    return path


def test_batch_table_names_each_failure(prefect_api, example_repo, tmp_path, mlserver, atlas):
    good = stage(example_repo, tmp_path, "batch-table-ok")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{good}\n{tmp_path / 'does-not-exist'}\n")
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin", "COLUMNS": "200"}
    proc = modelgov("deploy", "--from-file", str(listing), "--target", mlserver.target_uri(), "--registry",
                    f"file://{tmp_path / 'registry'}", "--atlas", atlas.url, env=env)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "1 of 2 deployed" in proc.stdout
    [ok_line] = [line for line in proc.stdout.splitlines() if "batch-table-ok" in line]
    assert "deployed" in ok_line and "/v2/models/batch-table-ok/" in ok_line
    cells = re.sub(r"[\s│]", "", proc.stdout)  # long paths fold over several lines of the table
    assert "validate:" in cells and "does-not-exist" in cells


def test_source_list_errors_name_the_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("a\n# comment\nb\na\n")
    proc = modelgov("deploy", "--from-file", str(listing), "--target", "mlserver://h:1?repository=/r",
                    "--registry", "file:///r")
    assert proc.returncode == 2 and f"{listing}:4: a is listed twice (first on {listing}:1)" in proc.stderr
    proc = modelgov("deploy", "--target", "mlserver://h:1?repository=/r", "--registry", "file:///r")
    assert proc.returncode == 2 and "no source given" in proc.stderr
