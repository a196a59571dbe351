"""Issue 20: the Atlas record of a model version is the reference, and nothing rewrites it.

Reproduced the way the issue found them, through `modelgov` as operators run it, on a real MLServer and the
Atlas emulator: a second registry with the same name and version but other bytes and owner, the same bytes
in a second registry (a replica), another spelling of a taken name, two version strings of one number, and a
registry whose version 1.0 had its executable replaced and its manifest rewritten to match, then rolled back
to and reconciled from. After each test the emulator's audit trail must show no build attribute changed
(``tests.record_invariant``, run by the ``atlas_emulator`` fixture)."""

from __future__ import annotations

import json
import os
import shutil
import unicodedata

import pytest
import requests

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import BUILD_TYPE, PROJECT_TYPE
from governance.targets import get_target
from tests.conftest import write_metadata
from tests.flow.conftest import model_name_for
from tests.flow.test_cli import modelgov
from tests.forgery import forge_executable
from tests.record_invariant import assert_no_build_rewritten

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def own_mlserver(tmp_path_factory):
    """An MLServer only these tests use: reconcile acts on everything a target serves."""
    from testbed.mlserver import MLServerService

    with MLServerService(tmp_path_factory.mktemp("reference-mlserver")) as service:
        yield service.server


@pytest.fixture
def env(prefect_api):
    return {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}


def stage(example_repo, tmp_path, folder, **metadata):
    repo = shutil.copytree(example_repo, tmp_path / folder)
    write_metadata(repo, **metadata)
    return repo


def deploy(repo, target, registry, atlas, env, *extra):
    return modelgov("deploy", str(repo), "--target", target, "--registry", registry, "--atlas", atlas.url,
                    "--json", *extra, env=env)


def build_of(atlas_client, name, version):
    return atlas_client.get_entity_by_unique(BUILD_TYPE, f"{name}/{version}@modelgov")["entity"]["attributes"]


def served(mlserver, name):
    return {(m.version, m.sha256) for m in get_target(mlserver.target_uri()).served(name)}


def test_second_registry_with_other_bytes_is_refused_before_anything_is_written(
        example_repo, tmp_path, own_mlserver, atlas, atlas_client, env):
    reg_a, reg_b = f"file://{tmp_path / 'reg-a'}", f"file://{tmp_path / 'reg-b'}"
    first = deploy(stage(example_repo, tmp_path, "a", model_name="ref-iris"), own_mlserver.target_uri(), reg_a,
                   atlas, env)
    assert first.returncode == 0, first.stderr[-2000:]
    before = build_of(atlas_client, "ref-iris", "1.0")
    other = stage(example_repo, tmp_path, "b", model_name="ref-iris", model_owner="Mallory")
    (other / "README.md").write_text("other bytes\n")

    proc = deploy(other, own_mlserver.target_uri(), reg_b, atlas, env)

    assert proc.returncode == 1
    assert "preflight failed" in proc.stderr and "not the version Atlas recorded" in proc.stderr
    assert before["contentDigest"] in proc.stderr and reg_a.removeprefix("file://") in proc.stderr
    assert "owner is 'Mallory', recorded 'Ana Müller'" in proc.stderr
    assert not (tmp_path / "reg-b" / "ref-iris").exists()  # refused before the registry was written
    assert build_of(atlas_client, "ref-iris", "1.0") == before
    deployment = json.loads(first.stdout)["atlas"]["deployment"]["qualifiedName"]
    check = modelgov("verify", deployment, "--atlas", atlas.url, "--json", env=env)
    assert check.returncode == 0 and json.loads(check.stdout)["agree"], check.stdout


def test_identical_bytes_in_a_second_registry_are_a_replica_not_a_rewrite(
        example_repo, tmp_path, own_mlserver, atlas_server, prefect_api, request):
    """Against the emulator and the real Atlas 2.1: the second deploy refers to the recorded build by its unique
    name (an AtlasObjectId with uniqueAttributes), which both must resolve."""
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": os.environ["ATLAS_USERNAME"],
           "ATLAS_PASSWORD": os.environ["ATLAS_PASSWORD"]}
    client = AtlasClient(AtlasSettings.from_env(atlas_server.url))
    name = model_name_for(request, "ref-replica")
    repo = stage(example_repo, tmp_path, "r", model_name=name)
    reg_a, reg_b = f"file://{tmp_path / 'reg-a'}", f"file://{tmp_path / 'reg-b'}"
    assert deploy(repo, own_mlserver.target_uri(), reg_a, atlas_server, env).returncode == 0
    before = build_of(client, name, "1.0")
    gone = modelgov("undeploy", name, "--target", own_mlserver.target_uri(), "--reason", "move registry",
                    "--atlas", atlas_server.url, env=env)
    assert gone.returncode == 0, gone.stderr

    again = deploy(repo, own_mlserver.target_uri(), reg_b, atlas_server, env)

    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["status"] == "deployed" and summary["registry_uri"].startswith(reg_b)
    assert build_of(client, name, "1.0") == before  # registryUri still names the first registry
    dep = client.get_entity_by_unique("modelgov_model_deployment",
                                      summary["atlas"]["deployment"]["qualifiedName"])["entity"]
    assert dep["attributes"]["serializedObjectUri"].startswith(reg_b)
    assert dep["relationshipAttributes"]["build"]["guid"] == summary["atlas"]["build"]["guid"] != ""
    if getattr(atlas_server, "is_real", False):
        assert_no_build_rewritten(atlas_server.url, os.environ["ATLAS_USERNAME"], os.environ["ATLAS_PASSWORD"])
    client.close()


def test_another_spelling_of_a_taken_name_and_another_string_of_a_taken_number_are_refused(
        example_repo, tmp_path, own_mlserver, atlas, atlas_client, env):
    registry = f"file://{tmp_path / 'reg'}"
    ok = deploy(stage(example_repo, tmp_path, "p1", model_name="Rental Pricing", model_version="1.2"),
                own_mlserver.target_uri(), registry, atlas, env)
    assert ok.returncode == 0, ok.stderr[-2000:]

    slug = deploy(stage(example_repo, tmp_path, "p2", model_name="rental-pricing", model_version="2.0",
                        model_owner="Mallory"), own_mlserver.target_uri(), registry, atlas, env)
    assert slug.returncode == 1
    assert "'rental-pricing' maps to the identifier 'rental-pricing'" in slug.stderr
    assert "for the model 'Rental Pricing' (owner Ana Müller)" in slug.stderr
    number = deploy(stage(example_repo, tmp_path, "p3", model_name="Rental Pricing", model_version="1.2.0"),
                    own_mlserver.target_uri(), registry, atlas, env)
    assert number.returncode == 1
    assert "model.version '1.2.0' of rental-pricing is the same version number (1002000)" in number.stderr
    assert sorted(p.name for p in (tmp_path / "reg" / "rental-pricing").iterdir()) == ["1.2"]

    nfc = "Café Scoring"
    assert deploy(stage(example_repo, tmp_path, "c1", model_name=nfc), own_mlserver.target_uri(), registry,
                  atlas, env).returncode == 0
    nfd = deploy(stage(example_repo, tmp_path, "c2", model_name=unicodedata.normalize("NFD", nfc),
                       model_version="2.0", model_owner="Mallory"), own_mlserver.target_uri(), registry, atlas, env)
    assert nfd.returncode == 1 and "already holds for the model 'Café Scoring'" in nfd.stderr
    assert {v for v, _ in served(own_mlserver, "cafe-scoring")} == {"1.0"}
    assert atlas_client.get_entity_by_unique(PROJECT_TYPE, "cafe-scoring@modelgov")["entity"]["attributes"]["name"] == nfc


def forge(registry_root, name, version, *, owner):
    """Replace the version's executable and rewrite its manifest to match (sha256, size, owner): what someone
    who can write the registry does to make `registry verify` pass."""
    forge_executable(registry_root / name / version, b"forged model bytes", owner=owner)


def test_rollback_and_reconcile_refuse_a_rewritten_registry_version(
        example_repo, tmp_path, own_mlserver, atlas, atlas_client, env):
    registry_root = tmp_path / "reg"
    registry = f"file://{registry_root}"
    target = own_mlserver.target_uri()
    for version in ("1.0", "2.0"):
        proc = deploy(stage(example_repo, tmp_path, version, model_name="ref-roll", model_version=version),
                      target, registry, atlas, env)
        assert proc.returncode == 0, proc.stderr[-2000:]
    first_deployment = next(h["attributes"]["qualifiedName"] for h in atlas_client.search_basic(
        {"typeName": "modelgov_model_deployment", "attributes": ["qualifiedName", "modelVersion"],
         "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": "ref-roll"}})
        if h["attributes"]["modelVersion"] == "1.0")
    builds = {v: build_of(atlas_client, "ref-roll", v) for v in ("1.0", "2.0")}
    serving = served(own_mlserver, "ref-roll")
    forge(registry_root, "ref-roll", "1.0", owner="Mallory")

    assert modelgov("registry", "verify", registry, "ref-roll", "1.0").returncode == 0  # the forgery is consistent
    against = modelgov("registry", "verify", registry, "ref-roll", "1.0", "--atlas", atlas.url, env=env)
    assert against.returncode == 1 and "owner is 'Mallory', recorded 'Ana Müller'" in against.stderr
    verify = modelgov("verify", first_deployment, "--atlas", atlas.url, "--json", env=env)
    mismatches = json.loads(verify.stdout)["mismatches"]
    assert any("has sha256" in m for m in mismatches) and any("content digest" in m for m in mismatches)

    back = modelgov("rollback", "ref-roll", "--to", "1.0", "--target", target, "--reason", "2.0 misbehaves",
                    "--registry", registry, "--atlas", atlas.url, "--json", env=env)
    assert back.returncode == 1 and "not the version Atlas recorded" in back.stderr
    assert served(own_mlserver, "ref-roll") == serving  # the target keeps serving 2.0
    assert {v: build_of(atlas_client, "ref-roll", v) for v in ("1.0", "2.0")} == builds
    refused = [h["attributes"] for h in atlas_client.search_basic(
        {"typeName": "modelgov_model_deployment", "attributes": ["status", "outcome", "failureReason", "owner",
                                                                  "deployReason"],
         "entityFilters": {"attributeName": "deployReason", "operator": "=", "attributeValue": "rollback: 2.0 misbehaves"}})]
    assert [(r["status"], r["outcome"], r["owner"]) for r in refused] == [("stopped", "failed", "Ana Müller")]
    assert refused[0]["failureReason"].startswith("RecordMismatch:")

    # reconcile: 2.0 is forged too and unloaded behind our back; the redeploy from the registry is refused
    forge(registry_root, "ref-roll", "2.0", owner="Mallory")
    requests.post(f"{own_mlserver.url}/v2/repository/models/ref-roll/unload", timeout=30).raise_for_status()
    rec = modelgov("reconcile", "--target", target, "--registry", registry, "--atlas", atlas.url, "--json", env=env)
    findings = [f for f in map(json.loads, rec.stdout.splitlines()) if f["model"] == "ref-roll"]
    assert rec.returncode == 1 and [(f["kind"], f["action"]) for f in findings] == [("missing", "failed")]
    assert "not the version Atlas recorded" in findings[0]["detail"]
    assert not served(own_mlserver, "ref-roll")  # the forged bytes were never loaded
    assert {v: build_of(atlas_client, "ref-roll", v) for v in ("1.0", "2.0")} == builds
