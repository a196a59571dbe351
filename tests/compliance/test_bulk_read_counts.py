"""Issue 23: the Atlas traffic of the compliance reads does not grow with every row. `modelgov report`,
`trace`, `verify` and `history` run through the CLI against the Atlas emulator behind a counting proxy, over a
fleet of N deployments (N versions of one model, each its own build, training run and dataset, plus one shared
sensitive dataset) written directly through Atlas's bulk API. Three sizes, inside and past Atlas's 100-entry
page, so that a cost per row shows as growth and a cost per page stays inside the bound."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import subprocess
from datetime import UTC, datetime

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.typedefs import install_types
from governance.compliance.times import to_millis
from tests.counting_proxy import CountingProxy

SIZES = (10, 120, 600)  # inside one search page, past it, and where 4 reads per 100 rows would break the bound
NS = "modelgov"
START = to_millis(datetime(2026, 11, 2, tzinfo=UTC))
SHARED = f"file:///data/shared-features.csv@{NS}"


def fleet_entities(size: int, repository: str) -> list[dict]:
    """One project, ``size`` versions: build, train process, own dataset, deployment, deploy process each.
    Version 1.0 is trained on every version's dataset (a trace that reads ``size`` datasets); the others on
    their own and the shared one."""
    entities: list[dict] = [
        {"typeName": "ml_project", "guid": "-1", "attributes": {"qualifiedName": f"fleet@{NS}", "name": "fleet"}},
        {"typeName": "modelgov_dataset", "guid": "-2",
         "attributes": {"qualifiedName": SHARED, "name": "shared-features.csv"}}]
    for i in range(size):
        v, base = f"{i + 1}.0", -10 * (i + 1)
        entities.append({"typeName": "modelgov_dataset", "guid": str(base - 1), "attributes": {
            "qualifiedName": f"file:///data/fleet-{i:03d}.csv@{NS}", "name": f"fleet-{i:03d}.csv"}})
    for i in range(size):
        v, base = f"{i + 1}.0", -10 * (i + 1)
        build, deployment = str(base - 2), str(base - 3)
        inputs = ([{"guid": str(-10 * (j + 1) - 1)} for j in range(size)] if i == 0 else [{"guid": str(base - 1)}])
        entities += [
            {"typeName": "modelgov_model_build", "guid": build, "attributes": {
                "qualifiedName": f"fleet/{v}@{NS}", "name": f"fleet v{v}", "version": (i + 1) * 1_000_000,
                "modelVersion": v, "owner": "ana", "ownerLob": "risk", "registryUri": f"file:///nowhere/fleet/{v}",
                "executablePath": "executable/model.joblib", "executableSha256": f"{i:064x}",
                "artifactChecksums": {"executable/model.joblib": f"{i:064x}"}},
             "relationshipAttributes": {"project": {"guid": "-1"}}},
            {"typeName": "modelgov_train_build_process", "guid": str(base - 4), "attributes": {
                "qualifiedName": f"fleet/{v}/train@{NS}", "name": f"train fleet v{v}", "userName": "ana",
                "inputs": [*inputs, {"guid": "-2"}], "outputs": [{"guid": build}]}},
            {"typeName": "modelgov_model_deployment", "guid": deployment, "attributes": {
                "qualifiedName": f"fleet/{v}/mlserver://127.0.0.1:9/run-{i:03d}@{NS}", "name": f"fleet v{v}",
                "owner": "ana", "createTime": START + i * 1000, "deployedTime": START + i * 1000,
                "status": "deployed", "modelName": "fleet", "modelVersion": v, "targetKind": "mlserver",
                "targetDetail": "127.0.0.1:9", "targetUri": f"mlserver://127.0.0.1:9?repository={repository}",
                "outcome": "succeeded", "deployedBy": "ops", "cpuMillicores": 0},
             "relationshipAttributes": {"build": {"guid": build}}},
            {"typeName": "modelgov_deploy_process", "guid": str(base - 5), "attributes": {
                "qualifiedName": f"fleet/{v}/deploy/run-{i:03d}@{NS}", "name": f"deploy fleet v{v}",
                "userName": "ops", "startTime": START + i * 1000,
                "inputs": [{"guid": build}], "outputs": [{"guid": deployment}]}}]
    return entities


@pytest.fixture(scope="module")
def fleets(tmp_path_factory):
    """For each size, a counting proxy in front of an emulator holding that fleet."""
    repository = tmp_path_factory.mktemp("empty-mlserver-repository")
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ATLAS_USERNAME", "admin")
        mp.setenv("ATLAS_PASSWORD", "admin")
        out = {}
        for size in SIZES:
            atlas = stack.enter_context(AtlasEmulator(host="127.0.0.1", port=0))
            client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
            install_types(client)
            client.upsert_entities(fleet_entities(size, str(repository)))
            shared = client.get_entity_by_unique("modelgov_dataset", SHARED)["entity"]["guid"]
            client.add_classifications(shared, [{"typeName": "modelgov_sensitive_data", "propagate": True,
                                                 "attributes": {"category": "pii"}}])
            client.close()
            out[size] = stack.enter_context(CountingProxy(atlas.url))
        yield out


def modelgov(proxy: CountingProxy, *args: str) -> tuple[subprocess.CompletedProcess, int]:
    """`modelgov ARGS --atlas PROXY` through governance.cli.main; the output and the Atlas calls it made."""
    from governance.cli import main

    proxy.reset()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([*args, "--atlas", proxy.url])
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(["modelgov", *args], code, out.getvalue(), err.getvalue()), proxy.total


def pages(n: int) -> int:
    return math.ceil(n / 100)


def measure(fleets, *args: str, check=None) -> dict[int, int]:
    calls = {}
    for size, proxy in fleets.items():
        proc, calls[size] = modelgov(proxy, *args)
        if check:
            check(size, proc)
        print(f"{' '.join(args)} over {size}: {calls[size]} Atlas calls {dict(proxy.by_endpoint())}")
    return calls


def test_report_reads_per_page_not_per_row(fleets):
    def check(size: int, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        assert [r["modelVersion"] for r in rows] == [f"{i + 1}.0" for i in range(size)]  # deploy order
        assert {r["ownerLob"] for r in rows} == {"risk"}
        assert {r["modelVersion"]: r["executableSha256"] for r in rows} == \
            {f"{i + 1}.0": f"{i:064x}" for i in range(size)}

    calls = measure(fleets, "report", "--since", "2026-11-01", "--until", "2026-11-30", "--format", "csv",
                    check=check)
    for size, n in calls.items():
        assert n <= pages(size) * 3 + 5, f"report over {size} deployments made {n} Atlas calls"
    md, _ = modelgov(fleets[10], "report", "--since", "2026-11-01", "--until", "2026-11-30", "--format", "md")
    assert "- Trained on sensitive data: fleet" in md.stdout
    assert md.stdout.count("shared-features.csv") >= 10  # every build's shared (sensitive) input is shown


def _without_relationships_in_search_headers(method: str, path: str, body: bytes) -> bytes:
    """A basic-search answer as from a server that leaves relationship attributes out of the headers."""
    if not path.endswith("/v2/search/basic"):
        return body
    page = json.loads(body)
    for header in page.get("entities") or []:
        (header.get("attributes") or {}).pop("build", None)
    return json.dumps(page).encode()


def test_report_without_build_guids_in_search_headers_reads_builds_by_name_per_page(fleets):
    """The fallback: builds found by OR-filtered searches on qualifiedName (50 a search), then read in bulk:
    the same report, two searches more per 100 rows, still a cost per page."""
    args = ("report", "--since", "2026-11-01", "--until", "2026-11-30", "--format", "csv")
    for size, proxy in fleets.items():
        expected, _ = modelgov(proxy, *args)
        with CountingProxy(proxy.url, rewrite=_without_relationships_in_search_headers) as stripped:
            proc, calls = modelgov(stripped, *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected.stdout.replace(proxy.url, stripped.url)
        print(f"report over {size}, no build in search headers: {calls} Atlas calls {dict(stripped.by_endpoint())}")
        assert calls <= pages(size) * 5 + 5, f"report over {size} deployments made {calls} Atlas calls"


def test_history_reads_per_page(fleets):
    def check(size: int, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert [r["modelVersion"] for r in rows] == [f"{i + 1}.0" for i in range(size)]
        assert {r["ownerLob"] for r in rows} == {"risk"}

    calls = measure(fleets, "history", "fleet", "--json", check=check)
    for size, n in calls.items():
        assert n <= pages(size) * 2, f"history over {size} deployments made {n} Atlas calls"


def test_trace_reads_the_training_data_in_bulk(fleets):
    def check(size: int, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        chain = json.loads(proc.stdout)
        assert len(chain["training"]["datasets"]) == size + 1
        assert [d["sensitive"] for d in chain["training"]["datasets"] if d["qualifiedName"] == SHARED] == ["pii"]
        assert chain["build"]["qualifiedName"] == f"fleet/1.0@{NS}"

    calls = measure(fleets, "trace", f"fleet/1.0/mlserver://127.0.0.1:9/run-000@{NS}", "--json", check=check)
    for size, n in calls.items():  # the deployment, its lineage, its audit, the chain's entities per page
        assert n <= 3 + pages(size + 3), f"trace of a build trained on {size + 1} datasets made {n} Atlas calls"


def test_verify_reads_the_model_records_per_page(fleets):
    def check(size: int, proc: subprocess.CompletedProcess) -> None:
        # nothing is installed: the registry copy and the target disagree with Atlas, which verify must say
        assert proc.returncode == 1, proc.stderr
        result = json.loads(proc.stdout)
        assert result["deployment"] == f"fleet/1.0/mlserver://127.0.0.1:9/run-000@{NS}"
        assert any("does not serve fleet 1.0" in m for m in result["mismatches"])

    calls = measure(fleets, "verify", f"fleet/1.0/mlserver://127.0.0.1:9/run-000@{NS}", "--json", check=check)
    for size, n in calls.items():  # the deployment, its build, its project; the model's builds and deployments
        assert n <= 3 + 2 * pages(size), f"verify with {size} records of the model made {n} Atlas calls"
