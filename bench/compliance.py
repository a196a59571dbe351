"""Compliance benchmark (issue 23): the Atlas calls of ``modelgov report --format csv`` over a fleet of N
deployment records, against reading the same report one row at a time, on the Atlas emulator and a real
Apache Atlas 2.1.

    python -m bench.compliance [--runs N] [--quick] [--size N] [--only emulator|atlas]

The fleet (``testbed.atlas_fleet``: each deployment its own build, training run and dataset, the worst case)
is written through Atlas's bulk API outside the clock. Ours: the report through ``governance.cli.main``, its
Atlas calls counted per deployment. Baseline: the reads the report made before issue 23 (the search and one
OR search per 50 builds for the line of business, then per build its entity by unique attribute, its
lineage and each training dataset by guid), run over the first ``BASELINE_SAMPLE`` deployments only (one
call costs 0.05-0.2 s on a real Atlas) and given per deployment; the JSON says so. Target: the issue's bound,
value <= (ceil(N/100) * 3 + 5) / N. The seconds of both are extra fields.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import math
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.atlas import start_server
from bench.common import Target, alternate, emit, failed, log, result
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import BUILD_TYPE, DEPLOYMENT_TYPE, TRAIN_PROCESS_TYPE
from governance.atlas.typedefs import install_types
from governance.compliance.queries import Deployment, DeploymentFilter
from governance.compliance.times import iso
from testbed.atlas_fleet import START_MS, write_fleet

BENCH = "atlas_calls_per_deployment_report"
BASELINE_SAMPLE = 100
_GUID = re.compile(r"/[0-9a-f-]{36}(?=/|$)")


@contextlib.contextmanager
def counted() -> Iterator[collections.Counter[str]]:
    """Count every Atlas call made in this process (``AtlasClient._request``: one per HTTP request sent;
    retries inside it are not counted, and the emulator needs none)."""
    calls: collections.Counter[str] = collections.Counter()
    original = AtlasClient._request

    def counting(self, method, path, **kwargs):
        calls[f"{method} {_GUID.sub('/{guid}', path)}"] += 1
        return original(self, method, path, **kwargs)

    AtlasClient._request = counting  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        AtlasClient._request = original  # type: ignore[method-assign]


def period(count: int) -> tuple[str, str]:
    """The report period holding the fleet's first ``count`` deployments (one a second from START_MS)."""
    return iso(START_MS), iso(START_MS + count * 1000)


def wait_until_searchable(client: AtlasClient, size: int, timeout: float = 300.0) -> None:
    """A real Atlas indexes through Solr: the report sees a record once its commit is in. Poll, bounded."""
    deadline = time.monotonic() + timeout
    params = {"typeName": DEPLOYMENT_TYPE, "excludeDeletedEntities": True}
    while sum(1 for _ in client.search_basic(params)) < size:
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {size} deployment records searchable after {timeout:.0f} s")
        time.sleep(2)


def report_calls(url: str, size: int) -> tuple[float, int, dict[str, int]]:
    """Seconds and Atlas calls of ``modelgov report --format csv`` over the whole fleet."""
    from governance.cli import main

    since, until = period(size)
    out = io.StringIO()
    with counted() as calls, contextlib.redirect_stdout(out):
        start = time.perf_counter()
        code = main(["report", "--since", since, "--until", until, "--format", "csv", "--atlas", url])
        seconds = time.perf_counter() - start
    rows = out.getvalue().count("\n") - 1
    if code != 0 or rows != size:
        raise RuntimeError(f"modelgov report exited {code} with {rows} rows, {size} expected")
    return seconds, sum(calls.values()), dict(calls.most_common())


def per_row_reads(client: AtlasClient, count: int) -> int:
    """The report's reads as they were before issue 23, over the first ``count`` deployments; returns the
    rows read (the results themselves are not kept: only the traffic is compared)."""
    window = {"condition": "AND", "criterion": [
        {"attributeName": "deployedTime", "operator": ">=", "attributeValue": str(START_MS)},
        {"attributeName": "deployedTime", "operator": "<", "attributeValue": str(START_MS + count * 1000)}]}
    found = [Deployment.from_header(h) for h in client.search_basic(
        DeploymentFilter(extra=(window,)).search_parameters())]
    names = sorted({d.build_qualified_name for d in found})
    for start in range(0, len(names), 50):
        criteria = [{"attributeName": "qualifiedName", "operator": "=", "attributeValue": n}
                    for n in names[start:start + 50]]
        list(client.search_basic({"typeName": BUILD_TYPE, "excludeDeletedEntities": True, "attributes": ["ownerLob"],
                                  "entityFilters": {"condition": "OR", "criterion": criteria}}))
    for name in names:
        build = (client.get_entity_by_unique(BUILD_TYPE, name) or {}).get("entity")
        if not build:
            continue
        lineage = client.lineage(build["guid"], direction="INPUT", depth=1)
        nodes = lineage.get("guidEntityMap") or {}
        trains = {r["fromEntityId"] for r in lineage.get("relations") or [] if r["toEntityId"] == build["guid"]
                  and nodes.get(r["fromEntityId"], {}).get("typeName") == TRAIN_PROCESS_TYPE}
        for relation in lineage.get("relations") or []:
            if relation["toEntityId"] in trains:
                client.get_entity(relation["fromEntityId"])
    return len(found)


def bench_server(server: str, info: dict, size: int, runs: int, work: Path) -> None:
    os.environ["ATLAS_USERNAME"], os.environ["ATLAS_PASSWORD"] = info.get("username", "admin"), info.get(
        "password", "admin")
    client = AtlasClient(AtlasSettings(url=info["url"], username=os.environ["ATLAS_USERNAME"],
                                       password=os.environ["ATLAS_PASSWORD"]))
    install_types(client)
    started = time.monotonic()
    write_fleet(client, size, str(work / "empty-repository"))
    wait_until_searchable(client, size)
    log(f"{server}: wrote {size} deployment records, searchable after {time.monotonic() - started:.0f} s")
    seconds: dict[str, list[float]] = {"ours": [], "baseline": []}
    by_endpoint: dict[str, int] = {}

    def ours(_: int) -> float:
        nonlocal by_endpoint
        took, calls, by_endpoint = report_calls(info["url"], size)
        seconds["ours"].append(took)
        return calls / size

    def baseline(_: int) -> float:
        with counted() as calls:
            start = time.perf_counter()
            rows = per_row_reads(client, min(BASELINE_SAMPLE, size))
            seconds["baseline"].append((time.perf_counter() - start) / rows)
        return sum(calls.values()) / rows

    value, base = alternate(ours, baseline, runs)
    client.close()
    bound = (math.ceil(size / 100) * 3 + 5) / size
    emit(result(BENCH, value, base, unit="calls/deployment", higher_is_better=False,
                baseline_name=f"per-row reads (before issue 23), over the first {min(BASELINE_SAMPLE, size)} "
                              "deployments", target=Target("value", "<=", round(bound, 4)), server=server,
                deployments=size, calls=round(statistics.median(value) * size), calls_by_endpoint=by_endpoint,
                report_seconds=round(statistics.median(seconds["ours"]), 3),
                baseline_seconds_per_deployment=round(statistics.median(seconds["baseline"]), 5),
                note="fleet: one model, each deployment its own build, train process and dataset "
                     "(testbed.atlas_fleet), written through the bulk API outside the clock"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", type=int, default=None, help="deployment records in the fleet (1000)")
    parser.add_argument("--only", choices=["emulator", "atlas"], default=None)
    args = parser.parse_args(argv)
    size = args.size or (120 if args.quick else 1000)
    runs = min(args.runs, 2) if args.quick else args.runs
    status = 0
    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-compliance-"))
    try:
        for server, service in (("emulator", "atlas-emulator"), ("atlas-2.1", "atlas")):
            if args.only and not service.endswith(args.only):
                continue
            svc = None
            try:
                svc, info = start_server(service, work)
                bench_server(server, info, size, runs, work)
            except Exception as exc:  # noqa: BLE001 - one server failing must not hide the other's result
                failed(BENCH, f"server {server}: {exc.__class__.__name__}: {exc}")
                status = 1
            finally:
                if svc is not None:
                    svc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
