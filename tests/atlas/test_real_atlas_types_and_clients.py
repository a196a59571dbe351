"""Our typedefs and two clients against the session's real Apache Atlas (tests/real_atlas.py).

The install test must be the first real-Atlas test to touch modelgov's types (a fresh Atlas has none);
tests/atlas/ sorts before every other real-Atlas module, and the test says so when it is not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from apache_atlas.client.base_client import AtlasClient as ApacheAtlasClient
from apache_atlas.model.instance import AtlasEntity, AtlasEntityWithExtInfo

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.typedefs import install_types
from tests.atlas.test_typedefs_and_entities import before_risk_metadata
from tests.conftest import ROOT

pytestmark = pytest.mark.real_atlas


@pytest.fixture
def client(real_atlas):
    c = AtlasClient(AtlasSettings(url=real_atlas["url"], username=real_atlas["username"],
                                  password=real_atlas["password"]))
    yield c
    c.close()


def previous_release() -> dict:
    """Our typedefs as an earlier release had them: one optional attribute and one enum value fewer, and none
    of the risk and purpose attributes of the build or their two enums (created, then referred to by the PUT
    of the build, in one install)."""
    older = before_risk_metadata()
    deployment = next(d for d in older["entityDefs"] if d["name"] == "modelgov_model_deployment")
    deployment["attributeDefs"] = [a for a in deployment["attributeDefs"] if a["name"] != "stoppedTime"]
    kinds = next(e for e in older["enumDefs"] if e["name"] == "modelgov_target_kind")
    kinds["elementDefs"] = [e for e in kinds["elementDefs"] if e["value"] != "other"]
    return older


def modelgov_cli(real_atlas: dict, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ATLAS_USERNAME": real_atlas["username"], "ATLAS_PASSWORD": real_atlas["password"]}
    env.pop("ATLAS_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "governance", *args, "--atlas", real_atlas["url"]],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_install_types_fresh_then_as_an_upgrade_then_nothing(real_atlas, client):
    assert client.get_typedef("modelgov_model_deployment") is None, (
        "modelgov's types are already on this Atlas: this test must run first on a fresh real Atlas")
    fresh = install_types(client, previous_release())           # POST of every type on a fresh Atlas
    assert set(fresh.created) >= {"modelgov_model_deployment", "modelgov_target_kind", "modelgov_sensitive_data",
                                  "modelgov_build_registry_copy"} and not fresh.updated
    upgrade = modelgov_cli(real_atlas, "atlas", "install-types")  # PUT of the added attribute and enum value
    assert upgrade.returncode == 0, upgrade.stderr
    assert "updated: " in upgrade.stdout and "modelgov_model_deployment" in upgrade.stdout
    assert "modelgov_target_kind" in upgrade.stdout
    assert "created: modelgov_risk_tier, modelgov_validation_status" in upgrade.stdout
    assert "modelgov_model_build" in upgrade.stdout.split("updated: ", 1)[1]
    build = {a["name"]: a["typeName"] for a in client.get_typedef("modelgov_model_build")["attributeDefs"]}
    assert (build["riskTier"], build["validationDate"]) == ("modelgov_risk_tier", "date")
    deployment = client.get_typedef("modelgov_model_deployment")
    assert "stoppedTime" in {a["name"] for a in deployment["attributeDefs"]}
    assert deployment["superTypes"] == ["ml_model_deployment"]
    kinds = client.get_typedef("modelgov_target_kind")
    assert [e["value"] for e in kinds["elementDefs"]] == ["mlserver", "mleap", "kserve", "spark", "other"]  # the missing value is appended
    again = modelgov_cli(real_atlas, "atlas", "install-types")
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout and "updated" not in again.stdout, again.stdout
    assert install_types(client).created == [] and install_types(client).updated == []


def test_our_client_and_apache_atlas_client_read_the_same_entity(real_atlas, client):
    qn = f"clients-{uuid.uuid4().hex[:8]}"
    result = client.upsert_entities([{"typeName": "ml_project", "guid": "-1",
                                      "attributes": {"qualifiedName": qn, "name": qn, "description": "ours"}}])
    guid = result.guid_assignments["-1"]
    apache = ApacheAtlasClient(real_atlas["url"], (real_atlas["username"], real_atlas["password"]))
    theirs = apache.entity.get_entity_by_guid(guid)
    assert theirs.entity.typeName == "ml_project" and theirs.entity.attributes["qualifiedName"] == qn
    by_unique = apache.entity.get_entity_by_attribute("ml_project", {"qualifiedName": qn})
    assert by_unique.entity.guid == guid
    # Apache's client writes, ours reads back
    entity = AtlasEntity({"typeName": "ml_project", "attributes": {"qualifiedName": qn + "-apache",
                                                                   "name": qn + "-apache"}})
    created = apache.entity.create_entity(AtlasEntityWithExtInfo({"entity": entity}))
    apache_guid = created.mutatedEntities["CREATE"][0].guid
    assert client.get_entity_by_unique("ml_project", qn + "-apache")["entity"]["guid"] == apache_guid
    assert apache.typedef.get_entitydef_by_name("modelgov_model_deployment").superTypes == ["ml_model_deployment"]
    # both search through the index: bounded wait for the commit
    deadline = time.monotonic() + 60
    while True:
        ours = {h["guid"] for h in client.search_basic({"typeName": "ml_project", "query": qn})}
        found = apache.discovery.basic_search("ml_project", None, qn, True)
        theirs_found = {e.guid for e in (found.entities or [])}
        if {guid, apache_guid} <= ours and {guid, apache_guid} <= theirs_found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {guid, apache_guid} <= ours and {guid, apache_guid} <= theirs_found
