"""Names from modelgov.yaml mean the same on every path: the flow as a worker or schedule runs it, and the CLI.

Before the library resolved configuration, a run given ``target=mlserver-local`` (as ``flows.register``
deployments and workers pass it) failed with ``ConfigError: unknown target scheme ''`` and lost the
configured namespace and environment.
"""

from __future__ import annotations

import json

import pytest

from flows.deploy_model import deploy_model
from tests.conftest import write_metadata
from tests.flow.test_cli import modelgov

pytestmark = pytest.mark.slow


def write_config(tmp_path, mlserver, atlas) -> str:
    path = tmp_path / "modelgov.yaml"
    path.write_text(f"""
atlas:
  url: {atlas.url}
  namespace: ops-test
registries:
  local-reg: file://{tmp_path / 'registry'}
targets:
  mlserver-local:
    uri: {mlserver.target_uri()}
    environment: staging
""")
    return str(path)


def deployment_of(atlas_client, guid):
    return atlas_client.get_entity(guid)["entity"]


def test_flow_resolves_named_target_registry_namespace_and_environment(prefect_api, example_repo, tmp_path, mlserver,
                                                                      atlas, atlas_client, monkeypatch):
    write_metadata(example_repo, model_name="named-flow")
    monkeypatch.setenv("MODELGOV_CONFIG", write_config(tmp_path, mlserver, atlas))
    monkeypatch.delenv("ATLAS_URL", raising=False)
    # exactly the parameters a flows.register deployment passes to a worker: names, nothing resolved
    summary = deploy_model(source=str(example_repo), target="mlserver-local", registry="local-reg")
    assert summary["status"] == "deployed"
    assert summary["registry_uri"] == f"file://{tmp_path / 'registry'}/named-flow/1.0"
    deployment = deployment_of(atlas_client, summary["atlas"]["deployment"]["guid"])
    assert deployment["attributes"]["qualifiedName"].endswith("@ops-test")
    assert [c["typeName"] for c in deployment.get("classifications", [])] == ["modelgov_staging"]


def test_cli_and_flow_agree_on_the_same_names(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client):
    write_metadata(example_repo, model_name="named-cli")
    config = write_config(tmp_path, mlserver, atlas)
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
           "ATLAS_URL": "http://127.0.0.1:9"}  # the config's atlas.url wins over an unrelated environment
    proc = modelgov("deploy", str(example_repo), "--target", "mlserver-local", "--registry", "local-reg",
                    "--config", config, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    deployment = deployment_of(atlas_client, summary["atlas"]["deployment"]["guid"])
    assert deployment["attributes"]["qualifiedName"].endswith("@ops-test")
    assert [c["typeName"] for c in deployment.get("classifications", [])] == ["modelgov_staging"]


def test_unknown_name_is_a_config_error_naming_the_defined_ones(prefect_api, example_repo, tmp_path, mlserver, atlas):
    proc = modelgov("deploy", str(example_repo), "--target", "mlserver-nope", "--registry", "local-reg",
                    "--config", write_config(tmp_path, mlserver, atlas))
    assert proc.returncode == 2
    assert "target 'mlserver-nope' is not defined" in proc.stderr and "mlserver-local" in proc.stderr
