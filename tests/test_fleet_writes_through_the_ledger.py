"""Undeploy's ``stopped`` record and reconcile's ungoverned-model finding go through the ledger like every
other write: while Atlas is unreachable they wait in the outbox and a sync replays them, instead of being lost
(before, both wrote to Atlas directly and an outage dropped the record after the target had changed)."""

from __future__ import annotations

from governance.atlas.constants import UNGOVERNED_TYPE
from governance.deploy.fleet import reconcile_target, undeploy
from governance.deploy.ledger import Ledger
from governance.deploy.outbox import Outbox
from governance.errors import AtlasUnavailable
from governance.targets.base import DeploymentResult, Release, ServedModel, ServingTarget

ROW = {"qualifiedName": "m/1.0/mlserver://mem:8080/run-1@modelgov", "modelName": "m", "modelVersion": "1.0",
       "status": "deployed", "createTimeMs": 1, "serializedObjectUri": None, "orchestratorRunId": "run-1"}


class MemoryTarget(ServingTarget):
    """Serves what it is told to, and answers ``served()`` from that, like a real target's own state."""

    kind = "mlserver"

    def __init__(self, serving: list[ServedModel]):
        super().__init__("mlserver://mem:8080?repository=/x")
        self.serving = list(serving)

    def deploy(self, release: Release) -> DeploymentResult:
        raise AssertionError("not deployed in these tests")

    def status(self, name: str, version: str) -> str:
        return "deployed"

    def undeploy(self, name: str, version: str) -> None:
        self.serving = [m for m in self.serving if (m.name, m.target_version) != (name, version)]

    def served(self, name: str | None = None) -> list[ServedModel]:
        return [m for m in self.serving if name in (None, m.name)]


class AtlasGoneForWrites:
    """An Atlas that answered the reads and then went away: every write fails as unreachable."""

    settings = type("S", (), {"url": "http://atlas.test:21000"})()

    def __init__(self):
        self.applied: list[tuple] = []
        self.down = True

    def get_entity_by_unique(self, type_name, qualified_name):
        return None

    def partial_update_by_unique(self, type_name, qualified_name, attributes):
        if self.down:
            raise AtlasUnavailable("Atlas at http://atlas.test:21000 is not reachable: ConnectionError")
        self.applied.append(("update", qualified_name, attributes["status"]))

    def upsert_entities(self, entities):
        if self.down:
            raise AtlasUnavailable("Atlas at http://atlas.test:21000 is not reachable: ConnectionError")
        self.applied.extend(("entity", e["typeName"], e["attributes"]["qualifiedName"]) for e in entities)


class KnownRecords(Ledger):
    """The ledger with its reads answered from ``rows`` (the Atlas reads are not what is under test)."""

    def __init__(self, atlas, rows, outbox):
        super().__init__(atlas, outbox=outbox)
        self.rows = rows

    def records_on(self, target_detail, model_name=None, statuses=("deployed", "deploying")):
        return [r for r in self.rows if r["status"] in statuses and model_name in (None, r["modelName"])]


def test_undeploy_during_an_outage_keeps_the_stopped_record_in_the_outbox(tmp_path):
    target = MemoryTarget([ServedModel("m", "1.0", "1000000", "ab" * 32)])
    atlas, outbox = AtlasGoneForWrites(), Outbox(tmp_path / "outbox")
    stopped = undeploy(target, KnownRecords(atlas, [dict(ROW, targetDetail="mem:8080")], outbox), "m", None,
                       "retired model")
    assert stopped == [ROW["qualifiedName"]] and target.served() == []
    [entry] = outbox.pending()
    assert entry.kind == "update" and entry.payload["attributes"]["status"] == "stopped"
    assert entry.payload["attributes"]["stopReason"] == "undeploy: retired model"

    atlas.down = False
    replayed, pending = outbox.sync(atlas)
    assert len(replayed) == 1 and pending == []
    assert atlas.applied == [("update", ROW["qualifiedName"], "stopped")]


def test_an_ungoverned_model_found_during_an_outage_is_recorded_once_atlas_is_back(tmp_path):
    target = MemoryTarget([ServedModel("shadow", "9.0", "9000000", "cd" * 32)])
    atlas, outbox = AtlasGoneForWrites(), Outbox(tmp_path / "outbox")
    report = reconcile_target(target, KnownRecords(atlas, [], outbox))
    [finding] = report.findings
    assert (finding.kind, finding.action) == ("ungoverned", "recorded")
    [entry] = outbox.pending()
    assert entry.kind == "entities"

    atlas.down = False
    outbox.sync(atlas)
    assert atlas.applied == [("entity", UNGOVERNED_TYPE, finding.atlas)]
    assert outbox.pending() == []
