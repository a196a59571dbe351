"""`modelgov inventory`: one row per model version in use, recently retired or never deployed, checked against a
history deployed the way a user deploys (the saga, to the MLeap stand-in, recorded in the Atlas emulator): a
version replaced by a newer one, and a version whose production deploy was refused, with owner and purpose
values that are spreadsheet formulas. CSV and XLSX (read back with openpyxl) never hold a formula; JSON is
exact."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from emulators.atlas import AtlasEmulator
from emulators.mleap import MleapServingEmulator, write_linear_regression_bundle
from governance.compliance.inventory import FIELDS
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest
from governance.deploy.saga import SagaHooks, run_deploy
from governance.errors import StepFailed
from tests.compliance.test_safe_output import cli

pytestmark = pytest.mark.slow
HOSTILE = {"owner": '=HYPERLINK("http://x.example","open")', "lob": "+1", "description": "@SUM(A1)",
           "intended": "-2+3 scoring of churn"}


@dataclass
class History:
    atlas_url: str
    times: dict[str, int]  # deployed/stopped millis of scorer 1.0 and 1.1


def stage(root: Path, name: str, version: str, lines: list[str]) -> str:
    repo = root / f"{name}-{version}"
    (repo / "executable").mkdir(parents=True)
    write_linear_regression_bundle(repo / "executable" / "model.zip", ["a", "b"], [2.0, 3.0], 1.0)
    (repo / "metadata.txt").write_text("\n".join([f"model.name = {name}", f"model.version = {version}",
                                                  "model.type = regression", *lines, ""]), encoding="utf-8")
    (repo / "README.md").write_text(f"# {name}\n", encoding="utf-8")
    return str(repo)


def millis(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000 + 0.5)


def at(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    root = tmp_path_factory.mktemp("inventory")
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas, pytest.MonkeyPatch.context() as mp, \
            MleapServingEmulator(host="127.0.0.1", port=0) as mleap:
        for name, value in {"ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
                            "MODELGOV_STATE_DIR": str(root / "state")}.items():
            mp.setenv(name, value)
        (root / "bundles").mkdir()
        request = DeployRequest(target_uri=f"mleap://127.0.0.1:{mleap.port}?bundle_dir={root / 'bundles'}",
                                registry_uri=f"file://{root / 'registry'}", atlas_url=atlas.url, environment="staging")
        scorer = ["model.owner = Ana Müller", "model.owner.lob = risk", "model.description = scores applications",
                  "model.risk.tier = medium", "model.validation.status = pending"]
        run_deploy(request.for_source(stage(root, "scorer", "1.0", scorer)))
        run_deploy(request.for_source(stage(root, "scorer", "1.1", scorer)))  # replaces 1.0
        churn = [f"model.owner = {HOSTILE['owner']}", f"model.owner.lob = {HOSTILE['lob']}",
                 f"model.description = {HOSTILE['description']}", f"model.intended.use = {HOSTILE['intended']}",
                 "model.risk.tier = high", "model.validation.status = approved",
                 "model.validation.by = Model Risk Office", "model.validation.date = 2026-11-30"]
        refuse = SagaHooks(approve=lambda what, subject: ApprovalDecision("rejected", "Ana Approver",
                                                                          datetime.now(UTC), "freeze"))
        with pytest.raises(StepFailed):  # registered, then refused at the approval gate: never deployed
            run_deploy(DeployRequest(**{**request.__dict__, "approval_required": True, "environment": "production"})
                       .for_source(stage(root, "churn", "2.0", churn)), refuse)
        deployments = json.loads(cli("search", "--json", "--name", "scorer", "--atlas", atlas.url).stdout)
        by_version = {d["modelVersion"]: d for d in deployments}
        times = {"d10": millis(by_version["1.0"]["deployedTime"]), "s10": millis(by_version["1.0"]["stoppedTime"]),
                 "d11": millis(by_version["1.1"]["deployedTime"])}
        yield History(atlas.url, times)


def inventory(history: History, *args: str) -> list[dict]:
    proc = cli("inventory", "--format", "json", "--atlas", history.atlas_url, *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def status(rows: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["model"], r["version"], r["status"]) for r in rows]


def test_one_row_per_version_in_use_retired_or_never_deployed(history):
    now = inventory(history)
    assert status(now) == [("churn", "2.0", "never deployed"), ("scorer", "1.0", "retired"),
                           ("scorer", "1.1", "in use")]
    churn, old, current = now
    assert churn == churn | {"owner": HOSTILE["owner"], "ownerLob": HOSTILE["lob"], "purpose": HOSTILE["description"],
                             "intendedUse": HOSTILE["intended"], "riskTier": "high", "validationStatus": "approved",
                             "validatedBy": "Model Risk Office", "validationDate": "2026-11-30",
                             "firstDeployedTime": None, "retiredTime": None, "servingOn": None}
    assert (old["retiredTime"], old["riskTier"], old["validationStatus"]) == (at(history.times["s10"]), "medium",
                                                                            "pending")
    assert old["validationDate"] is None  # Atlas's 0 for an unset date is not a date
    assert current["firstDeployedTime"] == at(history.times["d11"]) and current["environments"] == "staging"
    assert current["servingOn"].startswith("mleap://127.0.0.1:") and current["retiredTime"] is None
    assert list(current) == FIELDS


def test_at_a_moment_and_the_retirement_window(history):
    t = history.times
    assert inventory(history, "--at", at(t["d10"] - 86_400_000)) == []  # nothing registered yet
    during = {(r["model"], r["version"]): r["status"] for r in inventory(history, "--at", at(t["d10"]))}
    assert during[("scorer", "1.0")] == "in use"
    assert during.get(("scorer", "1.1")) in (None, "never deployed")  # registered then, or not yet (seconds)
    later = at(t["s10"] + 10 * 86_400_000)
    assert status(inventory(history, "--at", later, "--retired-within", "5")) == [
        ("churn", "2.0", "never deployed"), ("scorer", "1.1", "in use")]  # 1.0 retired 10 days before
    assert ("scorer", "1.0", "retired") in status(inventory(history, "--at", later, "--retired-within", "11"))
    assert inventory(history, "--namespace", "other-cluster") == []  # another namespace's records are not ours
    bad = cli("inventory", "--retired-within", "-1", "--atlas", history.atlas_url)
    assert bad.returncode == 2 and "--retired-within -1: a number of days" in bad.stderr


def test_csv_cells_never_start_a_formula(history):
    proc = cli("inventory", "--format", "csv", "--atlas", history.atlas_url)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["model"] for r in rows] == ["churn", "scorer", "scorer"]
    for row in rows:
        assert not any(cell.lstrip(' "').startswith(("=", "+", "-", "@")) for cell in row.values()), row
    assert (rows[0]["owner"], rows[0]["ownerLob"], rows[0]["purpose"], rows[0]["intendedUse"]) == \
        tuple("'" + HOSTILE[k] for k in ("owner", "lob", "description", "intended"))


def test_xlsx_has_one_header_row_typed_cells_and_no_formulas(history, tmp_path):
    out = tmp_path / "inventory.xlsx"
    proc = cli("inventory", "--format", "xlsx", "--output", str(out), "--atlas", history.atlas_url)
    assert proc.returncode == 0 and "wrote the model inventory (3 versions)" in proc.stderr
    sheet = load_workbook(out).active
    header = [c.value for c in sheet[1]]
    assert header == [f"{f} (UTC)" if f.endswith("Time") else f for f in FIELDS]
    assert sheet.max_row == 4  # one header row, then one row per version
    column = {name: header.index(name) for name in header}
    churn, old, current = (list(sheet[n]) for n in (2, 3, 4))
    for row in (churn, old, current):
        assert not any(c.data_type == "f" for c in row)
    assert churn[column["owner"]].value == "'" + HOSTILE["owner"] and churn[column["owner"]].data_type == "s"
    assert churn[column["ownerLob"]].value == "'+1" and churn[column["purpose"]].value == "'@SUM(A1)"
    validated = churn[column["validationDate"]]
    assert validated.is_date and validated.value.date() == date(2026, 11, 30)
    retired = old[column["retiredTime (UTC)"]]
    assert retired.is_date and retired.value == datetime(1970, 1, 1) + timedelta(milliseconds=history.times["s10"])
    assert current[column["registeredTime (UTC)"]].is_date
    assert current[column["retiredTime (UTC)"]].value is None
    missing = cli("inventory", "--format", "xlsx", "--atlas", history.atlas_url)
    assert missing.returncode == 2 and "--format xlsx writes a workbook: give --output FILE.xlsx" in missing.stderr
