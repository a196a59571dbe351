"""The outbox on its own: durable files, replay in write order, stop at the first failure, nothing twice."""

from __future__ import annotations

import os

from governance.deploy.outbox import Outbox
from governance.errors import AtlasUnavailable


class FlakyAtlas:
    """Records partial updates; fails the calls whose numbers are in ``fail``."""

    def __init__(self, fail: set[int] | None = None):
        self.fail, self.calls, self.applied = fail or set(), 0, []

    def partial_update_by_unique(self, type_name, qualified_name, attributes):
        self.calls += 1
        if self.calls in self.fail:
            raise AtlasUnavailable("Atlas at http://atlas:21000 is not reachable: ConnectionError")
        self.applied.append((qualified_name, attributes["status"]))


def _update(outbox: Outbox, name: str, status: str):
    return outbox.append("update", {"type_name": "modelgov_model_deployment", "qualified_name": name,
                                    "attributes": {"status": status}},
                         atlas_url="http://atlas:21000", description=f"{name} -> {status}")


def test_records_are_durable_files_replayed_in_order_exactly_once(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    for i, status in enumerate(["deploying", "deployed", "stopped"]):
        _update(outbox, f"m/{i}", status)
    files = sorted(p.name for p in (tmp_path / "outbox").iterdir() if p.suffix == ".json")
    assert len(files) == 3 and not [p for p in (tmp_path / "outbox").iterdir() if p.name.endswith(".tmp")]
    assert all(os.stat(tmp_path / "outbox" / f).st_size > 0 for f in files)

    atlas = FlakyAtlas(fail={2})
    replayed, pending = outbox.sync(atlas)
    assert [e.description for e in replayed] == ["m/0 -> deploying"]
    assert [e.description for e in pending] == ["m/1 -> deployed", "m/2 -> stopped"]  # order kept

    replayed, pending = Outbox(tmp_path / "outbox").sync(atlas)  # a new process sees the same files
    assert [e.description for e in replayed] == ["m/1 -> deployed", "m/2 -> stopped"] and pending == []
    assert atlas.applied == [("m/0", "deploying"), ("m/1", "deployed"), ("m/2", "stopped")]
    assert tuple(outbox.sync(atlas)) == ([], []) and len(atlas.applied) == 3


def test_sync_for_one_atlas_leaves_records_of_another(tmp_path):
    outbox = Outbox(tmp_path / "outbox")
    _update(outbox, "m/0", "deployed")
    replayed, pending = outbox.sync(FlakyAtlas(), only_url="http://other-atlas:21000")
    assert replayed == [] and len(pending) == 1
