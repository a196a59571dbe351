"""The registry contract, run unchanged against S3 (real radosgw and moto) and HDFS (real and the WebHDFS emulator)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest

from governance.errors import ImmutableVersionError, IntegrityError
from governance.registries import get_registry
from governance.registries.base import MANIFEST_NAME

EXTRA = {"examples/request.json": b'{"inputs": [1, 2]}', "data/notes.txt": b"trained on 2026-01 data\n"}


def test_publish_lookup_and_manifest(backend, make_staged):
    staged = make_staged(extra=EXTRA)
    version = backend.registry.publish(staged)
    assert version.created
    assert version.location.endswith("/models/iris/1")
    found = backend.registry.lookup("iris", "1")
    assert found is not None and found.created is False
    assert found.manifest.same_content(staged.files)
    assert found.manifest.commit == "0123abcd" and found.manifest.executable == "executable/model.joblib"
    raw = json.loads(backend.get_raw(f"iris/1/{MANIFEST_NAME}"))
    assert {f["path"]: f["sha256"] for f in raw["files"]} == {f.path: f.sha256 for f in staged.files}
    data = f"iris/1/{found.manifest.data_dir}/" if found.manifest.data_dir else "iris/1/"
    assert backend.list_raw() == sorted([f"{data}{f.path}" for f in staged.files] + [f"iris/1/{MANIFEST_NAME}"])
    assert backend.get_raw(f"{data}examples/request.json") == EXTRA["examples/request.json"]
    assert b"".join(backend.registry.open_artifact(found, staged.executable)) == b"model-bytes" * 100
    assert backend.registry.verify(found) == []
    assert backend.registry.lookup("iris", "2") is None


def test_same_bytes_again_is_a_no_op(backend, make_staged):
    first = backend.registry.publish(make_staged())
    again = backend.registry.publish(make_staged())
    assert again.created is False
    assert again.manifest == first.manifest  # the stored manifest, published_at included, is untouched


def test_different_bytes_are_refused_and_original_kept(backend, make_staged):
    original = backend.registry.publish(make_staged(model=b"original"))
    before = backend.list_raw()
    with pytest.raises(ImmutableVersionError, match="executable/model.joblib"):
        backend.registry.publish(make_staged(model=b"tampered"))
    assert backend.list_raw() == before
    assert b"".join(backend.registry.open_artifact(original, original.manifest.executable)) == b"original"
    version = backend.registry.lookup("iris", "1")
    assert backend.registry.verify(version) == []


def test_incomplete_version_is_invisible_and_gc_removes_it(backend, make_staged):
    # objects without a manifest (a copy by hand, an old modelgov): not a version, and gc removes them
    backend.put_raw("iris/1/executable/model.joblib", b"partial")
    backend.put_raw("iris/1/leftover.bin", b"stale")
    assert backend.registry.lookup("iris", "1") is None
    assert backend.registry.gc(older_than=timedelta(days=1)) == []  # too young: maybe a running publish
    removed = backend.registry.gc(older_than=timedelta(0))
    assert removed and all("/iris/1" in lo.uri for lo in removed)
    assert backend.list_raw() == []
    version = backend.registry.publish(make_staged())
    assert version.created
    assert b"".join(backend.registry.open_artifact(version, version.manifest.executable)) == b"model-bytes" * 100
    assert backend.registry.verify(version) == []


def test_verify_detects_tampering(backend, make_staged):
    version = backend.registry.publish(make_staged(extra=EXTRA))
    data = f"{version.manifest.data_dir}/" if version.manifest.data_dir else ""
    backend.put_raw(f"iris/1/{data}data/notes.txt", b"trained on 2026-02 data\n")  # same size, other bytes
    problems = backend.registry.verify(version)
    assert len(problems) == 1 and "data/notes.txt" in problems[0] and "sha256" in problems[0]


def test_verify_reports_missing_file(backend, make_staged):
    version = backend.registry.publish(make_staged(extra=EXTRA))
    missing = version.manifest.files[0].path
    broken = version.__class__(version.registry_uri, version.location, version.manifest.__class__(
        **{**version.manifest.__dict__, "files": (*version.manifest.files,
                                                   type(version.manifest.files[0])("gone.bin", "0" * 64, 1))}))
    problems = backend.registry.verify(broken)
    assert len(problems) == 1 and "gone.bin" in problems[0] and "cannot be read" in problems[0]
    assert missing


def test_file_changed_after_validation_raises_integrity_error(backend, make_staged):
    staged = make_staged(model=b"A" * 5000)
    (staged.root / staged.executable).write_bytes(b"B" * 5000)
    with pytest.raises(IntegrityError, match="changed after validation"):
        backend.registry.publish(staged)
    assert backend.registry.lookup("iris", "1") is None
    assert not any(p.endswith(MANIFEST_NAME) for p in backend.list_raw())


def test_get_registry_picks_the_backend(backend):
    assert type(get_registry(backend.registry.uri)) is type(backend.registry)


def test_a_version_describes_itself(backend, make_staged):
    """Metadata and examples travel in the manifest, so a version can be deployed again from the registry alone."""
    from governance.deploy.release import release_from_registry

    staged = make_staged(extra={"examples/request.json": b'{"inputs": [1, 2]}',
                                "examples/response.json": b'{"outputs": [3]}'})
    backend.registry.publish(staged)
    release = release_from_registry(backend.registry, "iris", "1")
    assert release.metadata == staged.metadata
    assert (release.example_request, release.example_response) == ({"inputs": [1, 2]}, {"outputs": [3]})
    assert release.registered.manifest.same_content(staged.files)


def test_a_signed_publish_names_its_signer_and_any_later_change_is_refused(backend, make_staged, tmp_path):
    """Issue 21: model.sig is written before the commit, beside the files; a file changed afterwards, with the
    manifest rewritten to match it (what a registry writer can do), no longer matches the signature."""
    from governance.trust.signing import SIGNATURE_FILE, SignatureError, SigningIdentity, TrustPolicy
    from tests.signing_keys import write_key_pair

    private, public = write_key_pair(tmp_path / "keys", "publisher")
    identity = SigningIdentity(private)
    policy = TrustPolicy.from_env({"MODELGOV_TRUSTED_KEYS": str(public)})
    version = backend.registry.publish(make_staged(extra=EXTRA), signing=identity)
    found = backend.registry.lookup("iris", "1")
    assert found.manifest.signer == identity.signer.to_dict()
    assert backend.registry.check_signature(found, policy) == identity.signer
    data = f"iris/1/{found.manifest.data_dir}/" if found.manifest.data_dir else "iris/1/"
    assert f"{data}{SIGNATURE_FILE}" in backend.list_raw() and version.manifest.signer

    backend.put_raw(f"{data}data/notes.txt", b"trained on 2026-02 data\n")  # same size, other bytes
    raw = json.loads(backend.get_raw(f"iris/1/{MANIFEST_NAME}"))
    import hashlib

    for entry in raw["files"]:
        if entry["path"] == "data/notes.txt":
            entry["sha256"] = hashlib.sha256(b"trained on 2026-02 data\n").hexdigest()
    backend.put_raw(f"iris/1/{MANIFEST_NAME}", json.dumps(raw).encode())
    forged = backend.registry.lookup("iris", "1")
    assert backend.registry.verify(forged) == []  # the checksums alone cannot tell
    with pytest.raises(SignatureError, match=r"data/notes.txt has sha256 .* \(changed after it was signed\)"):
        backend.registry.check_signature(forged, policy)


def test_signed_approvals_are_kept_beside_the_version_create_only_and_survive_gc(backend, make_staged, tmp_path):
    """Issue 21: an approval is kept outside the version folder (which stays what was signed), named by its
    sha256; keeping it again is a no-op, an object rewritten under its name is refused and reported, gc never
    removes it, and the version still verifies."""
    from governance.errors import RegistryError
    from governance.trust.approvals import ApprovalSubject, check_kept_approval, sign_approval
    from governance.trust.signing import SigningIdentity
    from tests.signing_keys import write_key_pair

    version = backend.registry.publish(make_staged(extra=EXTRA))
    private, public = write_key_pair(tmp_path / "keys", "approver")
    approver = SigningIdentity(private)
    subject = ApprovalSubject("iris", "1", version.manifest.content_digest, "mlserver://h:1", "production", "run-1")
    statement = sign_approval(approver, subject, True, "validated")
    uri = backend.registry.keep_approval(version, statement)
    digest = hashlib.sha256(statement.encode()).hexdigest()
    assert uri == f"{backend.registry.uri}/iris/.approvals/1/{digest}.dsse.json"
    assert backend.registry.keep_approval(version, statement) == uri  # the same statement again: a no-op
    assert backend.registry.kept_approvals(version) == [(uri, statement.encode())]
    assert f"iris/.approvals/1/{digest}.dsse.json" in backend.list_raw()
    approvers = {approver.signer.fingerprint: public}
    [(where, data)] = backend.registry.kept_approvals(version)
    kept = check_kept_approval(where, data, "iris", "1", version.manifest.content_digest, approvers)
    assert (kept.problem, kept.decision, kept.approver, kept.run_id, kept.checked) == (
        None, "approved", f"key {approver.signer.fingerprint}", "run-1", True)

    assert backend.registry.gc(older_than=timedelta(0)) == []  # never a leftover
    assert backend.registry.verify(backend.registry.lookup("iris", "1")) == []

    forged = statement.encode() + b" "  # one byte more: the name no longer matches
    backend.put_raw(f"iris/.approvals/1/{digest}.dsse.json", forged)
    with pytest.raises(RegistryError, match="exists with other bytes than the approval"):
        backend.registry.keep_approval(version, statement)
    [(where, data)] = backend.registry.kept_approvals(version)
    assert "do not match the sha256 it is named by" in check_kept_approval(
        where, data, "iris", "1", version.manifest.content_digest, approvers).problem
    # a correctly named statement for other bytes is reported too
    other = sign_approval(approver, ApprovalSubject("iris", "1", "0" * 64, "mlserver://h:1", "production", "run-2"),
                          True)
    other_uri = backend.registry.keep_approval(version, other)
    found = dict(backend.registry.kept_approvals(version))
    assert "made for other bytes" in check_kept_approval(
        other_uri, found[other_uri], "iris", "1", version.manifest.content_digest, approvers).problem
