"""Issue 24: a model deployed into a data pipeline. The Spark target binds a scoring job to a registry version
(real PySpark, local[2]); `modelgov score` scores a table with it and Atlas records input -> run -> output."""

from __future__ import annotations

import csv
import json
import shutil
import time
from pathlib import Path

import joblib
import pytest
import requests

from flows.deploy_model import deploy_model
from governance.cli.main import main
from tests.conftest import write_metadata

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
IRIS = Path(__file__).resolve().parents[2] / "staging_template" / "example" / "data" / "iris.csv"


def stage(tmp_path: Path, example_repo: Path, version: str, *, model=None, response=None) -> Path:
    repo = tmp_path / f"staged-{version}"
    shutil.copytree(example_repo, repo)
    write_metadata(repo, model_version=version)
    if model is not None:
        joblib.dump(model, repo / "executable" / "model.joblib")
    if response is not None:
        (repo / "examples" / "response.json").write_text(json.dumps(response))
    return repo


def read_predictions(folder: Path) -> list[int]:
    rows = []
    for part in sorted(folder.glob("part-*.csv")):
        with part.open() as fh:
            rows += [int(float(r["prediction"])) for r in csv.DictReader(fh)]
    return rows


def scoring_runs(atlas_client, model: str) -> list[dict]:
    hits = atlas_client.search_basic({"typeName": "modelgov_scoring_run", "attributes": [
        "modelVersion", "outcome", "rowsIn", "rowsOut", "deploymentName", "failureReason"],
        "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": model}})
    return [atlas_client.get_entity(h["guid"]) for h in hits]


def test_deploy_score_replace_and_a_failed_smoke_keeps_the_binding(prefect_api, tmp_path, example_repo, atlas,
                                                                  atlas_client, capsys):
    from sklearn.linear_model import LogisticRegression

    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    shutil.copy(IRIS, table)
    target = (f"spark://local?cores=2&input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    registry = f"file://{tmp_path / 'registry'}"
    first = deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target, registry=registry,
                         atlas_url=atlas.url)
    assert first["status"] == "deployed" and first["target"]["kind"] == "spark"
    v1 = first["atlas"]["deployment"]["qualifiedName"]

    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["outcome"], run["version"], run["deployment"], run["rowsIn"], run["rowsOut"]) == (
        "succeeded", "1.0", v1, 150, 150)
    features = [[float(v) for v in r[:4]] for r in csv.reader(IRIS.open()) if r[0][0].isdigit()]
    expected = joblib.load(example_repo / "executable" / "model.joblib").predict(features).tolist()
    assert read_predictions(Path(run["output"].removeprefix("file://"))) == expected  # every row, as sklearn says

    [entity] = scoring_runs(atlas_client, "iris-classifier")
    assert entity["entity"]["relationshipAttributes"]["deployment"]["guid"] == first["atlas"]["deployment"]["guid"]
    lineage = atlas_client.lineage(entity["entity"]["guid"], direction="BOTH", depth=1)
    names = {e["attributes"]["qualifiedName"] for e in lineage["guidEntityMap"].values()}
    import hashlib

    digest = hashlib.sha256(table.read_bytes()).hexdigest()
    assert any(n.startswith(f"file://{table}#sha256={digest}") for n in names), names
    assert any(n.startswith(run["output"]) for n in names), names

    # v2: another model; v1 is recorded stopped and the next run uses v2
    other = LogisticRegression(C=0.01, max_iter=500).fit(features, expected)
    second = deploy_model(source=str(stage(tmp_path, example_repo, "2.0", model=other, response={
        "outputs": [{"name": "predict", "data": other.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]).tolist()}]})),
        target=target, registry=registry, atlas_url=atlas.url)
    assert second["status"] == "deployed"
    old = atlas_client.get_entity(first["atlas"]["deployment"]["guid"])["entity"]["attributes"]
    assert old["status"] == "stopped"
    assert main(["score", second["atlas"]["deployment"]["guid"], "--atlas", atlas.url, "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out)
    assert rerun["version"] == "2.0" and read_predictions(Path(rerun["output"].removeprefix("file://"))) == \
        other.predict(features).tolist()

    # v3 whose smoke scoring disagrees with its examples/response.json: refused, v2 stays bound
    with pytest.raises(Exception, match="smoke"):
        deploy_model(source=str(stage(tmp_path, example_repo, "3.0", response={
            "outputs": [{"name": "predict", "data": [1, 1]}]})), target=target, registry=registry, atlas_url=atlas.url)
    binding = json.loads((tmp_path / "bindings" / "iris-classifier" / "binding.json").read_text())
    assert binding["version"] == "2.0"
    assert sorted(p.name for p in (tmp_path / "bindings" / "iris-classifier").iterdir() if p.is_dir()
                  and not p.name.startswith(".")) == [f"2.0-{binding['sha256'][:12]}"]
    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "2.0"

    # history (by the target URI, as for any target) and the audit report list the Spark deployments
    assert main(["history", "iris-classifier", "--target", target, "--atlas", atlas.url, "--json"]) == 0
    assert [(r["modelVersion"], r["status"], r["outcome"], r["targetKind"]) for r in json.loads(
        capsys.readouterr().out)] == [("1.0", "stopped", "succeeded", "spark"), ("2.0", "deployed", "succeeded", "spark"),
                                      ("3.0", "stopped", "failed", "spark")]
    assert main(["report", "--since", "2000-01-01", "--until", "2100-01-01", "--format", "csv", "--atlas",
                 atlas.url]) == 0
    report = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert sorted(r["modelVersion"] for r in report if r["targetKind"] == "spark") == ["1.0", "2.0", "3.0"]

    # trace of each deployment lists the runs that used its binding, newest first
    assert main(["trace", v1, "--atlas", atlas.url, "--json"]) == 0
    runs_v1 = json.loads(capsys.readouterr().out)["scoringRuns"]
    assert runs_v1["total"] == 1 and runs_v1["runs"][0]["runId"] == run["runId"]
    assert runs_v1["runs"][0]["inputs"] == [f"iris.csv@{digest}"] and runs_v1["runs"][0]["rowsOut"] == 150
    assert main(["trace", second["atlas"]["deployment"]["guid"], "--atlas", atlas.url]) == 0
    tree = capsys.readouterr().out
    assert "scoring runs" in tree and "2 (newest first)" in tree and "succeeded" in tree


def test_a_failed_run_leaves_no_output_and_is_recorded_failed(prefect_api, tmp_path, example_repo, atlas,
                                                             atlas_client, capsys):
    bad = tmp_path / "in" / "narrow.csv"
    bad.parent.mkdir()
    bad.write_text("a,b\n1.0,2.0\n")  # two columns: the model reads four
    target = (f"spark://local?cores=2&input=file://{bad}&output=file://{tmp_path}/out/scored"
              f"&bindings={tmp_path / 'bindings'}")
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                 registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url]) == 1
    assert "reads 4 features" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())  # no output, no temp left
    [entity] = scoring_runs(atlas_client, "iris-classifier")
    attrs = entity["entity"]["attributes"]
    assert attrs["outcome"] == "failed" and "reads 4 features" in attrs["failureReason"]
    assert not entity["entity"]["relationshipAttributes"].get("outputs")


def test_a_java_failure_is_reported_by_its_java_reason_not_py4j_s_call_site(prefect_api, tmp_path, example_repo,
                                                                          atlas, capsys, monkeypatch):
    """An s3:// output in a Spark without S3A: the error named the Java method py4j called ("An error occurred
    while calling o42.getFileSystem."); it names Hadoop's exception and what to set."""
    monkeypatch.delenv("MODELGOV_SPARK_JARS", raising=False)
    (tmp_path / "in.csv").write_text(IRIS.read_text())
    target = (f"spark://local?cores=2&input=file://{tmp_path}/in.csv&output=s3://no-such-bucket/out/scored"
              f"&bindings={tmp_path / 'bindings'}")
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                 registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url]) == 1
    err = capsys.readouterr().err
    assert "An error occurred while calling" not in err, err
    assert "ClassNotFoundException: Class org.apache.hadoop.fs.s3a.S3AFileSystem not found" in err, err
    assert "set MODELGOV_SPARK_JARS" in err


def test_a_run_killed_mid_write_leaves_no_output_and_the_next_run_records_it_failed(prefect_api, tmp_path,
                                                                                    example_repo, atlas, atlas_client):
    import os
    import signal
    import subprocess
    import sys
    import time

    big = tmp_path / "in" / "iris-big.csv"
    big.parent.mkdir()
    lines = IRIS.read_text().splitlines()
    big.write_text("\n".join([lines[0], *(lines[1:] * 4000)]) + "\n")  # 600,000 rows
    out = tmp_path / "out"
    target = (f"spark://local?cores=2&input=file://{big}&output=file://{out}/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                 registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    proc = subprocess.Popen([sys.executable, "-m", "governance", "score", "--model", "iris-classifier", "--target",
                             target, "--atlas", atlas.url], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    deadline = time.monotonic() + 120
    while not (out.exists() and any(p.name.startswith("._modelgov-tmp-") for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM, as a lost machine
    proc.wait()
    [killed] = scoring_runs(atlas_client, "iris-classifier")
    assert killed["entity"]["attributes"]["outcome"] == "pending"
    time.sleep(1)  # Spark's JVM notices its driver is gone

    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url,
                 "--input", str(IRIS).join(["file://", ""])]) == 0
    runs = {r["entity"]["attributes"]["orchestratorRunId"]: r["entity"]["attributes"]
            for r in scoring_runs(atlas_client, "iris-classifier")}
    first = runs[killed["entity"]["attributes"]["orchestratorRunId"]]
    assert first["outcome"] == "failed" and first["failureReason"].startswith("interrupted")
    assert [p.name for p in out.iterdir()] == [next(r for r in runs.values() if r["outcome"] == "succeeded")[
        "outputUri"].rsplit("/", 1)[1]]  # the killed run's temporary output is gone; only the new run's output


def test_scoring_a_table_on_real_hdfs_records_hdfs_checksums_and_commits_by_rename(
        prefect_api, tmp_path, example_repo, atlas, atlas_client, real_hdfs, hdfs_server, capsys):
    """Input and output on the real HDFS (MiniDFSCluster), read and written by Spark through the NameNode's RPC
    port; the input's version is HDFS's own file checksum; every prediction is scikit-learn's."""
    folder = real_hdfs.fresh_folder(permission="777")
    real_hdfs.admin.write(f"{folder}/in/iris.csv", data=IRIS.read_bytes())
    real_hdfs.admin.set_permission(f"{folder}/in", permission="777")
    base = f"hdfs://127.0.0.1:{hdfs_server['rpc_port']}{folder}"
    target = (f"spark://local?cores=2&input={base}/in/iris.csv&output={base}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                 registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["outcome"] == "succeeded" and run["rowsOut"] == 150
    out_path = run["output"].split(str(hdfs_server["rpc_port"]), 1)[1]
    assert [n for n in real_hdfs.admin.list(f"{folder}/out")] == [out_path.rsplit("/", 1)[1]]  # no temp left
    rows = []
    for part in sorted(p for p in real_hdfs.admin.list(out_path) if p.startswith("part-")):
        with real_hdfs.admin.read(f"{out_path}/{part}", encoding="utf-8") as fh:
            rows += [int(float(r["prediction"])) for r in csv.DictReader(fh)]
    features = [[float(v) for v in r[:4]] for r in csv.reader(IRIS.open()) if r[0][0].isdigit()]
    assert rows == joblib.load(example_repo / "executable" / "model.joblib").predict(features).tolist()
    checksum = real_hdfs.admin.checksum(f"{folder}/in/iris.csv")
    [entity] = scoring_runs(atlas_client, "iris-classifier")
    [source] = entity["entity"]["relationshipAttributes"]["inputs"]
    dataset = atlas_client.get_entity(source["guid"])["entity"]["attributes"]
    algorithm, md5 = dataset["dataVersion"].split(":")
    # WebHDFS's GETFILECHECKSUM serialises the same checksum with its CRC parameters around the MD5
    assert (dataset["dataVersionKind"], algorithm) == ("hdfs_checksum", checksum["algorithm"]) and md5 in checksum["bytes"]


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A real standalone master and worker, started as `python -m testbed spark` does."""
    from testbed.service import ServiceError
    from testbed.spark import SparkService

    service = SparkService(tmp_path_factory.mktemp("spark-cluster"))
    try:
        service.start()
    except ServiceError as exc:
        service.stop()
        pytest.fail(f"could not start the Spark standalone cluster: {exc}", pytrace=False)
    try:
        yield service.info
    finally:
        service.stop()


def test_the_same_deploy_and_score_on_a_standalone_master(prefect_api, tmp_path, example_repo, atlas, atlas_client,
                                                          spark_cluster, capsys):
    """The cluster a user moves to when one machine is not enough: the smoke scoring and the run execute on the
    standalone worker (its own JVM and Python workers)."""
    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    shutil.copy(IRIS, table)
    target = (f"{spark_cluster['target_uri']}?input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    summary = deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                           registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    assert summary["status"] == "deployed" and summary["target"]["detail"].startswith("127.0.0.1:")
    assert main(["score", summary["atlas"]["deployment"]["guid"], "--atlas", atlas.url, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    features = [[float(v) for v in r[:4]] for r in csv.reader(IRIS.open()) if r[0][0].isdigit()]
    assert read_predictions(Path(run["output"].removeprefix("file://"))) == \
        joblib.load(example_repo / "executable" / "model.joblib").predict(features).tolist()
    apps = requests.get(f"{spark_cluster['url']}/json", timeout=5).json()
    assert any(a.get("name") == "modelgov-scoring" for a in apps.get("activeapps", []) + apps.get("completedapps", []))


def test_a_scheduled_scoring_run_fires_from_the_prefect_server(on_prefect_server, tmp_path, example_repo, atlas,
                                                               atlas_client):
    """schedule= on the target: the deploy registers score-model/<model>-<target> with the cron on the pool, and
    a worker runs it when it fires; the run scores with the bound version and is recorded with its flow run id."""
    from prefect import get_client

    from tests.flow.workers import process_workers, wait_for_runs

    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    shutil.copy(IRIS, table)
    target = (f"spark://local?cores=1&input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}&schedule=*+*+*+*+*&pool=modelgov-scoring")
    with process_workers(on_prefect_server, "modelgov-scoring", ["scorer"], tmp_path, limit=1):
        summary = deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                               registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
        assert summary["status"] == "deployed"
        with get_client(sync_client=True) as client:
            [deployment] = [d for d in client.read_deployments() if d.name.startswith("iris-classifier-")]
            assert [s.schedule.cron for s in deployment.schedules] == ["* * * * *"]
            deadline = time.monotonic() + 240
            while not (runs := [r for r in client.read_flow_runs() if r.deployment_id == deployment.id
                                and r.state and r.state.is_final()]):
                seen = [(r.state.name if r.state else None, str(r.expected_start_time))
                        for r in client.read_flow_runs() if r.deployment_id == deployment.id]
                assert time.monotonic() < deadline, f"no scheduled scoring run finished within 240 s: {seen}; " + \
                    (tmp_path / "worker-scorer.log").read_text()[-3000:]
                time.sleep(2)
        [fired] = wait_for_runs([runs[0].id])
        assert fired.state.is_completed(), fired.state
    [entity] = [e for e in scoring_runs(atlas_client, "iris-classifier")
                if e["entity"]["attributes"]["orchestratorRunId"] == str(fired.id)]
    attrs = entity["entity"]["attributes"]
    assert (attrs["outcome"], attrs["modelVersion"], attrs["rowsOut"]) == ("succeeded", "1.0", 150)


def test_a_binding_changed_behind_our_back_is_drift_that_reconcile_repairs_and_score_refuses(
        prefect_api, tmp_path, example_repo, atlas, atlas_client, capsys):
    """Someone swaps the bound copy (other bytes under the same binding): score refuses it, reconcile reports
    other-bytes drift and binds the recorded version again from the registry; then score runs."""
    from sklearn.linear_model import LogisticRegression

    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    shutil.copy(IRIS, table)
    target = (f"spark://local?cores=2&input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    config = tmp_path / "modelgov.yaml"
    config.write_text(f'atlas: {{url: "{atlas.url}"}}\nregistries: {{reg: "file://{tmp_path / "registry"}"}}\n'
                      f'targets:\n  batch: {{uri: "{target}"}}\n')
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                 registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    binding = json.loads((tmp_path / "bindings" / "iris-classifier" / "binding.json").read_text())
    swapped = LogisticRegression(max_iter=200).fit([[0, 0, 0, 0], [9, 9, 9, 9]], [1, 2])
    joblib.dump(swapped, tmp_path / "bindings" / binding["executable"])

    assert main(["score", "--model", "iris-classifier", "--target", "batch", "--config", str(config)]) == 1
    assert "the binding names" in capsys.readouterr().err  # the bound copy's sha256 is checked before scoring
    assert main(["reconcile", "--target", "batch", "--config", str(config), "--dry-run", "--json"]) == 0
    [finding] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (finding["kind"], finding["action"]) == ("other-bytes", "would-redeploy")
    assert main(["reconcile", "--target", "batch", "--config", str(config), "--json"]) == 0
    [fixed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert fixed["action"] == "redeployed"
    assert main(["score", "--model", "iris-classifier", "--target", "batch", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "succeeded"


def test_a_deploy_during_a_run_and_a_second_run_never_make_the_first_look_killed(prefect_api, tmp_path,
                                                                                example_repo, atlas, atlas_client):
    """A run is scoring (its lock held) when v2 is deployed (which prunes old copies) and a second run starts:
    the second must not take the first for killed (record it failed, remove its temporary output)."""
    import os
    import subprocess
    import sys

    big = tmp_path / "in" / "iris-big.csv"
    big.parent.mkdir()
    lines = IRIS.read_text().splitlines()
    big.write_text("\n".join([lines[0], *(lines[1:] * 4000)]) + "\n")
    out = tmp_path / "out"
    target = (f"spark://local?cores=1&input=file://{big}&output=file://{out}/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    registry = f"file://{tmp_path / 'registry'}"
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target, registry=registry,
                 atlas_url=atlas.url)
    first = subprocess.Popen([sys.executable, "-m", "governance", "score", "--model", "iris-classifier", "--target",
                              target, "--atlas", atlas.url, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    deadline = time.monotonic() + 120
    while not (out.exists() and any(p.name.startswith("._modelgov-tmp-") for p in out.iterdir())):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    deploy_model(source=str(stage(tmp_path, example_repo, "2.0")), target=target, registry=registry,
                 atlas_url=atlas.url)
    assert first.poll() is None, "the first run ended before the second could start: make the table bigger"
    assert main(["score", "--model", "iris-classifier", "--target", target, "--atlas", atlas.url,
                 "--input", f"file://{IRIS}"]) == 0
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-2000:]
    done = json.loads(stdout)
    runs = {r["entity"]["attributes"]["orchestratorRunId"]: r["entity"]["attributes"]
            for r in scoring_runs(atlas_client, "iris-classifier")}
    assert runs[done["runId"]]["outcome"] == "succeeded" and runs[done["runId"]]["modelVersion"] == "1.0"
    assert Path(done["output"].removeprefix("file://")).is_dir()


def test_a_spark_ml_pipeline_model_is_bound_and_scores_natively(prefect_api, tmp_path, example_repo, atlas,
                                                               atlas_client, capsys):
    """A PipelineModel (VectorAssembler + LogisticRegression) saved by Spark ML and zipped as the executable:
    bound, smoke-scored and run by Spark itself; every prediction equals the pipeline's own transform."""
    import zipfile

    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression as SparkLogisticRegression
    from pyspark.ml.feature import VectorAssembler

    from governance.spark.session import session

    spark = session("local[2]")
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = [[float(v) for v in r[:4]] + [float(r[4])] for r in csv.reader(IRIS.open()) if r[0][0].isdigit()]
    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    with table.open("w", newline="") as out:
        csv.writer(out).writerows([[*names, "label"], *rows])
    train = spark.createDataFrame(rows, [*names, "label"])
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=names, outputCol="features"),
                                SparkLogisticRegression(maxIter=50)]).fit(train)
    saved = tmp_path / "pipeline"
    pipeline.save(str(saved))
    repo = stage(tmp_path, example_repo, "1.0")
    (repo / "executable" / "model.joblib").unlink()
    with zipfile.ZipFile(repo / "executable" / "model.zip", "w") as zf:
        for path in sorted(saved.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(saved).as_posix())
    write_metadata(repo, model_version="1.0", model_framework="sparkml", model_name="iris-pipeline")
    example = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    expected = [r["prediction"] for r in pipeline.transform(spark.createDataFrame(example, names)).collect()]
    (repo / "examples" / "request.json").write_text(json.dumps({"inputs": [
        {"name": n, "shape": [2], "datatype": "FP64", "data": [e[i] for e in example]} for i, n in enumerate(names)]}))
    (repo / "examples" / "response.json").write_text(json.dumps({"outputs": [{"name": "predict", "data": expected}]}))

    target = (f"spark://local?cores=2&input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    summary = deploy_model(source=str(repo), target=target, registry=f"file://{tmp_path / 'registry'}",
                           atlas_url=atlas.url)
    assert summary["status"] == "deployed"
    assert json.loads((tmp_path / "bindings" / "iris-pipeline" / "binding.json").read_text())["framework"] == "sparkml"
    assert main(["score", "--model", "iris-pipeline", "--target", target, "--atlas", atlas.url, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    out = Path(run["output"].removeprefix("file://"))
    scored = [float(r["prediction"]) for part in sorted(out.glob("part-*.csv")) for r in csv.DictReader(part.open())]
    own = [r["prediction"] for r in pipeline.transform(train).collect()]
    assert scored == own and len(scored) == 150 and run["rowsOut"] == 150
    assert not list((tmp_path / "bindings" / "iris-pipeline" / ".work").iterdir())  # extracted only while it ran


@pytest.fixture(scope="module")
def s3a_jars():
    """Hadoop's S3A connector for PySpark (testbed.spark.s3a_jars: fetched once from Maven Central)."""
    from testbed.spark import s3a_jars

    return s3a_jars()


def test_scoring_s3_objects_on_real_radosgw_records_their_version_ids(prefect_api, tmp_path, example_repo, atlas,
                                                                       atlas_client, radosgw_server, s3a_jars):
    """Input and output in a versioned bucket of the real radosgw over HTTPS, read and written by Spark's S3A in a
    ``modelgov score`` process (keys from the environment only, the endpoint's CA from MODELGOV_CA_BUNDLE as for
    every client); the input's version is its S3 versionId, the output's the digest of its objects' versionIds;
    every prediction is scikit-learn's; no temporary object is left; the secret key is nowhere in what the run
    printed or Atlas recorded."""
    import os
    import subprocess
    import sys
    import uuid

    s3 = radosgw_server.client()
    bucket = f"scoring-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="in/iris.csv", Body=IRIS.read_bytes())
    target = (f"spark://local?cores=2&input=s3://{bucket}/in/iris.csv&output=s3://{bucket}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    deploy_model(source=str(stage(tmp_path, example_repo, "1.0")), target=target,
                 registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    env = {**os.environ, "AWS_ENDPOINT_URL": radosgw_server.https_url, "AWS_DEFAULT_REGION": "us-east-1",
           "MODELGOV_CA_BUNDLE": str(radosgw_server.ca_bundle),
           "AWS_ACCESS_KEY_ID": radosgw_server.access_key, "AWS_SECRET_ACCESS_KEY": radosgw_server.secret_key,
           "MODELGOV_SPARK_JARS": str(s3a_jars), "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    env.pop("AWS_ENDPOINT_URL_S3", None)
    proc = subprocess.run([sys.executable, "-m", "governance", "score", "--model", "iris-classifier", "--target",
                           target, "--atlas", atlas.url, "--json"], env=env, capture_output=True, text=True,
                          timeout=400, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = json.loads(proc.stdout)
    assert run["outcome"] == "succeeded" and run["rowsOut"] == 150
    prefix = run["output"].split(f"s3://{bucket}/", 1)[1]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="out/").get("Contents", [])]
    assert keys and all(k.startswith(prefix + "/") for k in keys), keys  # no temporary sibling is left
    rows = []
    for key in sorted(k for k in keys if k.rsplit("/", 1)[1].startswith("part-")):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        rows += [int(float(r["prediction"])) for r in csv.DictReader(body.splitlines())]
    features = [[float(v) for v in r[:4]] for r in csv.reader(IRIS.open()) if r[0][0].isdigit()]
    assert rows == joblib.load(example_repo / "executable" / "model.joblib").predict(features).tolist()
    [entity] = scoring_runs(atlas_client, "iris-classifier")
    relations = entity["entity"]["relationshipAttributes"]
    [source] = [atlas_client.get_entity(r["guid"])["entity"]["attributes"] for r in relations["inputs"]]
    [sink] = [atlas_client.get_entity(r["guid"])["entity"]["attributes"] for r in relations["outputs"]]
    assert (source["dataVersionKind"], source["dataVersion"]) == ("s3_version_id", put["VersionId"])
    assert source["uri"] == f"s3://{bucket}/in/iris.csv?versionId={put['VersionId']}"
    assert sink["dataVersionKind"] == "s3_versions" and sink["location"] == run["output"]
    recorded = json.dumps([entity, source, sink])
    assert radosgw_server.secret_key not in proc.stdout + proc.stderr + recorded
