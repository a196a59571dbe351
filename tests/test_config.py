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


TRUST = """
targets:
  ml-staging:
    uri: mlserver://127.0.0.1:8080?repository=/srv/models
    environment: staging
  ml-lab: mlserver://127.0.0.1:9090?repository=/srv/lab
trust:
  trusted_keys: [keys/publisher.pub]
  environments:
    production: {require_signature: true, trusted_keys: [keys/release.pub]}
  targets:
    ml-staging: {require_signature: true}
"""


def test_the_trust_policy_per_environment_and_target_the_stricter_wins(tmp_path):
    """Issue 21: modelgov.yaml's trust: a default level, per-environment and per-target levels; keys relative to
    the config file; every level's keys are trusted and a signature is required when any level requires one."""
    config = load_config(write(tmp_path, TRUST))
    keys = tmp_path.resolve() / "keys"
    staging = config.trust_for("ml-staging", "staging")
    assert staging.trusted_keys == (str(keys / "publisher.pub"),) and staging.require_signature
    lab = config.trust_for("ml-lab", None)
    assert lab.trusted_keys == (str(keys / "publisher.pub"),) and not lab.require_signature
    prod = config.trust_for("ml-lab", "production")
    assert prod.trusted_keys == (str(keys / "publisher.pub"), str(keys / "release.pub")) and prod.require_signature
    by_uri = config.trust_for("mlserver://127.0.0.1:8080?repository=/srv/models", "staging")
    assert by_uri.require_signature  # the URI of a named target is that target


@pytest.mark.parametrize("section, says", [
    ("trust:\n  requires_signature: true\n", "trust has trusted_keys, require_signature, trusted_cas, identities, approvers, approver_cas"),
    ("trust:\n  require_signature: 'yes'\n", "trust.require_signature: true or false"),
    ("trust:\n  environments:\n    qa: {require_signature: true}\n", "trust.environments.qa: environments are"),
    ("trust:\n  targets:\n    nowhere: {require_signature: true}\n", "trust.targets.nowhere names no target"),
    ("trust:\n  trusted_keys: {a: b}\n", "trust.trusted_keys: a list of public key files"),
])
def test_a_bad_trust_section_names_the_field(tmp_path, section, says):
    with pytest.raises(ConfigError, match=says):
        load_config(write(tmp_path, section))


def test_the_signing_identity_from_modelgov_yaml_and_the_environment_winning(tmp_path, monkeypatch):
    from governance.trust.signing import SigningIdentity
    from tests.signing_keys import write_key_pair

    mine, _ = write_key_pair(tmp_path / "keys", "host")
    theirs, _ = write_key_pair(tmp_path / "keys", "env")
    config = load_config(write(tmp_path, "signing:\n  key: keys/host.key\n"))
    assert config.signing.key == str(mine.resolve())
    monkeypatch.delenv("MODELGOV_SIGNING_KEY", raising=False)
    assert SigningIdentity.load(config.signing).key_path == mine.resolve()
    monkeypatch.setenv("MODELGOV_SIGNING_KEY", str(theirs))
    assert SigningIdentity.load(config.signing).key_path == theirs
    with pytest.raises(ConfigError, match="signing.password: secrets do not belong in modelgov.yaml"):
        load_config(write(tmp_path, "signing:\n  key: keys/host.key\n  password: hunter2\n"))


def test_requirements_of_every_level_that_applies_to_a_deploy(tmp_path):
    path = write(tmp_path, """
targets:
  prod: {uri: "mlserver://p:1?repository=/m", environment: production}
  lab: "mlserver://l:1?repository=/m"
requirements:
  intended_use: required
  environments:
    production: {risk_tier: required, validation_status: approved}
  targets:
    prod: {risk_tier: [low, medium]}
""")
    config = load_config(path)

    def rules(target, environment):
        return [(r.key, r.accepted, r.level) for r in config.requirements_for(target, environment)]

    assert rules("lab", "staging") == [("model.intended.use", (), "requirements")]
    assert rules("mlserver://p:1?repository=/m", "production") == [  # the named target, given by its URI
        ("model.intended.use", (), "requirements"),
        ("model.risk.tier", (), "requirements.environments.production"),
        ("model.validation.status", ("approved",), "requirements.environments.production"),
        ("model.risk.tier", ("low", "medium"), "requirements.targets.prod")]
    for bad, message in (("requirements: {environments: {prod: {risk_tier: required}}}",
                          "requirements.environments.prod: environments are production, staging"),
                         ("requirements: {targets: {nope: {risk_tier: required}}}",
                          "requirements.targets.nope names no target in targets:"),
                         ("requirements: {owner: required}", "requirements: give any of risk_tier, "
                                                             "validation_status, intended_use, limitations"),
                         ("requirements: {risk_tier: [extreme]}",
                          "requirements.risk_tier: 'extreme' is not one of high, medium, low (or 'required')"),
                         ("requirements: {limitations: yes}", "requirements.limitations: give 'required', not True")):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, bad))
        assert message in str(info.value), bad
