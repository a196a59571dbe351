"""Compliance answers (search, history --at, trace, verify, report) checked exactly against a realistic
history built once through the real flow: real Prefect, two real MLServers, the Atlas emulator."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from emulators.atlas import AtlasEmulator
from governance.targets.mlserver_process import LocalMLServer
from tests.conftest import MLSERVER_BIN, ROOT
from tests.flow.compliance_history import ANA, BOB, History, build_history

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")

pytestmark = pytest.mark.slow
ATLAS_ENV = {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
SEARCH_WAIT_S = 60  # Atlas basic search is eventually consistent (index commits): poll, bounded


def modelgov_process(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`modelgov` as a separate process, exactly as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATLAS_")}
    return subprocess.run([sys.executable, "-m", "governance", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**env, **ATLAS_ENV})


def modelgov(*args: str) -> subprocess.CompletedProcess:
    """`modelgov` through its entry point (governance.cli.main) in this process: the same parsing, the same
    output, without a Python start-up per call on a busy machine."""
    from governance.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(["modelgov", *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def history(prefect_api, mlserver, tmp_path_factory) -> History:
    workdir = tmp_path_factory.mktemp("compliance")
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas, \
            LocalMLServer(workdir / "mlserver-b" / "models", executable=MLSERVER_BIN) as second, \
            pytest.MonkeyPatch.context() as mp:
        for key, value in ATLAS_ENV.items():
            mp.setenv(key, value)
        built = build_history(workdir, atlas.url, mlserver.target_uri(), second.target_uri(),
                              f"127.0.0.1:{mlserver.http_port}", f"127.0.0.1:{second.http_port}")
        wait_until_searchable(built, expected=len(built.steps))
        yield built


def wait_until_searchable(history: History, expected: int) -> None:
    deadline = time.monotonic() + SEARCH_WAIT_S
    while True:
        proc = modelgov("search", "--json", "--atlas", history.atlas_url)
        assert proc.returncode == 0, proc.stderr
        if len(json.loads(proc.stdout)) >= expected or time.monotonic() > deadline:
            return
        time.sleep(1)


def run_json(history: History, *args: str):
    proc = modelgov(*args, "--json", "--atlas", history.atlas_url)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def rows(history: History, *args: str) -> list[dict]:
    return run_json(history, *args)


def qns(history: History, *steps: int) -> list[str]:
    return [history.step(n).qualified_name for n in steps]


def millis(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000 + 0.5)


def at(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


# -- search ----------------------------------------------------------------------------------------------------
def test_search_filters(history, tmp_path):
    a = history.details["A"]
    everything = rows(history, "search")
    assert [r["qualifiedName"] for r in everything] == qns(history, 6, 5, 4, 3, 2, 1)  # newest first
    by_step = {n: everything[6 - n] for n in range(1, 7)}

    def found(*args: str) -> list[str]:
        return [r["qualifiedName"] for r in rows(history, "search", *args)]

    assert found("--name", "fraud-scorer") == qns(history, 6, 3, 1)
    assert found("--version", "1.1") == qns(history, 6, 3)
    assert found("--name", "fraud-scorer", "--version", "1.0") == qns(history, 1)
    assert found("--owner", BOB) == qns(history, 4, 2)
    assert found("--lob", "risk") == qns(history, 6, 3, 1)
    assert found("--lob", "retail") == qns(history, 5)
    assert found("--target", a) == qns(history, 5, 3, 1)
    assert found("--target", history.targets["B"]) == qns(history, 6, 4, 2)
    assert found("--target", "127.0.0.1") == qns(history, 6, 5, 4, 3, 2, 1)
    assert found("--target", "127.0.0.2") == []
    config = tmp_path / "modelgov.yaml"
    config.write_text(f"targets:\n  prod-a:\n    uri: {history.targets['A']}\n    environment: production\n")
    assert found("--target", "prod-a", "--config", str(config)) == qns(history, 5, 3, 1)
    assert found("--status", "stopped") == qns(history, 4, 1)
    assert found("--status", "deployed") == qns(history, 6, 5, 3, 2)
    assert found("--environment", "production") == qns(history, 5, 3, 1)
    assert found("--environment", "staging") == qns(history, 6, 4, 2)
    assert found("--owner", ANA, "--environment", "production", "--status", "deployed") == qns(history, 5, 3)
    third = by_step[3]["deployedTime"]
    assert found("--since", third) == qns(history, 6, 5, 4, 3)      # since is inclusive
    assert found("--until", third) == qns(history, 2, 1)            # until is exclusive
    assert found("--since", by_step[2]["deployedTime"], "--until", by_step[5]["deployedTime"]) == qns(history, 4, 3, 2)
    first_day = by_step[1]["deployedTime"][:10]
    last_day = by_step[6]["deployedTime"][:10]
    assert found("--since", first_day, "--until", last_day) == qns(history, 6, 5, 4, 3, 2, 1)  # a date: whole day
    day_before = (datetime.fromisoformat(first_day) - timedelta(days=1)).date().isoformat()
    assert found("--until", day_before) == []
    assert found("--limit", "2") == qns(history, 6, 5)
    assert found("--lob", "risk", "--limit", "1") == qns(history, 6)
    bad = modelgov("search", "--since", "yesterday", "--atlas", history.atlas_url)
    assert bad.returncode == 2 and "--since 'yesterday': not an ISO date or datetime" in bad.stderr


def test_search_json_csv_and_table(history):
    everything = rows(history, "search")
    failed = everything[2]
    assert failed["qualifiedName"] == history.step(4).qualified_name
    reason = failed.pop("failureReason")
    assert f"MLServer at {history.details['B']} failed to load 'churn-predictor'" in reason
    assert ISO.match(failed.pop("deployedTime")) and ISO.match(failed.pop("stoppedTime"))
    assert failed == {"guid": history.step(4).guid, "qualifiedName": history.step(4).qualified_name,
                      "modelName": "churn-predictor", "modelVersion": "2.1", "targetKind": "mlserver",
                      "targetDetail": history.details["B"], "environment": "staging", "status": "stopped",
                      "outcome": "failed", "deployedBy": "jane.ops", "owner": BOB, "ownerLob": "marketing",
                      "modelEndpointURL": None}
    serving = everything[1]
    assert serving["modelEndpointURL"] == history.step(5).summary["endpoint"]
    assert serving["stoppedTime"] is None and ISO.match(serving["deployedTime"])

    proc = modelgov("search", "--csv", "--atlas", history.atlas_url)
    assert proc.returncode == 0, proc.stderr
    reader = csv.DictReader(io.StringIO(proc.stdout))
    assert reader.fieldnames == list(rows(history, "search")[0].keys())
    assert list(reader) == [{k: "" if v is None else v for k, v in r.items()} for r in rows(history, "search")]

    table = modelgov_process("search", "--atlas", history.atlas_url)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("model "))
    data = [line for line in lines if line.lstrip().startswith(("fraud-scorer", "churn-predictor", "iris-species"))]
    assert len(data) == 6
    for column, values in (("version", ["1.1", "1.0", "2.1", "1.1", "2.0", "1.0"]),
                           ("outcome", ["succeeded", "succeeded", "failed", "succeeded", "succeeded", "succeeded"]),
                           ("by", ["jane.ops", "jane.ops", "jane.ops", "raj.ops", "raj.ops", "jane.ops"])):
        start = header.index(f" {column} ") + 1
        assert [line[start:].split()[0] for line in data] == values  # aligned under its header
    assert "failed to load 'churn-predictor'" in table.stdout
    none = modelgov("search", "--owner", "Nobody", "--atlas", history.atlas_url)
    assert none.returncode == 0 and none.stdout.strip() == "no deployments recorded"


# -- history ---------------------------------------------------------------------------------------------------
def test_history_is_a_timeline_oldest_first(history):
    fraud = rows(history, "history", "fraud-scorer")
    assert [r["qualifiedName"] for r in fraud] == qns(history, 1, 3, 6)
    assert [(r["modelVersion"], r["targetDetail"], r["status"], r["outcome"], r["deployedBy"]) for r in fraud] == [
        ("1.0", history.details["A"], "stopped", "succeeded", "jane.ops"),
        ("1.1", history.details["A"], "deployed", "succeeded", "raj.ops"),
        ("1.1", history.details["B"], "deployed", "succeeded", "jane.ops")]
    assert fraud[0]["stoppedTime"] is not None and fraud[1]["stoppedTime"] is None
    assert millis(fraud[0]["deployedTime"]) < millis(fraud[1]["deployedTime"]) <= millis(fraud[0]["stoppedTime"])
    churn = rows(history, "history", "churn-predictor")
    assert [(r["modelVersion"], r["outcome"], r["failureReason"] is not None) for r in churn] == [
        ("2.0", "succeeded", False), ("2.1", "failed", True)]
    assert [r["qualifiedName"] for r in rows(history, "history", "fraud-scorer", "--target", history.details["B"])] \
        == qns(history, 6)
    text = modelgov("history", "churn-predictor", "--atlas", history.atlas_url)
    assert text.returncode == 0
    assert "churn-predictor: 2 deployment(s), oldest first" in text.stdout
    assert "reason" in text.stdout and "failed to load 'churn-predictor'" in text.stdout
    assert modelgov("history", "no-such-model", "--atlas", history.atlas_url).stdout.strip() \
        == "no-such-model: no deployments recorded"


def test_history_at_each_boundary(history):
    """deployedTime <= T < stoppedTime, to the millisecond, on and around every boundary."""
    fraud = {r["qualifiedName"]: r for r in rows(history, "history", "fraud-scorer")}
    d1, s1 = millis(fraud[qns(history, 1)[0]]["deployedTime"]), millis(fraud[qns(history, 1)[0]]["stoppedTime"])
    d3 = millis(fraud[qns(history, 3)[0]]["deployedTime"])
    d6 = millis(fraud[qns(history, 6)[0]]["deployedTime"])

    def serving(name: str, moment: str, *extra: str) -> list[str]:
        return [r["qualifiedName"] for r in rows(history, "history", name, "--at", moment, *extra)]

    on_a = ("--target", history.details["A"])
    assert serving("fraud-scorer", at(d1 - 1), *on_a) == []
    assert serving("fraud-scorer", at(d1), *on_a) == qns(history, 1)                 # deployedTime is included
    assert serving("fraud-scorer", at(d3 - 1), *on_a) == qns(history, 1)
    assert serving("fraud-scorer", at(d3), *on_a) == (qns(history, 1, 3) if d3 < s1 else qns(history, 3))
    assert serving("fraud-scorer", at(s1 - 1), *on_a) == (qns(history, 1, 3) if d3 <= s1 - 1 else qns(history, 1))
    assert serving("fraud-scorer", at(s1), *on_a) == qns(history, 3)                 # stoppedTime is excluded
    # the same instant written with another offset, and with Z
    local = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=s1)).astimezone(
        timezone(timedelta(hours=2))).isoformat(timespec="milliseconds")
    assert serving("fraud-scorer", local, *on_a) == qns(history, 3)
    assert serving("fraud-scorer", at(s1 - 1).replace("+00:00", "Z"), *on_a)[0] == qns(history, 1)[0]
    assert serving("fraud-scorer", at(d6 - 1)) == qns(history, 3)
    assert serving("fraud-scorer", at(d6)) == qns(history, 3, 6)
    assert serving("fraud-scorer", at(d6), "--target", history.details["B"]) == qns(history, 6)

    churn = {r["qualifiedName"]: r for r in rows(history, "history", "churn-predictor")}
    d2 = millis(churn[qns(history, 2)[0]]["deployedTime"])
    d4 = millis(churn[qns(history, 4)[0]]["deployedTime"])
    s4 = millis(churn[qns(history, 4)[0]]["stoppedTime"])
    assert serving("churn-predictor", at(d2 - 1)) == []
    assert serving("churn-predictor", at(d2)) == qns(history, 2)
    assert serving("churn-predictor", at(d4)) == qns(history, 2)      # a failed attempt never serves
    assert serving("churn-predictor", at(s4)) == qns(history, 2)
    d5 = millis(rows(history, "history", "iris-species")[0]["deployedTime"])
    assert serving("iris-species", at(d5 - 1)) == []
    assert serving("iris-species", at(d5)) == qns(history, 5)
    text = modelgov("history", "iris-species", "--at", at(d5 - 1), "--atlas", history.atlas_url)
    assert text.stdout.strip() == f"iris-species: nothing recorded as serving at {at(d5 - 1)}"
    csv_out = modelgov("history", "iris-species", "--at", at(d5), "--csv", "--atlas", history.atlas_url)
    assert [r["qualifiedName"] for r in csv.DictReader(io.StringIO(csv_out.stdout))] == qns(history, 5)


# -- trace -----------------------------------------------------------------------------------------------------
def test_trace_reaches_the_sensitive_dataset(history):
    step = history.step(5)
    by_name = run_json(history, "trace", step.qualified_name)
    assert run_json(history, "trace", step.guid) == by_name
    registry = history.registry_dir / "iris-species" / "1.0"
    manifest = json.loads((registry / "MANIFEST.json").read_text())
    staged = history.registry_dir.parent / "staged-iris-species-1.0"
    dep = by_name["deployment"]
    assert (dep["guid"], dep["qualifiedName"], dep["modelVersion"], dep["environment"], dep["deployedBy"]) == \
        (step.guid, step.qualified_name, "1.0", "production", "jane.ops")
    assert dep["classifications"] == [{"typeName": "modelgov_production"}]
    assert [(c["typeName"], c["category"]) for c in dep["propagatedClassifications"]] == \
        [("modelgov_sensitive_data", "pii")]
    assert dep["atlasUrl"] == f"{history.atlas_url}/index.html#!/detailPage/{step.guid}"
    assert by_name["build"]["qualifiedName"] == "iris-species/1.0@modelgov"
    assert by_name["build"]["guid"] == step.summary["atlas"]["build"]["guid"]
    assert by_name["build"]["versionNumber"] == 1_000_000
    copy = by_name["registryCopy"]
    assert copy["uri"] == f"file://{registry}" and copy["typeName"] == "fs_path"
    assert copy["files"] == sorted(({"path": f["path"], "sha256": f["sha256"]} for f in manifest["files"]),
                                   key=lambda f: f["path"])
    executable = hashlib.sha256((staged / "executable" / "model.joblib").read_bytes()).hexdigest()
    assert (copy["executable"], copy["executableSha256"]) == ("executable/model.joblib", executable)
    assert by_name["staging"] == {"repository": str(staged), "commit": None}
    assert by_name["deployProcess"]["userName"] == "jane.ops"
    assert by_name["training"]["process"]["qualifiedName"] == "iris-species/1.0/train@modelgov"
    [dataset] = by_name["training"]["datasets"]
    assert dataset["qualifiedName"] == f"file://{registry}/data/iris.csv@modelgov"
    assert dataset["sensitive"] == "pii"
    assert by_name["people"] == {"owner": ANA, "ownerLob": "retail", "deployedBy": "jane.ops", "trainedBy": ANA,
                                 "recordedBy": "admin"}

    assert [(c["action"], c["status"]) for c in by_name["recordChanges"] if c["action"] == "ENTITY_CREATE"] == \
        [("ENTITY_CREATE", "deploying")]
    assert [c["status"] for c in by_name["recordChanges"] if c["status"]][-1] == "deployed"
    assert {c["user"] for c in by_name["recordChanges"]} == {"admin"}  # the Atlas account, not the deployer

    other = run_json(history, "trace", history.step(1).guid)
    statuses = [c["status"] for c in other["recordChanges"] if c["status"]]
    assert [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]] == ["deploying", "deployed", "stopped"]
    assert [d["sensitive"] for d in other["training"]["datasets"]] == [None]
    assert other["deployment"]["status"] == "stopped" and other["deployment"]["propagatedClassifications"] == []
    text = modelgov_process("trace", step.guid, "--atlas", history.atlas_url)
    assert text.returncode == 0
    for expected in (step.qualified_name, f"{executable}  executable/model.joblib", "SENSITIVE: pii",
                     "owner Ana Müller (retail), deployed by jane.ops"):
        assert expected in text.stdout
    missing = modelgov("trace", "nope@modelgov", "--atlas", history.atlas_url)
    assert missing.returncode == 1
    assert "nope@modelgov: no modelgov_model_deployment with that guid or qualifiedName" in missing.stderr


# -- verify ----------------------------------------------------------------------------------------------------
def verify(history: History, reference: str) -> tuple[int, list[str], dict]:
    text = modelgov_process("verify", reference, "--atlas", history.atlas_url)
    data = modelgov("verify", reference, "--json", "--atlas", history.atlas_url)
    assert text.returncode == data.returncode, (text.stderr, data.stderr)
    return text.returncode, [line for line in text.stdout.splitlines() if line.startswith("MISMATCH")], \
        json.loads(data.stdout)


def release_of(history: History, name: str, version: str):
    """The registered version as a Release, the way the flow builds it (validate -> publish, a no-op if present)."""
    from governance.registries.file import FileRegistry
    from governance.staging.validate import validate_repo
    from governance.targets.base import Release
    from tests.flow.compliance_history import stage

    staged = validate_repo(stage(history.registry_dir.parent, name, version))
    registry = FileRegistry(f"file://{history.registry_dir}")
    return Release(metadata=staged.metadata, registered=registry.publish(staged), registry=registry,
                   example_request=staged.example_request, example_response=staged.example_response)


def test_verify_agrees_then_catches_a_tampered_registry_file(history):
    for step in (5, 1, 4, 2, 6):  # deployed, superseded, failed attempt, deployed on the other target (twice)
        code, mismatches, data = verify(history, history.step(step).guid)
        assert (code, mismatches, data["agree"]) == (0, [], True), (step, data)
    code, _, data = verify(history, history.step(5).qualified_name)
    assert data["target"]["served"][0]["sha256"] == data["registry"]["files"]["executable/model.joblib"]

    executable = history.registry_dir / "iris-species" / "1.0" / "executable" / "model.joblib"
    original = executable.read_bytes()
    recorded = hashlib.sha256(original).hexdigest()
    executable.chmod(0o644)
    executable.write_bytes(original + b"tampered")
    try:
        code, mismatches, data = verify(history, history.step(5).guid)
        tampered = hashlib.sha256(original + b"tampered").hexdigest()
        assert code == 1
        assert mismatches == [f"MISMATCH  registry: file://{executable} has sha256 {tampered}, "
                              f"Atlas recorded {recorded}"]
        assert data["agree"] is False and data["mismatches"] == [mismatches[0].removeprefix("MISMATCH  ")]
    finally:
        executable.write_bytes(original)
    assert verify(history, history.step(5).guid)[0] == 0


def test_verify_catches_a_target_serving_another_version(history):
    from governance.targets.mlserver import MLServerTarget

    target = MLServerTarget(history.targets["A"])
    target.deploy(release_of(history, "iris-species", "9.9"))  # behind Atlas's back: 1.0 is unloaded
    try:
        code, mismatches, _ = verify(history, history.step(5).guid)
        where = f"mlserver://{history.details['A']}"
        assert code == 1
        assert mismatches == [
            f"MISMATCH  target: {where} does not serve iris-species 1.0, which Atlas records as deployed there "
            f"(it serves iris-species: 9.9)",
            f"MISMATCH  target: {where} serves iris-species 9.9, which Atlas does not record as deployed there"]
    finally:
        target.deploy(release_of(history, "iris-species", "1.0"))  # put back what Atlas records
    assert verify(history, history.step(5).guid)[0] == 0
    missing = modelgov("verify", "nope@modelgov", "--atlas", history.atlas_url)
    assert missing.returncode == 1 and "no modelgov_model_deployment" in missing.stderr


# -- report ----------------------------------------------------------------------------------------------------
def report(history: History, fmt: str, since: str, until: str, output=None) -> str:
    args = ["report", "--since", since, "--until", until, "--format", fmt, "--atlas", history.atlas_url]
    proc = modelgov(*args, *(["--output", str(output)] if output else []))
    assert proc.returncode == 0, proc.stderr
    return output.read_text() if output else proc.stdout


def period(history: History) -> tuple[str, str]:
    times = [r["deployedTime"] for r in rows(history, "search")]
    return min(times), at(millis(max(times)) + 60_000)


def test_report_csv_and_markdown_carry_the_same_rows(history):
    since, until = period(history)
    table = list(csv.DictReader(io.StringIO(report(history, "csv", since, until))))
    searched = {r["qualifiedName"]: r for r in rows(history, "search")}
    assert sorted(r["qualifiedName"] for r in table) == sorted(searched)
    assert [(r["modelName"], r["targetDetail"]) for r in table] == sorted(
        (r["modelName"], r["targetDetail"]) for r in table)  # grouped by model, then target
    for row in table:
        expected = {k: "" if v is None else v for k, v in searched[row["qualifiedName"]].items()}
        assert {k: row[k] for k in expected} == expected
        assert row["atlasUrl"] == f"{history.atlas_url}/index.html#!/detailPage/{row['guid']}"
        manifest = json.loads((history.registry_dir / row["modelName"] / row["modelVersion"] / "MANIFEST.json")
                              .read_text())
        assert row["executableSha256"] == next(f["sha256"] for f in manifest["files"]
                                               if f["path"] == manifest["executable"])
    markdown = report(history, "md", since, until)
    assert "- Deploys: 5 · failed or rejected attempts: 1 · stops: 1" in markdown
    assert "- Trained on sensitive data: iris-species" in markdown
    assert f"- FAILED attempt: churn-predictor 2.1 on mlserver://{history.details['B']}" in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ") and "detailPage" in line]
    assert sorted(re.search(r"detailPage/([0-9a-f-]+)\)", line).group(1) for line in table_rows) == \
        sorted(r["guid"] for r in table)
    for name in ("churn-predictor", "fraud-scorer", "iris-species"):
        assert f"\n## {name}\n" in markdown

    # a narrower window: step 3's deploy, the stop of step 1 it caused, and the failed attempt (step 4)
    steps = {n: searched[history.step(n).qualified_name] for n in range(1, 7)}
    narrow = list(csv.DictReader(io.StringIO(report(history, "csv", steps[3]["deployedTime"],
                                                    steps[5]["deployedTime"]))))
    assert sorted(r["qualifiedName"] for r in narrow) == sorted(qns(history, 1, 3, 4))
    narrow_md = report(history, "md", steps[3]["deployedTime"], steps[5]["deployedTime"])
    assert "- Deploys: 1 · failed or rejected attempts: 1 · stops: 1" in narrow_md
    assert "| 1.0 | production | stopped | stopped |" in narrow_md


def _png_is_not_blank(png: bytes) -> bool:
    """A blank page compresses to rows of one value (after PNG filtering, a handful of byte values);
    a page with text, tables and a drawing has many."""
    import struct
    import zlib

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            idat += png[pos + 8:pos + 8 + length]
        pos += 12 + length
    return len(set(zlib.decompress(idat))) > 32


class _VisibleText:
    """The text a person sees: everything outside <head>, <style> and <script>."""

    def __init__(self, html: str):
        from html.parser import HTMLParser

        chunks: list[str] = []
        hidden = []

        class Parser(HTMLParser):
            def handle_starttag(self, tag, attrs):
                if tag in ("head", "style", "script", "title"):
                    hidden.append(tag)

            def handle_endtag(self, tag):
                if hidden and hidden[-1] == tag:
                    hidden.pop()

            def handle_data(self, data):
                if not hidden:
                    chunks.append(data)

        Parser().feed(html)
        self.text = " ".join(" ".join(chunks).split())


def chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    cmd = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=False, timeout=120)


def test_html_report_reads_well_in_chromium(history, tmp_path):
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("chromium is required for the HTML report test: apt-get install chromium (make test does it)")
    since, until = period(history)
    page = tmp_path / "audit.html"
    html = report(history, "html", since, until, output=page)
    assert "<script" not in html and "<link" not in html and "<img" not in html and "@import" not in html
    assert not re.search(r"""(src\s*=|url\()\s*["']?(https?:|//)""", html)  # standalone: nothing fetched
    assert html.count("<svg") == 3  # one lineage diagram per model

    shot = tmp_path / "audit.png"
    proc = chromium([f"--screenshot={shot}", "--window-size=1280,1600", page.as_uri()], tmp_path)
    assert shot.exists(), proc.stderr.decode(errors="replace")[-2000:]
    assert _png_is_not_blank(shot.read_bytes())
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    chromium([f"--screenshot={tmp_path / 'blank.png'}", "--window-size=1280,1600", blank.as_uri()], tmp_path)
    assert not _png_is_not_blank((tmp_path / "blank.png").read_bytes())  # the check can fail
    dom = chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    seen = _VisibleText(dom.stdout.decode()).text
    assert "Model deployment audit report" in seen and "Summary" in seen
    for name in ("churn-predictor", "fraud-scorer", "iris-species"):
        assert name in seen
    assert f"Failed attempt: churn-predictor 2.1 on mlserver://{history.details['B']}" in seen
    assert "SENSITIVE: pii" in seen
    for step in history.steps:
        assert f"index.html#!/detailPage/{step.guid}" in dom.stdout.decode()
