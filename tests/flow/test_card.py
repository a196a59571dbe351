"""`modelgov card NAME VERSION`: a model card from the record alone, checked against a history deployed the way a
user deploys (the saga, a git source, a signing key, an approval, a newer version replacing it on the target),
with metadata that is HTML, a Markdown image and a script. JSON is exact; Markdown and HTML show it as text;
the HTML is one standalone page, read in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from emulators.atlas import AtlasEmulator
from emulators.mleap import MleapServingEmulator, write_linear_regression_bundle
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest
from governance.deploy.saga import SagaHooks, run_deploy
from governance.deploy.summary import DeploySummary
from governance.trust.signing import SigningSettings
from tests.compliance.test_safe_output import cli
from tests.flow.test_compliance import _png_is_not_blank, _VisibleText, chromium
from tests.signing_keys import write_key_pair

pytestmark = pytest.mark.slow
SCRIPT = "<script>alert('card')</script> scored daily"
IMAGE = "![x](http://tracker.example/pixel.png) **only** for <b>retail</b> loans"
LIMITS = "not for applicants under 18 | no | table <img src=x onerror=alert(1)>"
APPROVED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@dataclass
class History:
    atlas_url: str
    first: DeploySummary     # Credit Risk 1.0, approved, later replaced by 1.1
    second: DeploySummary
    commit: str
    manifest: dict
    fingerprint: str


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}).stdout.strip()


def stage(root: Path, version: str) -> tuple[str, str]:
    """A git staged repo of an MLeap model with risk metadata; its source (pinned) and commit."""
    repo = root / f"credit-{version}"
    (repo / "executable").mkdir(parents=True)
    write_linear_regression_bundle(repo / "executable" / "model.zip", ["a", "b"], [2.0, float(version[-1])], 1.0)
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("a,b,y\n1,2,9\n", encoding="utf-8")
    (repo / "metadata.txt").write_text("\n".join([
        "model.name = Credit Risk", f"model.version = {version}", "model.type = linear regression",
        "model.owner = Ana Müller", "model.owner.lob = retail lending", f"model.description = {SCRIPT}",
        "model.framework = mleap",
        "model.training.data = data/train.csv, iceberg://prod/lending.loans@5123, "
        "s3://lake/loans/train.parquet?versionId=v7",
        "model.risk.tier = High", f"model.intended.use = {IMAGE}", f"model.limitations = {LIMITS}",
        "model.validation.status = conditional", "model.validation.by = Model Risk Office",
        "model.validation.date = 2026-11-30", ""]), encoding="utf-8")
    (repo / "README.md").write_text("# Credit Risk\n", encoding="utf-8")
    (repo / "examples").mkdir()
    (repo / "examples" / "request.json").write_text(json.dumps(
        {"schema": {"fields": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]},
         "rows": [[1.0, 2.0]]}), encoding="utf-8")
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", f"credit risk {version}", cwd=repo)
    commit = git("rev-parse", "HEAD", cwd=repo)
    return f"git+file://{repo}@{commit}", commit


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("card")
    key, _ = write_key_pair(root / "keys", "publisher")
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas, pytest.MonkeyPatch.context() as mp, \
            MleapServingEmulator(host="127.0.0.1", port=0) as mleap:
        for name, value in {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin", "MODELGOV_DEPLOYED_BY": "jane.ops",
                            "MODELGOV_STATE_DIR": str(root / "state")}.items():
            mp.setenv(name, value)
        (root / "bundles").mkdir()
        request = DeployRequest(target_uri=f"mleap://127.0.0.1:{mleap.port}?bundle_dir={root / 'bundles'}",
                                registry_uri=f"file://{root / 'registry'}", atlas_url=atlas.url,
                                environment="production", approval_required=True,
                                signing=SigningSettings(str(key)))
        hooks = SagaHooks(approve=lambda what, subject: ApprovalDecision("approved", "Ana Approver", APPROVED_AT,
                                                                         "quarterly release"))
        first_source, commit = stage(root, "1.0")
        first = run_deploy(request.for_source(first_source), hooks)
        second = run_deploy(request.for_source(stage(root, "1.1")[0]), hooks)  # replaces 1.0 on the target
        manifest = json.loads((root / "registry" / "credit-risk" / "1.0" / "MANIFEST.json").read_text())
        yield History(atlas.url, first, second, commit, manifest, manifest["signer"]["fingerprint"])


def card(history: History, fmt: str, *extra: str) -> str:
    proc = cli("card", "Credit Risk", "1.0", "--format", fmt, "--atlas", history.atlas_url, *extra)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_json_card_is_the_record_exactly(history):
    data = json.loads(card(history, "json"))
    files = {f["path"]: f["sha256"] for f in history.manifest["files"]}
    assert data["model"] | {"guid": None, "atlasUrl": None, "registeredTime": None} == {
        "name": "credit-risk", "version": "1.0", "displayName": "Credit Risk", "versionNumber": 1_000_000,
        "type": "linear regression", "framework": "mleap", "owner": "Ana Müller", "ownerLob": "retail lending",
        "qualifiedName": "credit-risk/1.0@modelgov", "guid": None, "atlasUrl": None, "registeredTime": None}
    assert data["model"]["guid"] == history.first.atlas["build"]["guid"]
    assert data["purpose"] == {"description": SCRIPT, "intendedUse": IMAGE, "limitations": LIMITS}
    assert data["risk"] == {"tier": "high", "validation": {"status": "conditional", "by": "Model Risk Office",
                                                           "date": "2026-11-30"}}
    by_kind = {d["versionKind"]: d for d in data["trainingData"]}
    assert set(by_kind) == {"iceberg_snapshot", "s3_version_id", "sha256"}
    assert (by_kind["iceberg_snapshot"]["location"], by_kind["iceberg_snapshot"]["version"]) == \
        ("iceberg://prod/lending.loans", "5123")
    assert (by_kind["s3_version_id"]["location"], by_kind["s3_version_id"]["version"]) == \
        ("s3://lake/loans/train.parquet", "v7")
    assert by_kind["sha256"]["version"] == files["data/train.csv"]
    assert data["code"]["commit"] == history.commit and data["code"]["repository"].startswith("git+file://")
    assert data["bytes"]["files"] == [{"path": p, "sha256": files[p]} for p in sorted(files)]
    assert data["bytes"]["executableSha256"] == files["executable/model.zip"]
    assert data["bytes"]["signer"] == {"kind": "key", "fingerprint": history.fingerprint, "subject": None}
    [deployment] = data["deployments"]
    assert deployment["guid"] == history.first.atlas["deployment"]["guid"]
    assert (deployment["status"], deployment["outcome"], deployment["environment"]) == \
        ("stopped", "succeeded", "production")
    assert (deployment["approver"], deployment["approvalDecision"], deployment["approvalTime"]) == \
        ("Ana Approver", "approved", "2026-12-01T09:30:00.000+00:00")
    assert deployment["deployedBy"].startswith("key sha256:")  # the run proved it holds the signing key
    assert deployment["deployedTime"] < deployment["stoppedTime"]
    newer = json.loads(cli("card", "credit-risk", "1.1", "--format", "json", "--atlas", history.atlas_url).stdout)
    assert deployment["deployedTime"] < newer["deployments"][0]["deployedTime"] <= deployment["stoppedTime"]  # replaced
    assert newer["deployments"][0]["stoppedTime"] is None
    assert data["example"] == {"request": history.manifest["example_request"], "response": None}
    missing = cli("card", "credit-risk", "9.9", "--atlas", history.atlas_url)
    assert missing.returncode == 1
    assert "credit-risk 9.9: no modelgov_model_build credit-risk/9.9@modelgov in Atlas" in missing.stderr


def test_markdown_card_shows_metadata_as_text(history):
    markdown = card(history, "md")
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<strong>" not in html
    assert "&lt;script&gt;alert('card')&lt;/script&gt; scored daily" in html.replace("&#x27;", "'")
    assert "![x](http://tracker.example/pixel.png) **only** for &lt;b&gt;retail&lt;/b&gt; loans" in html
    assert "not for applicants under 18 | no | table &lt;img src=x onerror=alert(1)&gt;" in html
    for table in html.split("<table>")[1:]:  # a value's "|" never adds a cell
        rows = table.split("</table>")[0].split("<tr>")[1:]
        assert len({row.count("<td") + row.count("<th") for row in rows}) == 1
    for expected in ("Risk tier: high", "Validation: conditional by Model Risk Office on 2026-11-30",
                     "Ana Approver", "iceberg://prod/lending.loans", history.commit, history.fingerprint):
        assert expected in html
    assert '<pre><code>{\n  &quot;rows&quot;: [' in html  # the smoke-test request, in a code block


def test_html_card_is_standalone_and_reads_well_in_chromium(history, tmp_path):
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("chromium is required for the HTML card test: apt-get install chromium (make test does it)")
    page = tmp_path / "card.html"
    proc = cli("card", "Credit Risk", "1.0", "--format", "html", "--output", str(page), "--atlas", history.atlas_url)
    assert proc.returncode == 0 and f"wrote html model card to {page}" in proc.stderr
    html = page.read_text()
    assert "<script" not in html and "<img" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src\s*=|url\()\s*["']?(https?:|//)""", html)  # nothing fetched
    shot = tmp_path / "card.png"
    run = chromium([f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()], tmp_path)
    assert shot.exists(), run.stderr.decode(errors="replace")[-2000:]
    assert _png_is_not_blank(shot.read_bytes())
    dom = chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    seen = _VisibleText(dom.stdout.decode()).text
    for expected in ("Model card: Credit Risk 1.0", SCRIPT, IMAGE, LIMITS, "high risk tier",
                     "conditional by Model Risk Office on 2026-11-30", "Ana Approver", history.fingerprint,
                     "iceberg://prod/lending.loans", "s3_version_id v7"):
        assert expected in seen, expected
    assert "<script>alert" not in dom.stdout.decode()  # the value stayed text in the DOM
