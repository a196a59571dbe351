"""Issue 20: the outbox can always be drained, through `modelgov outbox ...` as an operator runs it.

Before: a record written for an Atlas that was retired made `outbox sync` against the new Atlas exit 1 for
good (the way out was `--all`, replaying it into the wrong Atlas, or deleting files by hand), and one record
Atlas refused (a 4xx) blocked every record behind it."""

from __future__ import annotations

import json
import socket

import pytest

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import DEPLOYMENT_TYPE, UNGOVERNED_TYPE
from governance.atlas.typedefs import install_types
from governance.cli import main
from governance.config import state_dir
from governance.deploy.outbox import MAX_REFUSALS, Outbox


@pytest.fixture
def atlas(monkeypatch):
    monkeypatch.setenv("ATLAS_USERNAME", "admin")
    monkeypatch.setenv("ATLAS_PASSWORD", "admin")
    with AtlasEmulator(host="127.0.0.1", port=0) as emulator:
        client = AtlasClient(AtlasSettings(url=emulator.url, username="admin", password="admin"))
        install_types(client)
        yield emulator, client
        client.close()


def finding(outbox: Outbox, name: str, atlas_url: str):
    entity = {"typeName": UNGOVERNED_TYPE, "guid": "-1",
              "attributes": {"qualifiedName": f"ungoverned/{name}@modelgov", "name": name, "modelName": name}}
    return outbox.append("entities", {"entities": [entity]}, atlas_url=atlas_url, description=f"finding {name}")


def stop_missing(outbox: Outbox, qualified_name: str, atlas_url: str, status: str = "stopped"):
    """An update of a deployment this Atlas never heard of: Atlas answers 404 every time."""
    return outbox.append("update", {"type_name": DEPLOYMENT_TYPE, "qualified_name": qualified_name,
                                    "attributes": {"status": status}},
                         atlas_url=atlas_url, description=f"{qualified_name} -> {status}")


def exists(client, name):
    return client.get_entity_by_unique(UNGOVERNED_TYPE, f"ungoverned/{name}@modelgov") is not None


def test_a_record_for_a_retired_atlas_is_skipped_then_retargeted_or_dropped(atlas, capsys):
    emulator, client = atlas
    outbox = Outbox()
    old = finding(outbox, "m-retired", "http://retired-atlas.example:21000")
    other = finding(outbox, "m-other", "http://retired-atlas.example:21000")
    mine = finding(outbox, "m-here", emulator.url)

    assert main(["outbox", "sync", "--atlas", emulator.url]) == 0
    out = capsys.readouterr().out
    assert "skipped entities: finding m-retired: meant for http://retired-atlas.example:21000" in out
    assert exists(client, "m-here") and not exists(client, "m-retired")

    assert main(["outbox", "retarget", old.path.stem, "--atlas", emulator.url]) == 0
    assert main(["outbox", "drop", other.path.stem, "--reason", "that Atlas was retired"]) == 0
    assert main(["outbox", "sync", "--atlas", emulator.url]) == 0
    assert exists(client, "m-retired") and not exists(client, "m-other")
    assert Outbox().pending() == [] and Outbox().dead() == [] and mine.path.exists() is False
    log = [json.loads(line) for line in (state_dir() / "outbox" / "operations.log").read_text().splitlines()]
    assert [(e["action"], e["id"]) for e in log] == [("retarget", old.path.stem), ("drop", other.path.stem)]
    assert all(e["user"] and e["time"] for e in log)
    assert "that Atlas was retired" in log[1]["detail"]


def test_a_refused_record_does_not_block_the_others_and_becomes_a_dead_letter_with_its_followers(atlas, capsys):
    emulator, client = atlas
    outbox = Outbox()
    bad = stop_missing(outbox, "ghost/1.0/mlserver://h:1/x@modelgov", emulator.url)
    follower = stop_missing(outbox, "ghost/1.0/mlserver://h:1/x@modelgov", emulator.url, status="deployed")
    finding(outbox, "m-after", emulator.url)

    assert main(["outbox", "sync", "--atlas", emulator.url]) == 0
    out = capsys.readouterr().out
    assert exists(client, "m-after")  # the record behind the refused one landed
    assert "held update: ghost/1.0/mlserver://h:1/x@modelgov -> stopped" in out
    assert "held update: ghost/1.0/mlserver://h:1/x@modelgov -> deployed" in out  # waits behind, not replayed
    for _ in range(MAX_REFUSALS - 1):
        assert main(["outbox", "sync", "--atlas", emulator.url]) == 0
    out = capsys.readouterr().out
    assert f"refused by Atlas {MAX_REFUSALS} times" in out and "404" in out
    assert f"waits behind dead-lettered {bad.path.stem}" in out
    assert [e.path.stem for e in Outbox().dead()] == [bad.path.stem, follower.path.stem]
    assert Outbox().pending() == []

    assert main(["outbox", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["state"]) for r in rows] == [(bad.path.stem, "dead"), (follower.path.stem, "dead")]
    assert main(["outbox", "requeue", follower.path.stem]) == 0
    assert [e.path.stem for e in Outbox().pending()] == [follower.path.stem]
    assert Outbox().pending()[0].refusals == 0


def test_atlas_down_keeps_every_record_and_fails(atlas, capsys):
    emulator, _ = atlas
    outbox = Outbox()
    finding(outbox, "m-1", emulator.url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    finding(outbox, "m-2", closed)
    assert main(["outbox", "sync", "--atlas", closed]) == 1
    assert len(Outbox().pending()) == 2 and Outbox().dead() == []
