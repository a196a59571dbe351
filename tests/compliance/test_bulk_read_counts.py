"""Issue 23: the Atlas traffic of the compliance reads does not grow with every row. `modelgov report`,
`trace`, `verify` and `history` run through the CLI against the Atlas emulator behind a counting proxy, over a
fleet of N deployments (N versions of one model, each its own build, training run and dataset, plus one shared
sensitive dataset; testbed/atlas_fleet.py) written directly through Atlas's bulk API. Three sizes, inside
and past Atlas's 100-entry page, so that a cost per row shows as growth and a cost per page stays inside the
bound."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import subprocess

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.typedefs import install_types
from testbed.atlas_fleet import NS, SHARED, deployment_name, write_fleet
from tests.counting_proxy import CountingProxy

SIZES = (10, 120, 600)  # inside one search page, past it, and where 4 reads per 100 rows would break the bound
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
            write_fleet(client, size, str(repository), wide_first=True)
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

    calls = measure(fleets, "trace", deployment_name(0), "--json", check=check)
    for size, n in calls.items():  # the deployment, its lineage, its audit, the chain's entities per page
        assert n <= 3 + pages(size + 3), f"trace of a build trained on {size + 1} datasets made {n} Atlas calls"


def test_verify_reads_the_model_records_per_page(fleets):
    def check(size: int, proc: subprocess.CompletedProcess) -> None:
        # nothing is installed: the registry copy and the target disagree with Atlas, which verify must say
        assert proc.returncode == 1, proc.stderr
        result = json.loads(proc.stdout)
        assert result["deployment"] == deployment_name(0)
        assert any("does not serve fleet 1.0" in m for m in result["mismatches"])

    calls = measure(fleets, "verify", deployment_name(0), "--json", check=check)
    for size, n in calls.items():  # the deployment, its build, its project; the model's builds and deployments
        assert n <= 3 + 2 * pages(size), f"verify with {size} records of the model made {n} Atlas calls"
