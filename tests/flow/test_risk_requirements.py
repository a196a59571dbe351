"""Risk and purpose metadata through `modelgov deploy`: what modelgov.yaml requires of an environment or a target
is refused before anything is written (registry, Atlas types, Atlas records); what the owner declared is
recorded on the Atlas build."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from governance.atlas.client import AtlasClient, AtlasSettings
from tests.conftest import write_metadata
from tests.flow.conftest import model_name_for
from tests.flow.test_cli import modelgov

pytestmark = pytest.mark.slow

RISK = {"model_risk_tier": "High", "model_intended_use": "rank loan applications <b>for</b> review",
        "model_limitations": "not for applicants under 18", "model_validation_status": "approved",
        "model_validation_by": "Model Risk Office", "model_validation_date": "2026-11-30"}


def write_config(tmp_path, atlas_url: str, target_uri: str, environment: str, requirements: str) -> str:
    path = tmp_path / "modelgov.yaml"
    path.write_text(f"""
atlas: {{url: "{atlas_url}"}}
registries: {{reg: "file://{tmp_path / 'registry'}"}}
targets:
  serving: {{uri: "{target_uri}", environment: {environment}}}
requirements:
{requirements}
""")
    return str(path)


def deploy(example_repo, config: str, prefect_api: str) -> tuple[int, str, str]:
    proc = modelgov("deploy", str(example_repo), "--target", "serving", "--registry", "reg", "--config", config,
                    "--json", env={"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"})
    return proc.returncode, proc.stdout, proc.stderr


def test_missing_requirements_are_refused_before_anything_is_written(prefect_api, example_repo, tmp_path, atlas):
    config = write_config(tmp_path, atlas.url, "mlserver://127.0.0.1:9?repository=/nowhere", "production", """
  environments:
    production: {risk_tier: required, validation_status: approved}
  targets:
    serving: {intended_use: required}""")
    write_metadata(example_repo, model_validation_status="pending")
    code, out, err = deploy(example_repo, config, prefect_api)
    assert code == 1, err
    lines = err.splitlines()
    assert "metadata.txt: model.risk.tier is missing: deploys to production require it " \
           "(requirements.environments.production in modelgov.yaml)" in lines
    assert "metadata.txt:9: model.validation.status is pending: deploys to production require approved " \
           "(requirements.environments.production in modelgov.yaml)" in lines
    assert "metadata.txt: model.intended.use is missing: deploys to target serving require it " \
           "(requirements.targets.serving in modelgov.yaml)" in lines
    assert json.loads(out)["status"] == "failed" and "validate" in err
    dry = modelgov("deploy", str(example_repo), "--target", "serving", "--registry", "reg", "--config", config,
                   "--dry-run")
    assert dry.returncode == 1 and "model.risk.tier is missing: deploys to production require it" in dry.stderr
    assert not (tmp_path / "registry").exists()  # nothing published
    client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
    assert client.get_typedef("modelgov_model_build") is None  # not even our types were installed
    assert list(client.search_basic({"typeName": "ml_model_build"})) == []
    client.close()


def test_values_outside_the_accepted_ones_are_named(prefect_api, example_repo, tmp_path, atlas):
    config = write_config(tmp_path, atlas.url, "mlserver://127.0.0.1:9?repository=/nowhere", "staging", """
  risk_tier: [low, medium]""")
    write_metadata(example_repo, **RISK)
    code, _, err = deploy(example_repo, config, prefect_api)
    assert code == 1
    assert "metadata.txt:9: model.risk.tier is high: all deploys require one of low, medium " \
           "(requirements in modelgov.yaml)" in err.splitlines()
    assert not (tmp_path / "registry").exists()


def test_bad_requirements_in_modelgov_yaml_are_a_usage_error(example_repo, tmp_path, atlas):
    config = write_config(tmp_path, atlas.url, "mlserver://127.0.0.1:9?repository=/nowhere", "staging", """
  environments:
    production: {validation_status: signed-off}""")
    proc = modelgov("deploy", str(example_repo), "--target", "serving", "--registry", "reg", "--config", config)
    assert proc.returncode == 2
    assert "requirements.environments.production.validation_status: 'signed-off' is not one of pending, " \
           "approved, conditional, rejected (or 'required')" in proc.stderr


def test_accepted_values_are_recorded_on_the_build(prefect_api, example_repo, tmp_path, mlserver, atlas_server,
                                                   request):
    model = model_name_for(request, "risk-recorded")
    config = write_config(tmp_path, atlas_server.url, mlserver.target_uri(), "staging", """
  environments:
    staging: {risk_tier: required, validation_status: [approved, conditional]}""")
    write_metadata(example_repo, model_name=model, **RISK)
    code, out, err = deploy(example_repo, config, prefect_api)
    assert code == 0, err
    summary = json.loads(out)
    client = AtlasClient(AtlasSettings(url=atlas_server.url, username="admin", password="admin"))
    build = client.get_entity(summary["atlas"]["build"]["guid"])["entity"]["attributes"]
    client.close()
    assert {k: build.get(k) for k in ("riskTier", "intendedUse", "limitations", "validationStatus",
                                      "validatedBy", "validationDate")} == {
        "riskTier": "high", "intendedUse": "rank loan applications <b>for</b> review",
        "limitations": "not for applicants under 18", "validationStatus": "approved",
        "validatedBy": "Model Risk Office",
        "validationDate": int(datetime(2026, 11, 30, tzinfo=UTC).timestamp() * 1000)}
