import json
import subprocess
import sys

import pytest

from governance.config import load_config
from governance.errors import ConfigError
from tests.conftest import ROOT

CONFIG = """
atlas:
  url: ${TEST_ATLAS_URL}
  namespace: prod
registries:
  models-s3: s3://ml-registry/models
targets:
  kserve-prod:
    uri: kserve://models?context=${TEST_KUBE_CONTEXT}
    environment: production
  local: mlserver://127.0.0.1:8080?repository=/srv/models
defaults:
  registry: models-s3
  target: kserve-prod
"""


def write(tmp_path, text):
    path = tmp_path / "modelgov.yaml"
    path.write_text(text)
    return path


def test_named_entries_defaults_and_env_expansion(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ATLAS_URL", "https://atlas.corp:21443")
    monkeypatch.setenv("TEST_KUBE_CONTEXT", "prod-cluster")
    config = load_config(write(tmp_path, CONFIG))
    assert config.atlas_url == "https://atlas.corp:21443" and config.namespace == "prod"
    assert config.registry_uri(None) == "s3://ml-registry/models"
    target = config.target(None)
    assert (target.uri, target.environment) == ("kserve://models?context=prod-cluster", "production")
    assert config.target("local").uri.startswith("mlserver://")
    assert config.target("mleap://h:1?bundle_dir=/b").uri == "mleap://h:1?bundle_dir=/b"


def test_unknown_names_list_the_defined_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ATLAS_URL", "x")
    config = load_config(write(tmp_path, CONFIG))
    with pytest.raises(ConfigError, match=r"target 'nope' is not defined .*defined: kserve-prod, local"):
        config.target("nope")
    with pytest.raises(ConfigError, match="TEST_KUBE_CONTEXT is not set"):
        config.target("kserve-prod")


def test_secrets_in_the_file_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"atlas\.password: secrets do not belong"):
        load_config(write(tmp_path, "atlas:\n  url: http://a\n  password: hunter2\n"))


def test_bad_yaml_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"modelgov.yaml:3: not valid YAML"):
        load_config(write(tmp_path, "targets:\n  a: x\n   b: [\n"))


def test_missing_explicit_config(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_dry_run_renders_kserve_manifest_from_config(tmp_path, monkeypatch):
    config = write(tmp_path, CONFIG.replace("${TEST_ATLAS_URL}", "http://atlas:21000")
                   .replace("${TEST_KUBE_CONTEXT}", "prod"))
    proc = subprocess.run([sys.executable, "-m", "governance", "deploy", str(ROOT / "staging_template" / "example"),
                           "--config", str(config), "--registry", f"file://{tmp_path}/r", "--target",
                           "local", "--dry-run", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout)
    assert planned["registry_uri"] == f"file://{tmp_path}/r/iris-classifier/1.0"
    assert planned["registry_state"] == "new" and planned["rendered"] is None
    assert not (tmp_path / "r").exists()


def test_resolve_run_explicit_values_win_then_config_then_defaults(tmp_path, monkeypatch):
    from governance.deploy.request import resolve_run

    monkeypatch.setenv("TEST_ATLAS_URL", "https://atlas.corp:21443")
    monkeypatch.setenv("TEST_KUBE_CONTEXT", "prod-cluster")
    path = write(tmp_path, CONFIG)
    run = resolve_run(config=path)
    assert (run.target_uri, run.registry_uri, run.atlas_url, run.environment, run.namespace) == (
        "kserve://models?context=prod-cluster", "s3://ml-registry/models", "https://atlas.corp:21443",
        "production", "prod")
    run = resolve_run("local", "file:///r", "http://a:1", "staging", "ns2", config=path)
    assert (run.target_uri, run.registry_uri, run.atlas_url, run.environment, run.namespace) == (
        "mlserver://127.0.0.1:8080?repository=/srv/models", "file:///r", "http://a:1", "staging", "ns2")
    monkeypatch.setenv("MODELGOV_CONFIG", str(path))
    assert resolve_run("local").namespace == "prod"  # $MODELGOV_CONFIG, as a worker sees it
    monkeypatch.delenv("MODELGOV_CONFIG")
    monkeypatch.chdir(tmp_path / "..")
    assert resolve_run("mlserver://h:1?repository=/m", "file:///r").namespace == "modelgov"
    with pytest.raises(ConfigError, match="environment must be one of"):
        resolve_run("local", "file:///r", environment="prod", config=path)


def test_only_targets_marked_production_require_approval(tmp_path, monkeypatch):
    from governance.deploy.request import resolve_run

    monkeypatch.setenv("TEST_ATLAS_URL", "x")
    monkeypatch.setenv("TEST_KUBE_CONTEXT", "c")
    path = write(tmp_path, CONFIG)
    assert resolve_run("kserve-prod", config=path).approval_required
    assert not resolve_run("local", config=path).approval_required
    # the flag classifies the deployment; the approval policy belongs to the target's configuration
    assert not resolve_run("local", environment="production", config=path).approval_required


def test_state_dir_for_the_outbox_from_the_environment_then_modelgov_yaml(tmp_path, monkeypatch):
    from governance.config import state_dir
    from governance.deploy.outbox import Outbox

    config = tmp_path / "modelgov.yaml"
    config.write_text(f"state_dir: {tmp_path / 'from-yaml'}\n")
    monkeypatch.setenv("MODELGOV_CONFIG", str(config))
    monkeypatch.delenv("MODELGOV_STATE_DIR")
    assert state_dir() == tmp_path / "from-yaml"
    monkeypatch.setenv("MODELGOV_STATE_DIR", str(tmp_path / "from-env"))
    assert Outbox().folder == tmp_path / "from-env" / "outbox"
