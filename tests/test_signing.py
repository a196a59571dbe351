"""Signed registry versions (issue 21), as an operator and an insider meet them: ``model.sig`` written at
publish verifies with the upstream ``model_signing`` CLI on a copy of the version folder; ``modelgov registry
verify`` reports the signature's state and refuses a version whose file was changed and manifest rewritten,
an untrusted signer, and an unsigned version where a signature is required."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from governance.cli.main import main
from governance.errors import ConfigError, RegistryError
from governance.registries.file import FileRegistry
from governance.staging.validate import validate_repo
from governance.trust.signing import SIGNATURE_FILE, SigningIdentity
from tests.forgery import forge_executable
from tests.signing_keys import write_certificate_chain, write_key_pair

UPSTREAM_CLI = Path(sys.executable).parent / "model_signing"


@pytest.fixture
def keys(tmp_path):
    return {name: write_key_pair(tmp_path / "keys", name) for name in ("publisher", "stranger")}


@pytest.fixture
def signed(example_repo, tmp_path, keys):
    """The example published to a file registry, signed by the publisher's key."""
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    version = registry.publish(validate_repo(example_repo), signing=SigningIdentity(keys["publisher"][0]))
    return registry, version


def registry_verify(registry, version, monkeypatch, **env) -> int:
    for key in ("MODELGOV_TRUSTED_KEYS", "MODELGOV_REQUIRE_SIGNATURE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    m = version.manifest
    return main(["registry", "verify", registry.uri, m.model_name, m.model_version])


def test_the_upstream_cli_verifies_model_sig_on_a_copy_of_the_version_folder(signed, keys, tmp_path):
    _, version = signed
    folder = Path(version.location.removeprefix("file://"))
    copy = tmp_path / "copy" / folder.name
    shutil.copytree(folder, copy)
    ok = subprocess.run([str(UPSTREAM_CLI), "verify", "key", str(copy), "--public_key", str(keys["publisher"][1]),
                         "--signature", str(copy / SIGNATURE_FILE)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout + ok.stderr, ok.stderr
    wrong = subprocess.run([str(UPSTREAM_CLI), "verify", "key", str(copy), "--public_key",
                            str(keys["stranger"][1]), "--signature", str(copy / SIGNATURE_FILE)],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0


def test_registry_verify_names_the_trusted_signer(signed, keys, monkeypatch, capsys):
    registry, version = signed
    assert registry_verify(registry, version, monkeypatch, MODELGOV_TRUSTED_KEYS=str(keys["publisher"][1])) == 0
    fingerprint = SigningIdentity(keys["publisher"][0]).signer.fingerprint
    assert f"signature valid, by trusted key {fingerprint}" in capsys.readouterr().out
    assert registry_verify(registry, version, monkeypatch) == 0  # no policy: said, not checked
    assert f"signed by key {fingerprint}, not checked (set MODELGOV_TRUSTED_KEYS" in capsys.readouterr().out


def test_a_changed_file_with_its_manifest_rewritten_is_refused(signed, keys, monkeypatch, capsys):
    """The insider's move: replace the executable and rewrite its sha256 in the manifest. The checksums agree
    again, the signature does not."""
    registry, version = signed
    forge_executable(Path(version.location.removeprefix("file://")), b"not the model that was signed")

    assert registry_verify(registry, version, monkeypatch, MODELGOV_TRUSTED_KEYS=str(keys["publisher"][1])) == 1
    err = capsys.readouterr().err
    assert f"{version.manifest.executable} has sha256" in err and "changed after it was signed" in err


def test_an_untrusted_signer_and_a_missing_signature_are_refused_where_required(example_repo, tmp_path, keys,
                                                                                monkeypatch, capsys):
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    theirs = registry.publish(validate_repo(example_repo), signing=SigningIdentity(keys["stranger"][0]))
    assert registry_verify(registry, theirs, monkeypatch, MODELGOV_TRUSTED_KEYS=str(keys["publisher"][1])) == 1
    assert "which the trust policy (MODELGOV_TRUSTED_KEYS, trust: in modelgov.yaml) does not list" in capsys.readouterr().err

    other = tmp_path / "other"
    shutil.copytree(example_repo, other)
    (other / "metadata.txt").write_text((other / "metadata.txt").read_text().replace("1.0", "2.0"))
    unsigned = registry.publish(validate_repo(other))
    assert registry_verify(registry, unsigned, monkeypatch) == 0
    assert "unsigned" in capsys.readouterr().out
    assert registry_verify(registry, unsigned, monkeypatch, MODELGOV_REQUIRE_SIGNATURE="true") == 1
    assert "is not signed (no model.sig) and MODELGOV_REQUIRE_SIGNATURE requires a signature" in capsys.readouterr().err


def test_keys_model_signing_cannot_use_are_usage_errors(tmp_path, example_repo):
    ed_key, _ = write_key_pair(tmp_path / "keys", "ed", ed25519_key=True)
    with pytest.raises(ConfigError, match="needs an ECDSA key on P-256, P-384 or P-521"):
        SigningIdentity.from_env({"MODELGOV_SIGNING_KEY": str(ed_key)})
    with pytest.raises(ConfigError, match="cannot be read"):
        SigningIdentity.from_env({"MODELGOV_SIGNING_KEY": str(tmp_path / "missing.pem")})
    assert SigningIdentity.from_env({}) is None


def test_a_staged_file_named_like_the_signature_is_refused_when_signing(example_repo, tmp_path, keys):
    (example_repo / SIGNATURE_FILE).write_text("{}")
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    with pytest.raises(RegistryError, match="cannot hold a file named model.sig"):
        registry.publish(validate_repo(example_repo), signing=SigningIdentity(keys["publisher"][0]))
    assert not (tmp_path / "registry").exists() or not any((tmp_path / "registry").rglob("MANIFEST.json"))


def test_trust_init_makes_a_key_pair_that_signs_and_verifies_and_never_overwrites(example_repo, tmp_path, capsys,
                                                                                monkeypatch):
    """The one-command start for a new person or service: the key it makes signs a publish the policy it
    prints accepts."""
    monkeypatch.delenv("MODELGOV_SIGNING_KEY_PASSWORD", raising=False)
    assert main(["trust", "init", "alice", "--dir", str(tmp_path / "keys")]) == 0
    out = capsys.readouterr().out
    private, public = tmp_path / "keys" / "alice.key", tmp_path / "keys" / "alice.pub"
    assert f"export MODELGOV_SIGNING_KEY={private}" in out and f"export MODELGOV_TRUSTED_KEYS={public}" in out
    assert private.stat().st_mode & 0o777 == 0o600
    identity = SigningIdentity.from_env({"MODELGOV_SIGNING_KEY": str(private)})
    assert f"fingerprint {identity.signer.fingerprint}" in out

    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    version = registry.publish(validate_repo(example_repo), signing=identity)
    assert registry_verify(registry, version, monkeypatch, MODELGOV_TRUSTED_KEYS=str(public),
                           MODELGOV_REQUIRE_SIGNATURE="true") == 0
    assert "signature valid, by trusted key" in capsys.readouterr().out

    before = private.read_bytes()
    assert main(["trust", "init", "alice", "--dir", str(tmp_path / "keys")]) == 2
    assert "never overwritten" in capsys.readouterr().err and private.read_bytes() == before


def test_an_encrypted_key_signs_with_its_password_from_the_environment(example_repo, tmp_path, monkeypatch,
                                                                       capsys):
    """Found by the planted-secret scan: model-signing passed the password on as text and the publish failed."""
    monkeypatch.setenv("MODELGOV_SIGNING_KEY_PASSWORD", "correct horse")
    assert main(["trust", "init", "svc", "--dir", str(tmp_path / "keys")]) == 0
    assert "encrypted with MODELGOV_SIGNING_KEY_PASSWORD" in capsys.readouterr().out
    key, pub = tmp_path / "keys" / "svc.key", tmp_path / "keys" / "svc.pub"
    with pytest.raises(ConfigError, match="password"):
        SigningIdentity.from_env({"MODELGOV_SIGNING_KEY": str(key)})
    identity = SigningIdentity.from_env({"MODELGOV_SIGNING_KEY": str(key),
                                         "MODELGOV_SIGNING_KEY_PASSWORD": "correct horse"})
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    version = registry.publish(validate_repo(example_repo), signing=identity)
    assert registry_verify(registry, version, monkeypatch, MODELGOV_TRUSTED_KEYS=str(pub)) == 0


@pytest.fixture
def certificate_signed(example_repo, tmp_path):
    chain = write_certificate_chain(tmp_path / "pki")
    identity = SigningIdentity.from_env({"MODELGOV_SIGNING_KEY": str(chain["key"]),
                                         "MODELGOV_SIGNING_CERT": str(chain["cert"])})
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    return chain, registry, registry.publish(validate_repo(example_repo), signing=identity)


def test_a_certificate_signature_verifies_upstream_and_against_a_ca_and_a_pinned_subject(certificate_signed,
                                                                                         tmp_path, monkeypatch,
                                                                                         capsys):
    chain, registry, version = certificate_signed
    assert version.manifest.signer["kind"] == "certificate"
    assert version.manifest.signer["subject"] == chain["subject"] == "CN=model-publisher,O=modelgov tests"
    folder = Path(version.location.removeprefix("file://"))
    ok = subprocess.run([str(UPSTREAM_CLI), "verify", "certificate", str(folder), "--certificate_chain",
                         str(chain["ca"]), "--signature", str(folder / SIGNATURE_FILE)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout + ok.stderr, ok.stderr

    assert registry_verify(registry, version, monkeypatch, MODELGOV_TRUSTED_CA=str(chain["ca"]),
                           MODELGOV_TRUSTED_IDENTITIES=chain["subject"]) == 0
    assert f"signature valid, by trusted certificate {chain['subject']} (sha256:" in capsys.readouterr().out


@pytest.mark.parametrize("policy, says", [
    ({"MODELGOV_TRUSTED_IDENTITIES": "CN=model-publisher,O=modelgov tests"}, "trusts no certificate authority"),
    ({"MODELGOV_TRUSTED_IDENTITIES": "CN=someone-else"}, "is not a pinned identity"),
    ({"MODELGOV_TRUSTED_IDENTITIES": "CN=model-publisher,O=modelgov tests", "other_ca": True}, "does not verify"),
])
def test_a_certificate_signature_outside_the_policy_is_refused(certificate_signed, tmp_path, monkeypatch, capsys,
                                                               policy, says):
    chain, registry, version = certificate_signed
    env = {k: v for k, v in policy.items() if k != "other_ca"}
    if "MODELGOV_TRUSTED_IDENTITIES" in env and says != "trusts no certificate authority":
        ca = write_certificate_chain(tmp_path / "other", cn="stranger")["ca"] if policy.get("other_ca") else chain["ca"]
        env["MODELGOV_TRUSTED_CA"] = str(ca)
    else:
        env["MODELGOV_REQUIRE_SIGNATURE"] = "true"
    for key in ("MODELGOV_TRUSTED_CA", "MODELGOV_TRUSTED_IDENTITIES"):
        monkeypatch.delenv(key, raising=False)
    assert registry_verify(registry, version, monkeypatch, **env) == 1
    assert says in capsys.readouterr().err


def test_a_signed_version_copied_over_another_is_refused(example_repo, tmp_path, keys, monkeypatch, capsys):
    """Each copy is consistent with its own signature; what gives it away is that it describes another version."""
    registry = FileRegistry(f"file://{tmp_path / 'registry'}")
    identity = SigningIdentity(keys["publisher"][0])
    registry.publish(validate_repo(example_repo), signing=identity)
    other = tmp_path / "other"
    shutil.copytree(example_repo, other)
    (other / "metadata.txt").write_text((other / "metadata.txt").read_text().replace("1.0", "2.0"))
    (other / "executable" / "model.joblib").write_bytes(b"the 2.0 bytes")
    two = registry.publish(validate_repo(other), signing=identity)
    folder = Path(two.location.removeprefix("file://")).parent
    shutil.rmtree(folder / "1.0")
    shutil.copytree(folder / "2.0", folder / "1.0")
    assert main(["registry", "verify", registry.uri, two.manifest.model_name, "1.0"]) == 1
    assert "describes iris-classifier 2.0, not iris-classifier 1.0" in capsys.readouterr().err
