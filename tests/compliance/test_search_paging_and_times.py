"""`modelgov search` pages past Atlas's 100-result page (limit/offset, as the real server pages), and the
command line's times parse exactly. Fast: the Atlas emulator and bulk-written entities, no deploys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.typedefs import install_types
from governance.compliance.times import iso, parse_moment, to_millis
from governance.errors import ConfigError
from tests.conftest import ROOT

MANY = 230  # more than two of Atlas's default 100-result pages


@pytest.fixture
def many_deployments():
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas:
        client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
        install_types(client)
        start = to_millis(datetime(2026, 11, 1, tzinfo=UTC))
        entities = [
            {"typeName": "ml_project", "guid": "-1", "attributes": {"qualifiedName": "pager@modelgov", "name": "pager"}},
            {"typeName": "modelgov_model_build", "guid": "-2",
             "attributes": {"qualifiedName": "pager/1.0@modelgov", "name": "pager v1.0", "version": 1_000_000,
                            "modelVersion": "1.0", "owner": "ana", "ownerLob": "risk"},
             "relationshipAttributes": {"project": {"guid": "-1"}}}]
        for i in range(MANY):
            entities.append({"typeName": "modelgov_model_deployment", "guid": f"-{i + 3}", "attributes": {
                "qualifiedName": f"pager/1.0/mlserver://h{i % 3}:8080/run-{i:03d}@modelgov", "name": f"pager {i}",
                "owner": "ana", "createTime": start + i * 1000, "deployedTime": start + i * 1000,
                "status": "stopped" if i < MANY - 1 else "deployed", "cpuMillicores": 0, "modelName": "pager",
                "modelVersion": "1.0", "targetKind": "mlserver", "targetDetail": f"h{i % 3}:8080",
                "outcome": "succeeded", "deployedBy": "ops"},
                "relationshipAttributes": {"build": {"guid": "-2"}}})
        client.upsert_entities(entities)
        client.close()
        yield atlas


def search(atlas, *args: str) -> list[dict]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ATLAS_")},
           "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    proc = subprocess.run([sys.executable, "-m", "governance", "search", "--json", "--atlas", atlas.url, *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_search_pages_past_atlas_page_size(many_deployments):
    found = search(many_deployments, "--name", "pager")
    assert len(found) == MANY
    assert [r["qualifiedName"] for r in found] == [
        f"pager/1.0/mlserver://h{i % 3}:8080/run-{i:03d}@modelgov" for i in reversed(range(MANY))]
    assert {r["ownerLob"] for r in found} == {"risk"}  # joined from the build, for every page
    assert len(search(many_deployments, "--name", "pager", "--limit", "150")) == 150
    on_h1 = search(many_deployments, "--target", "h1:8080", "--lob", "risk")
    assert len(on_h1) == len([i for i in range(MANY) if i % 3 == 1])
    assert [r["guid"] for r in search(many_deployments, "--status", "deployed")] == [found[0]["guid"]]


def test_command_line_times():
    assert parse_moment("2026-12-01", option="--since") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_moment("2026-12-01", option="--until", end_of_day=True) == datetime(2026, 12, 2, tzinfo=UTC)
    assert to_millis(parse_moment("2026-12-01T10:00:00.250Z", option="--at")) == \
        to_millis(parse_moment("2026-12-01T12:00:00.250+02:00", option="--at")) == 1_796_119_200_250
    assert parse_moment("2026-12-01T10:00:00", option="--at").tzinfo is not None  # no offset: UTC
    assert iso(1_796_119_200_250) == "2026-12-01T10:00:00.250+00:00"
    assert iso(None) is None
    with pytest.raises(ConfigError, match="--at 'noon': not an ISO date or datetime"):
        parse_moment("noon", option="--at")


def _deployment(outcome: str, deployed: int, stopped: int | None):
    from governance.compliance.queries import Deployment

    return Deployment.from_header({"guid": "g", "attributes": {
        "qualifiedName": "m/1.0/mlserver://h:1/run@ns", "modelName": "m", "modelVersion": "1.0",
        "outcome": outcome, "deployedTime": deployed, "stoppedTime": stopped, "status": "stopped"}})


def test_serving_rule_and_attempts_that_deployed_nothing():
    from governance.compliance.report import _events

    served = _deployment("succeeded", 1000, 2000)
    assert [served.serving_at(t) for t in (999, 1000, 1999, 2000)] == [False, True, True, False]
    assert _deployment("succeeded", 1000, None).serving_at(10**13)
    for outcome in ("failed", "rejected", "pending"):
        assert not _deployment(outcome, 1000, 2000).serving_at(1500)
    rejected = _deployment("rejected", 1000, 1000)
    assert rejected.failed and _events(rejected, 0, 5000) == ("rejected attempt",)
    assert _events(served, 0, 1500) == ("deployed",) and _events(served, 1500, 5000) == ("stopped",)
    assert served.build_qualified_name == "m/1.0@ns"
