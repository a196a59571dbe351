"""Issue 23: the Atlas traffic of the compliance reads does not grow with every row. `modelgov report`,
`trace`, `verify` and `history` run through the CLI against Atlas behind a counting proxy, over fleets of N
deployments (N versions of one model, each its own build, training run and dataset, plus one shared
sensitive dataset; testbed/atlas_fleet.py) written directly through Atlas's bulk API. Several sizes, inside
and past Atlas's 100-entry page, so that a cost per row shows as growth and a cost per page stays inside the
bound. On the emulator, and (real_atlas, slow) on a real Apache Atlas 2.1."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import subprocess
import time
from dataclasses import dataclass

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.typedefs import install_types
from governance.compliance.report import CSV_CHUNK
from governance.compliance.times import iso
from testbed.atlas_fleet import NS, START_MS, deployment_name, shared_name, write_fleet
from testbed.counting_proxy import CountingProxy

# inside one search page, past it, and where 4 reads per 100 rows would break the bound (emulator only)
SIZES = {"emulator": (10, 120, 600), "real": (10, 120)}
DAY_MS = 86_400_000
SEARCH_WAIT_S = 120  # a real Atlas indexes through Solr: records are searchable after its commit


@dataclass(frozen=True)
class Fleet:
    size: int
    model: str
    since: str  # a report period holding exactly this fleet's deployments
    until: str
    proxy: CountingProxy


def _searchable(client: AtlasClient, model: str, size: int) -> None:
    params = {"typeName": "modelgov_model_deployment", "excludeDeletedEntities": True,
              "entityFilters": {"attributeName": "modelName", "operator": "=", "attributeValue": model}}
    deadline = time.monotonic() + SEARCH_WAIT_S
    while sum(1 for _ in client.search_basic(params)) < size:
        assert time.monotonic() < deadline, f"{model}: fewer than {size} deployments searchable"
        time.sleep(1)


@pytest.fixture(scope="module", params=["emulator", pytest.param("real", marks=pytest.mark.real_atlas)])
def fleets(request, tmp_path_factory):
    """One Atlas (the emulator, or the session's real Atlas) with a fleet of each size (its own model and
    days), and a counting proxy in front of it."""
    repository = tmp_path_factory.mktemp("empty-mlserver-repository")
    with contextlib.ExitStack() as stack, pytest.MonkeyPatch.context() as mp:
        if request.param == "real":
            info = request.getfixturevalue("real_atlas")
            url, user, password = info["url"], info["username"], info["password"]
        else:
            url, user, password = stack.enter_context(AtlasEmulator(host="127.0.0.1", port=0)).url, "admin", "admin"
        mp.setenv("ATLAS_USERNAME", user)
        mp.setenv("ATLAS_PASSWORD", password)
        client = AtlasClient(AtlasSettings(url=url, username=user, password=password))
        install_types(client)
        proxy = stack.enter_context(CountingProxy(url))
        out = {}
        for n, size in enumerate(SIZES[request.param]):
            model, start = f"fleet{size}-{time.time_ns() % 10**8}", START_MS + n * DAY_MS
            write_fleet(client, size, str(repository), model=model, start_ms=start, wide_first=True)
            _searchable(client, model, size)
            out[size] = Fleet(size, model, iso(start), iso(start + DAY_MS), proxy)
        client.close()
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


def measure(fleets: dict[int, Fleet], args, check) -> dict[int, int]:
    """Run the command ``args(fleet)`` over every fleet; ``check(fleet, proc)`` its output; the calls."""
    calls = {}
    for size, fleet in fleets.items():
        proc, calls[size] = modelgov(fleet.proxy, *args(fleet))
        check(fleet, proc)
        print(f"{args(fleet)[0]} over {size}: {calls[size]} Atlas calls {dict(fleet.proxy.by_endpoint())}")
    return calls


def report_args(fleet: Fleet, fmt: str = "csv") -> tuple[str, ...]:
    return ("report", "--since", fleet.since, "--until", fleet.until, "--format", fmt)


def test_report_reads_per_page_not_per_row(fleets):
    def check(fleet: Fleet, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        rows = list(csv.DictReader(io.StringIO(proc.stdout)))
        assert [r["modelVersion"] for r in rows] == [f"{i + 1}.0" for i in range(fleet.size)]  # deploy order
        assert {r["ownerLob"] for r in rows} == {"risk"}
        assert {r["modelVersion"]: r["executableSha256"] for r in rows} == \
            {f"{i + 1}.0": f"{i:064x}" for i in range(fleet.size)}

    calls = measure(fleets, report_args, check)
    for size, n in calls.items():
        assert n <= pages(size) * 3 + 5, f"report over {size} deployments made {n} Atlas calls"
    small = fleets[10]
    md, _ = modelgov(small.proxy, *report_args(small, "md"))
    assert f"- Trained on sensitive data: {small.model}" in md.stdout
    assert md.stdout.count(f"{small.model}-shared-features.csv") >= 10  # every build's sensitive input is shown


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
    for size, fleet in fleets.items():
        expected, _ = modelgov(fleet.proxy, *report_args(fleet))
        with CountingProxy(fleet.proxy.url, rewrite=_without_relationships_in_search_headers) as stripped:
            proc, calls = modelgov(stripped, *report_args(fleet))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == expected.stdout.replace(fleet.proxy.url, stripped.url)
        print(f"report over {size}, no build in search headers: {calls} Atlas calls {dict(stripped.by_endpoint())}")
        assert calls <= pages(size) * 5 + 5, f"report over {size} deployments made {calls} Atlas calls"


class _BulkReadsFailAfter:
    """Answers `GET /v2/entity/bulk` with a body that is not JSON once ``after`` of them went through: with
    ``after=1`` and more than one chunk of builds, a report that breaks after its first rows were written."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.seen = 0

    def __call__(self, method: str, path: str, body: bytes) -> bytes:
        if method == "GET" and path.endswith("/v2/entity/bulk"):
            self.seen += 1
            if self.seen > self.after:
                return b"<html>proxy error</html>"
        return body


def test_history_reads_per_page(fleets):
    def check(fleet: Fleet, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert [r["modelVersion"] for r in rows] == [f"{i + 1}.0" for i in range(fleet.size)]
        assert {r["ownerLob"] for r in rows} == {"risk"}

    calls = measure(fleets, lambda fleet: ("history", fleet.model, "--json"), check)
    for size, n in calls.items():
        assert n <= pages(size) * 2, f"history over {size} deployments made {n} Atlas calls"


def test_trace_reads_the_training_data_in_bulk(fleets):
    def check(fleet: Fleet, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        chain = json.loads(proc.stdout)
        assert len(chain["training"]["datasets"]) == fleet.size + 1
        assert [d["sensitive"] for d in chain["training"]["datasets"]
                if d["qualifiedName"] == shared_name(fleet.model)] == ["pii"]
        assert chain["build"]["qualifiedName"] == f"{fleet.model}/1.0@{NS}"

    calls = measure(fleets, lambda fleet: ("trace", deployment_name(0, fleet.model), "--json"), check)
    for size, n in calls.items():  # the deployment, its lineage, its audit, the chain's entities per page
        assert n <= 3 + pages(size + 3), f"trace of a build trained on {size + 1} datasets made {n} Atlas calls"


def test_verify_reads_the_model_records_per_page(fleets):
    def check(fleet: Fleet, proc: subprocess.CompletedProcess) -> None:
        # nothing is installed: the registry copy and the target disagree with Atlas, which verify must say
        assert proc.returncode == 1, proc.stderr
        result = json.loads(proc.stdout)
        assert result["deployment"] == deployment_name(0, fleet.model)
        assert any(f"does not serve {fleet.model} 1.0" in m for m in result["mismatches"])

    calls = measure(fleets, lambda fleet: ("verify", deployment_name(0, fleet.model), "--json"), check)
    for size, n in calls.items():  # the deployment, its build, its project; the model's builds and deployments
        assert n <= 3 + 2 * pages(size), f"verify with {size} records of the model made {n} Atlas calls"


def test_impact_reads_per_page(fleets):
    """`modelgov impact` of the dataset every version was trained on: dataset -> train processes -> builds ->
    deployments, each level a page of guids a call (it read each build's deployments on its own before)."""
    def check(fleet: Fleet, proc: subprocess.CompletedProcess) -> None:
        assert proc.returncode == 0, proc.stderr
        rows = json.loads(proc.stdout)
        assert sorted(r["deployment"] for r in rows) == sorted(deployment_name(i, fleet.model)
                                                                for i in range(fleet.size))
        assert {r["kind"] for r in rows} == {"deployment"}

    def args(fleet: Fleet) -> tuple[str, ...]:
        return ("impact", shared_name(fleet.model).rsplit("@", 1)[0], "--json")

    calls = measure(fleets, args, check)
    for size, n in calls.items():  # finding the dataset (two spellings of a file), then three levels of pages
        assert n <= 11 + 3 * pages(size), f"impact over {size} deployments made {n} Atlas calls"


def test_streamed_csv_report_is_the_rendered_one(fleets, tmp_path):
    """`report --format csv` streams (builds read a page of rows at a time, rows written as they are read):
    the same bytes as rendering the whole report, and to --output only once complete."""
    from governance.atlas.client import AtlasClient, AtlasSettings
    from governance.compliance.report import build_report, render
    from governance.compliance.times import parse_moment

    fleet = fleets[max(fleets)]
    streamed, _ = modelgov(fleet.proxy, *report_args(fleet))
    client = AtlasClient(AtlasSettings(url=fleet.proxy.url, username="admin", password="admin"))
    rendered = render(build_report(client, parse_moment(fleet.since, option="--since"),
                                   parse_moment(fleet.until, option="--until", end_of_day=True), fleet.proxy.url),
                      "csv")
    assert streamed.stdout == rendered

    target = tmp_path / "report.csv"
    # the emulator's largest fleet (600) has four chunks of builds: the second read fails after 150 rows were
    # written; the real Atlas's (120) has one, read before any row: there it is that one that fails
    broken = CountingProxy(fleet.proxy.url, rewrite=_BulkReadsFailAfter(1 if fleet.size > CSV_CHUNK else 0))
    with broken:
        proc, _ = modelgov(broken, *report_args(fleet), "--output", str(target))
    assert proc.returncode != 0
    assert list(tmp_path.iterdir()) == [], "a report that failed half-way left a file behind"
    proc, _ = modelgov(fleet.proxy, *report_args(fleet), "--output", str(target))
    assert proc.returncode == 0, proc.stderr
    assert target.read_text(encoding="utf-8") == rendered
