"""Signed versions through the flow on a real MLServer (issue 21): with a trust policy, a deploy checks the
version's signature before the target is touched; an unsigned version where one is required and a version
signed by a key outside the policy are refused and recorded failed, while the target keeps serving."""

from __future__ import annotations

import pytest

from governance.cli.main import main
from governance.errors import StepFailed
from governance.trust.signing import SigningIdentity
from tests.flow.test_truth_mlserver import assert_invariant, deploy, predict, recorded, served, stage
from tests.forgery import forge_executable
from tests.signing_keys import write_key_pair

pytestmark = pytest.mark.slow


def test_the_trust_policy_decides_what_deploys(prefect_api, tmp_path, mlserver, atlas, atlas_client, monkeypatch,
                                               capsys):
    name = "signed-policy"
    publisher, publisher_pub = write_key_pair(tmp_path / "keys", "publisher")
    stranger, _ = write_key_pair(tmp_path / "keys", "stranger")
    monkeypatch.setenv("MODELGOV_TRUSTED_KEYS", str(publisher_pub))
    monkeypatch.setenv("MODELGOV_REQUIRE_SIGNATURE", "true")
    registry = tmp_path / "reg"

    monkeypatch.setenv("MODELGOV_SIGNING_KEY", str(publisher))
    first = deploy(stage(tmp_path, name, "1.0"), mlserver.target_uri(), registry, atlas)
    assert first["status"] == "deployed"
    manifest = (registry / name / "1.0" / "MANIFEST.json").read_text()
    assert SigningIdentity(publisher).signer.fingerprint in manifest
    assert (registry / name / "1.0" / "model.sig").is_file()
    before = served(mlserver, name)
    fingerprint = SigningIdentity(publisher).signer.fingerprint
    build = atlas_client.get_entity_by_unique("modelgov_model_build", f"{name}/1.0@modelgov")["entity"]
    assert (build["attributes"]["signerKind"], build["attributes"]["signerFingerprint"]) == ("key", fingerprint)
    deployment = atlas_client.get_entity(first["atlas"]["deployment"]["guid"])["entity"]
    assert deployment["attributes"]["signatureCheck"] == f"verified: signed by trusted key {fingerprint}"
    # who deployed is the identity the run proved it holds, not a typed name
    assert (deployment["attributes"]["deployedBy"], deployment["attributes"]["deployedByProof"]) == (
        f"key {fingerprint}", "signing key")
    assert main(["trace", first["atlas"]["deployment"]["guid"], "--atlas", atlas.url]) == 0
    shown = capsys.readouterr().out
    assert f"signed by key {fingerprint}" in shown and "this deploy: verified" in shown
    assert f"deployed by key {fingerprint} (signing key)" in shown

    monkeypatch.delenv("MODELGOV_SIGNING_KEY")
    with pytest.raises(StepFailed) as unsigned:
        deploy(stage(tmp_path, name, "2.0"), mlserver.target_uri(), registry, atlas)
    assert unsigned.value.step == "preflight" and "is not signed" in str(unsigned.value.cause)

    monkeypatch.setenv("MODELGOV_SIGNING_KEY", str(stranger))
    with pytest.raises(StepFailed) as untrusted:
        deploy(stage(tmp_path, name, "3.0"), mlserver.target_uri(), registry, atlas)
    assert untrusted.value.step == "preflight" and "does not list" in str(untrusted.value.cause)

    assert served(mlserver, name) == before  # nothing reached the target
    assert predict(mlserver, name, "1000000") == [0, 2]
    assert assert_invariant(mlserver, atlas_client, name).keys() == {"1.0"}
    failed = {r["modelVersion"]: r["failureReason"] for r in recorded(
        atlas_client, name, f"{mlserver.host}:{mlserver.http_port}")["stopped"]}
    assert "SignatureError" in failed["2.0"] and "not signed" in failed["2.0"]
    assert "SignatureError" in failed["3.0"] and "does not list" in failed["3.0"]

    assert main(["verify", first["atlas"]["deployment"]["guid"], "--atlas", atlas.url]) == 0
    assert f"ok  signature: valid, by trusted key {fingerprint}" in capsys.readouterr().out

    # an insider replaces 1.0's executable and rewrites its sha256 in the manifest, after 4.0 took over
    monkeypatch.setenv("MODELGOV_SIGNING_KEY", str(publisher))
    assert deploy(stage(tmp_path, name, "4.0"), mlserver.target_uri(), registry, atlas)["status"] == "deployed"
    exe = registry / name / "1.0" / "executable" / "model.joblib"
    forge_executable(registry / name / "1.0", exe.read_bytes() + b"\0")
    assert main(["registry", "verify", f"file://{registry}", name, "1.0"]) == 1
    assert "changed after it was signed" in capsys.readouterr().err
    assert main(["verify", first["atlas"]["deployment"]["guid"], "--atlas", atlas.url]) == 1
    assert "MISMATCH  signature:" in capsys.readouterr().out
    serving = served(mlserver, name)
    assert main(["rollback", name, "--to", "1.0", "--target", mlserver.target_uri(), "--reason", "test",
                 "--registry", f"file://{registry}", "--atlas", atlas.url]) == 1
    refused = capsys.readouterr()
    assert "executable/model.joblib" in refused.out + refused.err, refused
    assert served(mlserver, name) == serving and list(serving) == ["4.0"]  # the target kept serving 4.0


def test_modelgov_yaml_requires_signatures_for_a_staging_target(prefect_api, tmp_path, mlserver, atlas,
                                                               atlas_client, monkeypatch):
    """The policy from the config file alone: its staging environment requires a signature by a listed key."""
    from flows.deploy_model import deploy_model

    for var in ("MODELGOV_TRUSTED_KEYS", "MODELGOV_REQUIRE_SIGNATURE", "MODELGOV_SIGNING_KEY"):
        monkeypatch.delenv(var, raising=False)
    name = "signed-config"
    publisher, _ = write_key_pair(tmp_path / "keys", "publisher")
    config = tmp_path / "modelgov.yaml"
    config.write_text(f"targets:\n  ml:\n    uri: {mlserver.target_uri()}\n    environment: staging\n"
                      "trust:\n  environments:\n    staging:\n      require_signature: true\n"
                      "      trusted_keys: [keys/publisher.pub]\n")

    def run(version: str) -> dict:
        return deploy_model(source=str(stage(tmp_path, name, version)), target="ml",
                            registry=f"file://{tmp_path / 'reg'}", atlas_url=atlas.url, config=str(config))

    monkeypatch.setenv("MODELGOV_DEPLOYED_BY", "chief.risk.officer")
    with pytest.raises(StepFailed) as unsigned:
        run("1.0")
    assert unsigned.value.step == "preflight" and "is not signed" in str(unsigned.value.cause)
    refused = atlas_client.get_entity(unsigned.value.summary.atlas["deployment"]["guid"])["entity"]["attributes"]
    assert (refused["deployedBy"], refused["deployedByProof"]) == (
        "chief.risk.officer", "as given in MODELGOV_DEPLOYED_BY (unproven)")
    assert served(mlserver, name) == {}
    config.write_text(config.read_text() + "signing:\n  key: keys/publisher.key\n")  # the signing identity, by config
    done = run("2.0")
    assert done["status"] == "deployed"
    deployment = atlas_client.get_entity(done["atlas"]["deployment"]["guid"])["entity"]
    fingerprint = SigningIdentity(publisher).signer.fingerprint
    assert deployment["attributes"]["signatureCheck"] == f"verified: signed by trusted key {fingerprint}"
    assert deployment["attributes"]["deployedBy"] == f"key {fingerprint}"
