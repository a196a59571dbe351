"""`modelgov evidence`: one pack per deployment (or per model and window) holding the card, the BOM, the history,
the audit report, Atlas's audit events, the registry manifest, model.sig and the kept signed approvals, with a
signed SHA256SUMS; `modelgov evidence verify` checks it with Atlas stopped, the registry moved away and every
socket refused, and names the file that changed by one byte.

The history is deployed the way a user deploys (the saga, test_card's git staged repos, a publisher's signing
key, an approver's signed approval kept in the registry, 1.0 replaced by 1.1 on an MLeap stand-in)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import socket
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from emulators.atlas import AtlasEmulator
from emulators.mleap import MleapServingEmulator
from governance.compliance import pack as pack_module
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest
from governance.deploy.saga import SagaHooks, run_deploy
from governance.trust.approvals import ApprovalSubject, sign_approval
from governance.trust.signing import SigningIdentity, SigningSettings, TrustSettings
from tests.compliance.test_safe_output import cli
from tests.flow.test_card import stage
from tests.signing_keys import write_key_pair

pytestmark = pytest.mark.slow


@dataclass
class History:
    root: Path
    signed_pack: Path       # of credit-risk 1.0's deployment, signed with the compliance key
    model_pack: Path        # of every credit-risk deployment, unsigned
    compliance_pub: Path
    other_pub: Path
    deployment: dict        # credit-risk 1.0's deployment entity attributes
    registry_files: dict[str, bytes]  # what the registry held, by pack path


def members(pack: Path) -> dict[str, bytes]:
    with tarfile.open(pack, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def repack(source: Path, target: Path, change: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> Path:
    """``source``'s members with some bytes replaced (and extra raw members), written as another tar.gz."""
    files = {**members(source), **change}
    with tarfile.open(target, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return target


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("evidence")
    publisher, _ = write_key_pair(root / "keys", "publisher")
    approver, approver_pub = write_key_pair(root / "keys", "approver")
    compliance, compliance_pub = write_key_pair(root / "keys", "compliance")
    _, other_pub = write_key_pair(root / "keys", "other")
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas, pytest.MonkeyPatch.context() as mp, \
            MleapServingEmulator(host="127.0.0.1", port=0) as mleap:
        for name, value in {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin", "MODELGOV_DEPLOYED_BY": "jane.ops",
                            "MODELGOV_STATE_DIR": str(root / "state")}.items():
            mp.setenv(name, value)
        (root / "bundles").mkdir()
        request = DeployRequest(target_uri=f"mleap://127.0.0.1:{mleap.port}?bundle_dir={root / 'bundles'}",
                                registry_uri=f"file://{root / 'registry'}", atlas_url=atlas.url,
                                environment="production", approval_required=True,
                                signing=SigningSettings(str(publisher)),
                                trust=TrustSettings(approvers=(str(approver_pub),)))

        def approve(what: str, subject: dict) -> ApprovalDecision:  # the approver signs what the run asks for
            statement = sign_approval(SigningIdentity(approver), ApprovalSubject.from_dict(subject), True, "ok")
            return ApprovalDecision("approved", "typed, ignored", datetime.now(UTC), "", statement=statement)

        hooks = SagaHooks(approve=approve, run_id="run-7")
        first = run_deploy(request.for_source(stage(root, "1.0")[0]), hooks)
        run_deploy(request.for_source(stage(root, "1.1")[0]), hooks)  # replaces 1.0
        guid = first.atlas["deployment"]["guid"]
        signed_pack, model_pack = root / "deployment.tar.gz", root / "model.tar.gz"
        mp.setenv("MODELGOV_SIGNING_KEY", str(compliance))
        made = cli("evidence", guid, "--output", str(signed_pack), "--atlas", atlas.url)
        assert made.returncode == 0, made.stderr
        assert "signed by key sha256:" in made.stderr
        mp.delenv("MODELGOV_SIGNING_KEY")
        made = cli("evidence", "--model", "Credit Risk", "--since", "2020-01-01", "--until", "2100-01-01",
                   "--output", str(model_pack), "--atlas", atlas.url)
        assert made.returncode == 0 and "unsigned" in made.stderr, made.stderr
        deployment = json.loads(cli("trace", guid, "--json", "--atlas", atlas.url).stdout)["deployment"]
    registry = root / "registry" / "credit-risk"
    registry_files = {f"registry/credit-risk/{p.relative_to(registry)}": p.read_bytes()
                      for p in [registry / "1.0" / "MANIFEST.json", registry / "1.0" / "model.sig",
                                *(registry / ".approvals" / "1.0").iterdir()]}
    shutil.move(root / "registry", root / "registry-gone")  # Atlas is stopped; the registry is gone too
    yield History(root, signed_pack, model_pack, compliance_pub, other_pub, deployment, registry_files)


@pytest.fixture
def offline(monkeypatch):
    """No socket may connect while a pack is checked."""
    def refuse(self, address):
        raise AssertionError(f"evidence verify tried to connect to {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def verify(pack: Path, *args: str):
    return cli("evidence", "verify", str(pack), *args)


def test_the_pack_holds_what_an_auditor_asks_for(history):
    files = members(history.signed_pack)
    names = set(files)
    assert {"EVIDENCE.json", "cards/credit-risk-1.0.json", "cards/credit-risk-1.0.md", "history/credit-risk.json",
            "history/credit-risk.csv", "report/audit-report.md", "report/audit-report.html", "SHA256SUMS",
            "SHA256SUMS.dsse.json"} <= names
    for path, data in history.registry_files.items():  # the manifest, model.sig and the kept approval, byte for byte
        assert files[path] == data, path
    assert any(p.startswith("registry/credit-risk/.approvals/1.0/") and p.endswith(".dsse.json") for p in files)
    [bom] = [n for n in names if n.startswith("bom/")]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(files[bom].decode()) is None
    card = json.loads(files["cards/credit-risk-1.0.json"])
    assert card["bytes"]["signer"]["fingerprint"] == json.loads(files["registry/credit-risk/1.0/MANIFEST.json"]
                                                                 )["signer"]["fingerprint"]
    guid = history.deployment["guid"]
    audit = json.loads(files[f"atlas-audit/modelgov_model_deployment-{guid}.json"])
    assert audit and all(e["entityId"] == guid for e in audit)  # Atlas's own events, not ours
    for kind in ("modelgov_model_build", "modelgov_deploy_process", "ml_project", "modelgov_train_build_process"):
        assert any(n.startswith(f"atlas-audit/{kind}-") for n in names), kind
    assert [d["guid"] for d in json.loads(files["EVIDENCE.json"])["deployments"]] == [guid]
    sums = files["SHA256SUMS"].decode().splitlines()
    assert sorted(line.split("  ", 1)[1] for line in sums) == sorted(names - {"SHA256SUMS", "SHA256SUMS.dsse.json"})
    for line in sums:
        digest, path = line.split("  ", 1)
        assert hashlib.sha256(files[path]).hexdigest() == digest
    model_files = members(history.model_pack)
    assert len([n for n in model_files if n.startswith("bom/")]) == 2  # 1.0 and 1.1
    assert {"cards/credit-risk-1.0.json", "cards/credit-risk-1.1.json"} <= set(model_files)
    assert "SHA256SUMS.dsse.json" not in model_files


def test_verifies_offline_with_the_trusted_key(history, offline):
    ok = verify(history.signed_pack, "--trusted-key", str(history.compliance_pub))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "signature verified: SHA256SUMS signed by trusted key sha256:" in ok.stdout and "intact" in ok.stdout
    unsigned = verify(history.model_pack)
    assert unsigned.returncode == 0 and "unsigned" in unsigned.stdout
    assert verify(history.model_pack, "--trusted-key", str(history.compliance_pub)).returncode == 1
    wrong = verify(history.signed_pack, "--trusted-key", str(history.other_pub))
    assert wrong.returncode == 1 and "not by the trusted key" in wrong.stdout


def test_one_changed_byte_is_named(history, offline, tmp_path):
    files = members(history.signed_pack)
    card = bytearray(files["cards/credit-risk-1.0.md"])
    card[len(card) // 2] ^= 0x01
    changed = repack(history.signed_pack, tmp_path / "changed.tar.gz", {"cards/credit-risk-1.0.md": bytes(card)})
    proc = verify(changed, "--trusted-key", str(history.compliance_pub), "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["changed"] == ["cards/credit-risk-1.0.md"] and not result["ok"]

    # the same change with SHA256SUMS recomputed to match: the signature names SHA256SUMS as changed
    sums = pack_module.sums_text({k: v for k, v in {**files, "cards/credit-risk-1.0.md": bytes(card)}.items()
                                  if k not in ("SHA256SUMS", "SHA256SUMS.dsse.json")})
    forged = repack(history.signed_pack, tmp_path / "forged.tar.gz",
                    {"cards/credit-risk-1.0.md": bytes(card), "SHA256SUMS": sums})
    proc = verify(forged, "--trusted-key", str(history.compliance_pub))
    assert proc.returncode == 1 and "changed: SHA256SUMS (it is not the list that was signed)" in proc.stdout

    raw = bytearray(history.signed_pack.read_bytes())  # one byte of the archive itself
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / "raw.tar.gz").write_bytes(bytes(raw))
    proc = verify(tmp_path / "raw.tar.gz")
    assert proc.returncode == 1 and "raw.tar.gz" in proc.stderr

    added = repack(history.signed_pack, tmp_path / "added.tar.gz", {"cards/extra.md": b"# planted\n"})
    proc = verify(added)
    assert proc.returncode == 1 and "not listed: cards/extra.md" in proc.stdout


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "too large", "duplicate", "inflates"])
def test_an_unsafe_archive_is_refused_whole(history, offline, tmp_path, monkeypatch, kind):
    info = tarfile.TarInfo({"traversal": "../../outside.txt", "absolute": "/tmp/outside.txt"}.get(kind, "x.txt"))
    info.size = 4
    if kind == "symlink":
        info.type, info.linkname, info.size = tarfile.SYMTYPE, "/etc/passwd", 0
    if kind == "too large":
        monkeypatch.setattr(pack_module, "MAX_FILE_BYTES", 1024)
        info.size = 4096
    if kind == "duplicate":
        info.name = "EVIDENCE.json"
    if kind == "inflates":  # more bytes once inflated than a pack may hold: refused before tar reads a header
        monkeypatch.setattr(pack_module, "MAX_TOTAL_BYTES", 1024)
        monkeypatch.setattr(pack_module, "MAX_MEMBERS", 2)
    bad = repack(history.signed_pack, tmp_path / f"{kind}.tar.gz", {}, [info])
    proc = verify(bad)
    assert proc.returncode == 1
    assert {"traversal": "is refused", "absolute": "is refused", "symlink": "not a regular file",
            "too large": "larger than 1024 bytes", "duplicate": "appears twice",
            "inflates": "inflates to more than 7168 bytes"}[kind] in proc.stderr
    assert not (tmp_path.parent / "outside.txt").exists() and not list(Path.cwd().glob("x.txt"))


def test_usage(history):
    assert cli("evidence", "--model", "x", "--output", "p.zip").returncode == 2
    both = cli("evidence", "some-guid", "--model", "x", "--output", "p.tar.gz")
    assert both.returncode == 2 and "one DEPLOYMENT" in both.stderr
    assert cli("evidence", "verify").returncode == 2
