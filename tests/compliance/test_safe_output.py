"""Hostile metadata cannot reach outside through the compliance commands' output (issue 20, "safe output").

Models are deployed the way a user deploys them (the saga, to the MLeap stand-in, recorded in the Atlas
emulator) with owners and descriptions that are spreadsheet formulas or rich markup; values the staging
checks may refuse (ESC, tab, CR, C1 controls) are written the way an attacker with Atlas access would: as
records of their own through Atlas's API. Then every output channel is read as its consumer reads it:
CSV as a spreadsheet sees cells, the terminal as a terminal receives bytes, Markdown as a renderer shows it,
JSON as a script parses it (exact).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pty
import select
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from emulators.atlas import AtlasEmulator
from emulators.mleap import MleapServingEmulator, write_linear_regression_bundle
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.deploy.request import DeployRequest
from governance.deploy.saga import run_deploy
from governance.deploy.summary import DeploySummary
from tests.conftest import ROOT

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
ESC_CLEAR = "\x1b[2J"
ATLAS_ENV = {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}

# what a staged repo's metadata.txt lets through (printable text)
DEPLOYED = {
    "formula": {"owner": '=HYPERLINK("http://x")', "lob": "+1", "description": "-2+3"},
    "markup": {"owner": "[/bold] [red]x[/red]", "lob": "@SUM(A1)", "description": "[red]x[/red] <b>hi</b>"},
}
# what only a direct Atlas write brings in: control characters, a leading tab, C1, a quoted formula
FORGED = {"owner": f"{ESC_CLEAR}mallory", "lob": "\t=1+1", "deployedBy": '"=cmd|x"',
          "failureReason": "\r@SUM(A1)\x9b31m | ![img](http://tracker) `tick`"}


@dataclass
class History:
    atlas_url: str
    deployed: dict[str, str]     # model name -> deployment guid
    forged_guid: str
    summaries: dict[str, DeploySummary]


def stage(root: Path, name: str, owner: str, lob: str, description: str) -> Path:
    repo = root / f"staged-{name}"
    (repo / "executable").mkdir(parents=True)
    write_linear_regression_bundle(repo / "executable" / "model.zip", ["a", "b"], [2.0, 3.0], 1.0)
    (repo / "metadata.txt").write_text(
        f"model.name={name}\nmodel.version=1.0\nmodel.type=regression\nmodel.owner={owner}\n"
        f"model.owner.lob={lob}\nmodel.description={description}\n", encoding="utf-8")
    (repo / "README.md").write_text(f"# {name}\n", encoding="utf-8")
    (repo / "examples").mkdir()
    (repo / "examples" / "request.json").write_text(json.dumps(
        {"schema": {"fields": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]},
         "rows": [[1.0, 2.0]]}), encoding="utf-8")
    return repo


def forge_records(url: str) -> str:
    """An attacker's own build and deployment, written straight into Atlas (no staging checks on the way)."""
    client = AtlasClient(AtlasSettings(url=url, username="admin", password="admin"))
    try:
        created = client.upsert_entities([
            {"typeName": "ml_project", "guid": "-1",
             "attributes": {"qualifiedName": "forged@modelgov", "name": "forged"}},
            {"typeName": "modelgov_model_build", "guid": "-2",
             "attributes": {"qualifiedName": "forged/1.0@modelgov", "name": "forged v1.0", "version": 1_000_000,
                            "modelVersion": "1.0", "owner": FORGED["owner"], "ownerLob": FORGED["lob"],
                            "description": FORGED["failureReason"],
                            "registryUri": f"file:///nowhere/{ESC_CLEAR}/forged/1.0"},
             "relationshipAttributes": {"project": {"guid": "-1"}}},
            {"typeName": "modelgov_model_deployment", "guid": "-3", "attributes": {
                "qualifiedName": "forged/1.0/mlserver://h:8080/run-1@modelgov", "name": "forged 1",
                "owner": FORGED["owner"], "createTime": 1_796_000_000_000, "deployedTime": 1_796_000_000_000,
                "status": "stopped", "stoppedTime": 1_796_000_001_000, "cpuMillicores": 0, "modelName": "forged",
                "modelVersion": "1.0", "targetKind": "mlserver", "targetDetail": "h:8080",
                "outcome": "failed", "failureReason": FORGED["failureReason"],
                "deployedBy": FORGED["deployedBy"]},
             "relationshipAttributes": {"build": {"guid": "-2"}}}])
        return created.guid_assignments["-3"]
    finally:
        client.close()


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("safe-output")
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas, pytest.MonkeyPatch.context() as mp:
        for key, value in ATLAS_ENV.items():
            mp.setenv(key, value)
        mp.setenv("MODELGOV_STATE_DIR", str(root / "state"))
        mleap = MleapServingEmulator(host="127.0.0.1", port=0).start()
        try:
            (root / "bundles").mkdir()
            deployed, summaries = {}, {}
            for name, meta in DEPLOYED.items():
                request = DeployRequest(
                    target_uri=f"mleap://127.0.0.1:{mleap.port}?bundle_dir={root / 'bundles'}",
                    registry_uri=f"file://{root / 'registry'}", atlas_url=atlas.url, environment=None,
                    source=str(stage(root, name, meta["owner"], meta["lob"], meta["description"])))
                summaries[name] = run_deploy(request)
                deployed[name] = summaries[name].atlas["deployment"]["guid"]
            yield History(atlas.url, deployed, forge_records(atlas.url), summaries)
        finally:
            mleap.stop()


def cli(*args: str) -> subprocess.CompletedProcess:
    """`modelgov ARGS` through its entry point, output captured as a pipe would get it."""
    from governance.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["modelgov", *args], code, out.getvalue(), err.getvalue())


def modelgov(history: History, *args: str) -> subprocess.CompletedProcess:
    return cli(*args, "--atlas", history.atlas_url)


def hostile_values() -> list[str]:
    return [v for meta in DEPLOYED.values() for v in (meta["owner"], meta["lob"])] + \
        [FORGED["owner"], FORGED["lob"], FORGED["deployedBy"], FORGED["failureReason"]]


def csv_cells(text: str) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    for row in rows:
        for column, cell in row.items():
            assert not cell.lstrip(' "').startswith(FORMULA_START), f"{column}: formula cell {cell!r}"
    return rows


@pytest.mark.parametrize("command", [["search", "--csv"],
                                     ["report", "--since", "2000-01-01", "--until", "2100-01-01",
                                      "--format", "csv"]])
def test_csv_cells_never_start_a_formula_and_keep_the_value_after_the_quote(history, command):
    proc = modelgov(history, *command)
    assert proc.returncode == 0, proc.stderr
    rows = csv_cells(proc.stdout)
    by_model = {r["modelName"]: r for r in rows}
    assert by_model["formula"]["owner"] == "'" + DEPLOYED["formula"]["owner"]
    assert by_model["formula"]["ownerLob"] == "'+1"
    assert by_model["markup"]["ownerLob"] == "'@SUM(A1)"
    assert by_model["markup"]["owner"] == DEPLOYED["markup"]["owner"]  # not a formula: unchanged
    forged = by_model["forged"]
    assert forged["deployedBy"] == "'" + FORGED["deployedBy"]         # a quoted formula is neutralised too
    assert forged["failureReason"] == "'" + FORGED["failureReason"]   # CR first
    assert forged["owner"] == FORGED["owner"]                          # ESC is not a formula start
    if "executableSha256" in forged:
        assert by_model["formula"]["registryUri"].startswith("file://")


@pytest.mark.parametrize("command", [["search"], ["history", "forged"], ["history", "markup"],
                                     ["history", "formula"]])
def test_tables_show_markup_literally_and_control_characters_escaped(history, command):
    proc = modelgov(history, *command)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for raw in ("\x1b", "\x9b", "\t", "\r"):
        assert raw not in out
    if command[-1] in ("search", "forged"):
        assert "\\x1b[2Jmallory" in out and "\\x9b31m" in out and "\\t=1+1" in out
    if command[-1] in ("search", "markup"):
        assert "[/bold] [red]x[/red]" in out and "@SUM(A1)" in out
    if command[-1] in ("search", "formula"):
        assert '=HYPERLINK("http://x")' in out


def test_search_on_a_terminal_never_sends_the_record_s_escape_sequences(history):
    """On a real terminal rich colours the table; the record's own ESC[2J must still arrive escaped."""
    primary, secondary = pty.openpty()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ATLAS_")}, **ATLAS_ENV,
           "COLUMNS": "400", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "governance", "search", "--atlas", history.atlas_url],
                            cwd=ROOT, stdout=secondary, stderr=subprocess.PIPE, env=env)
    os.close(secondary)
    received = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(primary)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    text = received.decode("utf-8", errors="replace")
    assert "mallory" in text and ESC_CLEAR not in text and "\x9b" not in text
    assert "\\x1b[2Jmallory" in text.replace("\r\n", "\n")


def test_trace_shows_markup_literally_and_escapes_control_characters(history):
    for guid in history.deployed.values():
        proc = modelgov(history, "trace", guid)
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout
    markup = modelgov(history, "trace", history.deployed["markup"]).stdout
    assert "owner [/bold] [red]x[/red] (@SUM(A1))" in markup
    copy_type = json.loads(modelgov(history, "trace", history.deployed["markup"], "--json").stdout
                           )["registryCopy"]["typeName"]
    assert f"  [{copy_type}]" in markup  # rich took "[fs_path]" for a style tag and printed nothing
    forged = modelgov(history, "trace", history.forged_guid)
    assert forged.returncode == 0, forged.stderr
    assert "\x1b" not in forged.stdout and "\x9b" not in forged.stdout and "\r" not in forged.stdout
    assert "owner \\x1b[2Jmallory (\\t=1+1)" in forged.stdout
    assert "file:///nowhere/\\x1b[2J/forged/1.0" in forged.stdout


def test_verify_prints_what_atlas_holds_escaped(history):
    proc = modelgov(history, "verify", history.forged_guid)
    assert proc.returncode == 1  # the forged record matches no registry
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "file:///nowhere/\\x1b[2J/forged/1.0" in proc.stdout


def test_json_keeps_the_exact_values(history):
    found = json.loads(modelgov(history, "search", "--json").stdout)
    by_model = {r["modelName"]: r for r in found}
    for name, meta in DEPLOYED.items():
        assert (by_model[name]["owner"], by_model[name]["ownerLob"]) == (meta["owner"], meta["lob"])
    forged = by_model["forged"]
    assert (forged["owner"], forged["ownerLob"], forged["deployedBy"], forged["failureReason"]) == \
        (FORGED["owner"], FORGED["lob"], FORGED["deployedBy"], FORGED["failureReason"])
    assert json.loads(modelgov(history, "history", "forged", "--json").stdout)[0]["owner"] == FORGED["owner"]
    chain = json.loads(modelgov(history, "trace", history.forged_guid, "--json").stdout)
    assert chain["people"]["owner"] == FORGED["owner"] and chain["build"]["description"] == FORGED["failureReason"]
    assert json.loads(modelgov(history, "trace", history.deployed["formula"], "--json").stdout
                      )["build"]["description"] == DEPLOYED["formula"]["description"]


def rendered_html(markdown: str) -> str:
    """What a Markdown renderer shows (CommonMark with GFM tables)."""
    return MarkdownIt("commonmark").enable("table").render(markdown)


def test_markdown_report_shows_metadata_as_text(history):
    proc = modelgov(history, "report", "--since", "2000-01-01", "--until", "2100-01-01", "--format", "md")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x9b" not in proc.stdout
    html = rendered_html(proc.stdout)
    assert "<img" not in html and "<b>" not in html and "<code>tick" not in html
    assert "[/bold] [red]x[/red]" in html and '=HYPERLINK("http://x")'.replace('"', "&quot;") in html
    assert "![img](http://tracker) `tick`" in html
    assert "\\x1b[2Jmallory" in html
    # a value's "|" never splits a table row: every row of a table has the header's cell count
    assert "<table>" in html
    for table in html.split("<table>")[1:]:
        body = table.split("</table>")[0]
        widths = {row.count("<td") + row.count("<th") for row in body.split("<tr>")[1:]}
        assert len(widths) == 1, body


def test_prefect_artifacts_show_run_values_as_text(history):
    """The flow's Markdown artifacts (Prefect renders them): a failure text carrying what a hostile repo or
    server said cannot add links, images, HTML, code or table cells, and its ESC arrives escaped."""
    from flows.artifacts import batch_markdown, deployment_markdown

    hostile = f"[/bold] <img src=x> ![img](http://tracker) | cell `tick` {ESC_CLEAR}"
    failed = DeploySummary.failed_before_record("/srv/staged/[x](http://evil)", "validate", hostile)
    for markdown in (deployment_markdown(failed), batch_markdown([history.summaries["markup"], failed])):
        assert "\x1b" not in markdown
        html = rendered_html(markdown)
        assert "<img" not in html and "<a " not in html and "<code>" not in html, html
        assert "[/bold] &lt;img src=x&gt; ![img](http://tracker) | cell `tick` \\x1b[2J" in html, html
        for table in html.split("<table>")[1:]:
            body = table.split("</table>")[0]
            assert len({row.count("<td") + row.count("<th") for row in body.split("<tr>")[1:]}) == 1, body
    assert "/srv/staged/[x](http://evil)" in rendered_html(deployment_markdown(failed))


def test_validate_prints_the_owner_escaped(tmp_path):
    """`modelgov validate` echoes metadata; an owner written as a properties escape (\\u001b) arrives as ESC."""
    repo = stage(tmp_path, "echo", "\\u001b[2J[/bold]\\u009b", "retail", "d")
    proc = cli("validate", str(repo))
    assert "\x1b" not in proc.stdout + proc.stderr and "\x9b" not in proc.stdout + proc.stderr
    assert "\\x1b[2J[/bold]\\x9b" in proc.stdout + proc.stderr


def test_registry_verify_prints_a_hostile_manifest_escaped(history, tmp_path):
    """A manifest is written by whoever can write the registry; its paths reach the terminal escaped."""
    import shutil

    registry = tmp_path / "registry"
    shutil.copytree(Path(history.summaries["formula"].registry_uri.removeprefix("file://")), registry / "formula"
                    / "1.0")
    manifest_path = registry / "formula" / "1.0" / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"].append({**manifest["files"][0], "path": f"executable/{ESC_CLEAR}[/bold].bin"})
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    proc = cli("registry", "verify", f"file://{registry}", "formula", "1.0")
    assert proc.returncode != 0
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "\\x1b[2J[/bold].bin" in proc.stdout + proc.stderr



def test_numbers_stay_numbers_and_text_that_looks_like_one_is_neutralised():
    """The CSV writer's contract for what no compliance column holds today: an int -1 is the number -1,
    the string "-1" (a value someone typed) is text."""
    from governance.safe_output import write_csv

    out = io.StringIO()
    write_csv(out, [{"n": -1, "s": "-1", "none": None, "x": 'say "=1"'}], ["n", "s", "none", "x"])
    assert out.getvalue().splitlines() == ['"n","s","none","x"', '-1,"\'-1","","say ""=1"""']
