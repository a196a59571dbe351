"""Models from a real MLflow registry through ``modelgov deploy``/``validate``, served by MLServer's MLflow
runtime, recorded in Atlas with the model version URI, run id, commit and dataset digest.

The MLflow server and the script that logs models run from ``.venv-mlflow`` (MLflow is not a dependency of
modelgov); modelgov itself talks to the server's REST API.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests

from testbed.mlflow import mlflow_env, mlflow_python
from tests.conftest import ROOT
from tests.flow.test_cli import modelgov

# starting mlflow server and logging three models takes minutes on a busy 2-core machine
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
LOG_SCRIPT = ROOT / "tests" / "fixtures" / "mlflow_log_model.py"


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """One real ``mlflow server`` (SQLite store, proxied local artifacts) for this module, started the way a
    person starts it: ``python -m testbed mlflow --tls`` prints one ready line and stops cleanly on SIGTERM.
    HTTPS only, with a certificate of a testbed CA: the clients here trust it because they are told to."""
    if not mlflow_python().exists():
        pytest.fail(f"MLflow's venv is missing at {mlflow_python()}: run `make mlflow-env` (make test does it)")
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "mlflow", "--tls", "--workdir",
                             str(tmp_path_factory.mktemp("mlflow"))], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-3000:]
        info = json.loads(line)
        assert info["service"] == "mlflow" and info["url"].startswith("https://localhost:")
        assert requests.get(f"{info['url']}/health", timeout=10, verify=info["ca_bundle"]).status_code == 200
        yield info
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == ""  # exactly one line
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{info['url']}/health", timeout=2, verify=info["ca_bundle"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def registered(mlflow_server, tmp_path_factory) -> dict[str, dict]:
    """Versions logged and registered as an owner would: iris-mlflow 1 and 2 (alias champion on 2), and
    iris-no-owner 1 whose owner tag was never set. Keyed "name/version"."""
    plan = [{"name": "iris-mlflow", "commit": "1111111111111111111111111111111111111111"},
            {"name": "iris-mlflow", "alias": "champion", "C": 0.05,
             "commit": "2222222222222222222222222222222222222222"},
            {"name": "iris-no-owner", "omit": ["model.owner"]}]
    proc = subprocess.run([str(mlflow_python()), str(LOG_SCRIPT), "--data-dir",
                           str(tmp_path_factory.mktemp("mlflow-data")), "--plan", json.dumps(plan)],
                          env={**mlflow_env(), "MLFLOW_TRACKING_URI": mlflow_server["url"],
                               "MLFLOW_TRACKING_SERVER_CERT_PATH": mlflow_server["ca_bundle"]},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {f"{r['name']}/{r['version']}": r for r in rows}


@pytest.fixture
def env(prefect_api, mlflow_server, atlas) -> dict[str, str]:
    return {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
            "MLFLOW_TRACKING_URI": mlflow_server["url"], "MODELGOV_CA_BUNDLE": mlflow_server["ca_bundle"]}


def deploy(source: str, mlserver, registry, atlas, env) -> dict:
    proc = modelgov("deploy", source, "--target", mlserver.target_uri(), "--registry", f"file://{registry}",
                    "--atlas", atlas.url, "--json", env=env, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def training_datasets(atlas_client, build_guid: str) -> list[dict]:
    lineage = atlas_client.lineage(build_guid, "INPUT", depth=2)
    return [e for e in lineage["guidEntityMap"].values() if e["typeName"] == "modelgov_dataset"]


def test_deploy_version_and_alias_to_mlserver_records_mlflow_lineage(registered, mlserver, atlas, atlas_client,
                                                                      env, tmp_path):
    v1, v2 = registered["iris-mlflow/1"], registered["iris-mlflow/2"]

    first = deploy("models:/iris-mlflow/1", mlserver, tmp_path / "registry", atlas, env)
    assert first["status"] == "deployed"
    assert first["model"] == {"name": "iris-mlflow", "version": "1", "owner": "Ana Müller"}
    assert first["staging"] == {"source": "models:/iris-mlflow/1", "commit": v1["commit"]}
    assert first["prediction"][0]["data"] == v1["expected"]  # the logged input example, run by MLflow's runtime
    files = {a["path"] for a in first["artifacts"]}
    assert {"executable/MLmodel", "metadata.txt", "README.md", "examples/request.json"} <= files
    settings = json.loads((mlserver.repository / "iris-mlflow" / "1000000" / "model-settings.json").read_text())
    assert settings["implementation"] == "mlserver_mlflow.MLflowRuntime"

    build = atlas_client.get_entity(first["atlas"]["build"]["guid"])["entity"]
    attrs = build["attributes"]
    assert attrs["mlflowModelUri"] == "models:/iris-mlflow/1"
    assert attrs["mlflowRunId"] == v1["run_id"]
    assert attrs["stagingCommit"] == v1["commit"]
    assert attrs["framework"] == "sklearn" and attrs["ownerLob"] == "retail-analytics"
    [dataset] = training_datasets(atlas_client, build["guid"])
    data = atlas_client.get_entity(dataset["guid"])["entity"]["attributes"]
    assert (data["dataVersion"], data["dataVersionKind"]) == (v1["digest"], "mlflow_digest")
    assert data["location"] == v1["data"]
    assert data["qualifiedName"] == f"{v1['data']}#digest={v1['digest']}@modelgov"

    second = deploy("models:/iris-mlflow@champion", mlserver, tmp_path / "registry", atlas, env)
    assert second["model"]["version"] == "2"
    assert second["staging"] == {"source": "models:/iris-mlflow@champion", "commit": v2["commit"]}
    assert second["prediction"][0]["data"] == v2["expected"]
    ready = requests.get(f"{mlserver.url}/v2/models/iris-mlflow/versions/2000000/ready", timeout=5)
    assert ready.status_code == 200  # MLServer itself serves version 2
    build2 = atlas_client.get_entity(second["atlas"]["build"]["guid"])["entity"]["attributes"]
    assert (build2["mlflowModelUri"], build2["mlflowRunId"]) == ("models:/iris-mlflow/2", v2["run_id"])
    assert second["superseded"] == [first["atlas"]["deployment"]["qualifiedName"]]

    planted = "planted-mlflow-token-7f3a9c"  # the server has no auth, so it ignores the token; we must too
    proc = modelgov("deploy", "models:/iris-mlflow/2", "--target", mlserver.target_uri(), "--registry",
                    f"file://{tmp_path / 'registry'}", "--atlas", atlas.url, "--json",
                    env={**env, "MLFLOW_TRACKING_TOKEN": planted}, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads(proc.stdout)
    assert again["registry_created"] is False  # by alias or by number: the same bytes, the same version
    assert again["status"] == "unchanged"  # and MLServer already serves exactly them
    assert again["existing_deployment"]["qualifiedName"] == second["atlas"]["deployment"]["qualifiedName"]
    assert planted not in proc.stdout + proc.stderr
    for guid in (second["atlas"]["build"]["guid"], second["atlas"]["deployment"]["guid"]):
        assert planted not in json.dumps(atlas_client.get_entity(guid))
    for path in (tmp_path / "registry").rglob("*"):
        assert not path.is_file() or planted.encode() not in path.read_bytes(), path


def test_version_missing_owner_tag_is_refused_naming_the_tag(registered, env, mlserver, atlas, tmp_path):
    proc = modelgov("validate", "models:/iris-no-owner/1", env=env)
    assert proc.returncode == 1
    assert ("models:/iris-no-owner/1: model.owner is missing: set the MLflow tag 'model.owner' on model version "
            "iris-no-owner 1 or on registered model iris-no-owner") in proc.stderr.splitlines()
    proc = modelgov("deploy", "models:/iris-no-owner/1", "--target", mlserver.target_uri(), "--registry",
                    f"file://{tmp_path / 'registry'}", "--atlas", atlas.url, env=env, timeout=400)
    assert proc.returncode == 1 and "validate step failed" in proc.stderr
    assert not (tmp_path / "registry").exists() and not (mlserver.repository / "iris-no-owner").exists()


@pytest.mark.parametrize("trust", ["no bundle", "another CA"])
def test_an_https_mlflow_server_is_refused_without_its_ca(registered, env, mlserver, atlas, tmp_path, trust):
    """The HTTPS tracking server's certificate is checked: without its CA (or with another CA's bundle) the
    deploy stops at the fetch naming the host and where the trusted CAs came from, and writes nothing."""
    from testbed.certs import TestCa

    bad = {k: v for k, v in env.items() if k != "MODELGOV_CA_BUNDLE"}
    if trust == "another CA":
        bad["MODELGOV_CA_BUNDLE"] = str(TestCa(tmp_path / "other-ca", "other").bundle)
    proc = modelgov("deploy", "models:/iris-mlflow/1", "--target", mlserver.target_uri(), "--registry",
                    f"file://{tmp_path / 'registry'}", "--atlas", atlas.url, env=bad, timeout=400)
    assert proc.returncode != 0
    port = mlflow_port(env)
    last = proc.stderr.strip().splitlines()[-2:]  # modelgov's own last word (Prefect's run log is above it)
    assert any(line.startswith("modelgov deploy: validate step failed: MLflow at ") and
               f"the certificate of localhost:{port} is not trusted" in line and "MODELGOV_CA_BUNDLE" in line
               for line in last), proc.stderr[-2000:]
    assert not (tmp_path / "registry").exists()


def mlflow_port(env: dict[str, str]) -> int:
    from urllib.parse import urlparse

    return urlparse(env["MLFLOW_TRACKING_URI"]).port


def test_configured_tag_name_and_unknown_version(registered, env, tmp_path):
    config = tmp_path / "modelgov.yaml"
    config.write_text("mlflow:\n  tags:\n    model.owner: team_owner\n")
    proc = modelgov("validate", "models:/iris-mlflow/1", env={**env, "MODELGOV_CONFIG": str(config)})
    assert proc.returncode == 1 and "set the MLflow tag 'team_owner'" in proc.stderr
    missing = modelgov("validate", "models:/iris-mlflow/99", env=env)
    assert missing.returncode == 1 and "RESOURCE_DOES_NOT_EXIST" in missing.stderr
    ok = modelgov("validate", "models:/iris-mlflow@champion", "--json", env=env)
    assert ok.returncode == 0, ok.stderr
    valid = json.loads(ok.stdout)
    assert valid["executable"] == "executable/MLmodel" and valid["model"]["version"] == "2"


def test_an_mlflow_sklearn_model_scores_a_table_on_spark(registered, atlas, atlas_client, env, tmp_path, monkeypatch,
                                                         capsys):
    """Issue 24: an MLflow model version bound to a Spark job: the job unpickles the sklearn flavor's model (no
    MLflow needed on the cluster), reads its named feature columns, and scores every row as the model does."""
    import csv
    from pathlib import Path

    from flows.deploy_model import deploy_model
    from governance.cli.main import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    iris = ROOT / "staging_template" / "example" / "data" / "iris.csv"
    rows = [r for r in csv.reader(iris.open())][1:]
    table = tmp_path / "in" / "iris.csv"
    table.parent.mkdir()
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "target"])
        writer.writerows(rows)
    target = (f"spark://local?cores=2&input=file://{table}&output=file://{tmp_path}/out/{{run_id}}"
              f"&bindings={tmp_path / 'bindings'}")
    summary = deploy_model(source="models:/iris-mlflow/1", target=target, registry=f"file://{tmp_path / 'registry'}",
                           atlas_url=atlas.url)
    assert summary["status"] == "deployed"
    binding = json.loads((tmp_path / "bindings" / "iris-mlflow" / "binding.json").read_text())
    assert binding["framework"] == "mlflow-sklearn:skops" and binding["executable"].endswith("model.skops")
    assert main(["score", "--model", "iris-mlflow", "--target", target, "--atlas", atlas.url, "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    out = Path(run["output"].removeprefix("file://"))
    scored = [int(float(r["prediction"])) for part in sorted(out.glob("part-*.csv")) for r in csv.DictReader(part.open())]
    from skops.io import load

    model = load(tmp_path / "bindings" / binding["executable"])
    import pandas as pd

    frame = pd.DataFrame([[float(v) for v in r[:4]] for r in rows], columns=list(model.feature_names_in_))
    assert scored == model.predict(frame).tolist() and len(scored) == 150
