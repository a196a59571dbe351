"""Our typedefs against the Atlas emulator (Atlas's real models loaded), and the entity naming rules."""

import copy
import json

import pytest

import atlas_types
from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.typedefs import TypedefIncompatible, install_types
from governance.deploy.entities import EntityBatch, add_location
from governance.errors import AtlasError
from tests.conftest import ROOT

INHERITED_FORBIDDEN = {"qualifiedName", "name", "description", "owner", "displayName", "userDescription",
                       "inputs", "outputs"}


@pytest.fixture
def client():
    with AtlasEmulator(host="127.0.0.1", port=0) as emulator:
        c = AtlasClient(AtlasSettings(url=emulator.url, username="admin", password="admin"))
        yield c
        c.close()


def test_typedefs_never_redeclare_inherited_attributes_or_collide():
    defs = atlas_types.load()
    ml = json.loads((ROOT / "emulators/atlas/models/4000-MachineLearning/4010-ml_model.json").read_text())
    inherited = {d["name"]: {a["name"] for a in d.get("attributeDefs", [])} for d in ml["entityDefs"]}
    for entity in defs["entityDefs"]:
        own = {a["name"] for a in entity["attributeDefs"]}
        parents = set().union(*(inherited.get(s, set()) for s in entity["superTypes"]))
        assert not own & (INHERITED_FORBIDDEN | parents), entity["name"]
        assert all(a["isOptional"] for a in entity["attributeDefs"]), entity["name"]
    ends = {d[end]["name"] for d in defs["relationshipDefs"] for end in ("endDef1", "endDef2")}
    assert not ends & {"model", "pipeline", "schema", "meanings", "inputToProcesses", "outputFromProcesses"}


def test_install_is_idempotent_and_loads_cleanly(client):
    first = install_types(client)
    assert "modelgov_model_deployment" in first.created and not first.updated
    second = install_types(client)
    assert not second.created and not second.updated
    deployment = client.get_typedef("modelgov_model_deployment")
    assert deployment["superTypes"] == ["ml_model_deployment"]
    assert {a["name"] for a in deployment["attributeDefs"]} >= {"targetKind", "outcome", "stoppedTime"}


def test_new_optional_attribute_is_added_with_put(client):
    install_types(client)
    newer = copy.deepcopy(atlas_types.load())
    build = next(d for d in newer["entityDefs"] if d["name"] == "modelgov_model_build")
    build["attributeDefs"].append({"name": "approvedBy", "typeName": "string", "isOptional": True,
                                   "cardinality": "SINGLE", "isUnique": False, "isIndexable": True})
    newer["enumDefs"][0]["elementDefs"].append({"value": "seldon", "ordinal": 4})
    report = install_types(client, newer)
    assert set(report.updated) == {"modelgov_model_build", "modelgov_target_kind"}
    stored = client.get_typedef("modelgov_model_build")
    assert "approvedBy" in {a["name"] for a in stored["attributeDefs"]}
    assert stored["version"] == 2


def test_incompatible_changes_are_refused_without_writing(client):
    install_types(client)
    broken = copy.deepcopy(atlas_types.load())
    build = next(d for d in broken["entityDefs"] if d["name"] == "modelgov_model_build")
    build["attributeDefs"].append({"name": "mustHave", "typeName": "string", "isOptional": False})
    next(a for a in build["attributeDefs"] if a["name"] == "framework")["typeName"] = "int"
    with pytest.raises(TypedefIncompatible) as info:
        install_types(client, broken)
    message = str(info.value)
    assert "modelgov_model_build.mustHave: Atlas cannot add a mandatory attribute" in message
    assert "modelgov_model_build.framework: server has type string, ours is int" in message
    assert "mustHave" not in {a["name"] for a in client.get_typedef("modelgov_model_build")["attributeDefs"]}


def test_server_without_ml_types_is_named(client):
    client.session.request("DELETE", f"{client.base}/v2/types/typedefs", json={
        "entityDefs": [{"name": n} for n in ("ml_model_deploy_process", "ml_model_train_build_process",
                                             "ml_project_create_process")],
        "relationshipDefs": [], "enumDefs": [], "structDefs": [], "classificationDefs": []})
    with pytest.raises(TypedefIncompatible, match=r"lacks Atlas's built-in ML model types .*ml_model_deploy_process"):
        install_types(client)


def test_storage_locations_follow_atlas_conventions():
    batch = EntityBatch()
    obj = add_location(batch, "s3://ml-reg/models/iris/1.0/data/x.csv", is_file=True, namespace="ns")
    by_guid = {e["guid"]: e for e in batch.entities}
    chain = []
    node = by_guid[obj]
    while node:
        chain.append((node["typeName"], node["attributes"]["qualifiedName"]))
        parent = (node.get("relationshipAttributes") or {}).get("container")
        node = by_guid[parent["guid"]] if parent else None
    assert chain == [("aws_s3_v2_object", "s3://ml-reg/models/iris/1.0/data/x.csv@ns"),
                     ("aws_s3_v2_directory", "s3://ml-reg/models/iris/1.0/data/@ns"),
                     ("aws_s3_v2_directory", "s3://ml-reg/models/iris/1.0/@ns"),
                     ("aws_s3_v2_directory", "s3://ml-reg/models/iris/@ns"),
                     ("aws_s3_v2_directory", "s3://ml-reg/models/@ns"),
                     ("aws_s3_v2_bucket", "s3://ml-reg@ns")]
    hdfs = add_location(batch, "hdfs://nn:8020/registry/iris/1.0", is_file=False, namespace="cl1")
    entity = next(e for e in batch.entities if e["guid"] == hdfs)
    assert entity["typeName"] == "hdfs_path"
    assert entity["attributes"]["qualifiedName"] == "hdfs://nn:8020/registry/iris/1.0@cl1"
    assert entity["attributes"]["name"] == "/registry/iris/1.0" and entity["attributes"]["clusterName"] == "cl1"
    other = add_location(batch, "https://data.example/iris.csv", is_file=True, namespace="ns")
    assert next(e for e in batch.entities if e["guid"] == other)["typeName"] == "modelgov_dataset"


def test_s3_chain_loads_into_atlas(client):
    install_types(client)
    batch = EntityBatch()
    add_location(batch, "s3://ml-reg/models/iris/1.0/executable/model.joblib", is_file=True, namespace="ns")
    result = client.upsert_entities(batch.entities)
    assert len(result.created) == len(batch.entities) == 6  # bucket, 4 directories, object


def test_concurrent_first_installs_both_succeed(client):
    """Two workers' first runs against a fresh Atlas: the other installer creates the types between our read
    and our create (Atlas answers 409). Found on the shared-server test; the loser now reads again."""
    other = AtlasClient(client.settings)

    class RacedClient(AtlasClient):
        raced = False

        def create_typedefs(self, typedefs):
            if not self.raced:
                self.raced = True
                install_types(other)  # the other worker wins the race right here
            return super().create_typedefs(typedefs)

    raced = RacedClient(client.settings)
    report = install_types(raced)
    assert raced.raced and report.created == [] and "modelgov_model_deployment" in report.unchanged
    assert client.get_typedef("modelgov_model_deployment") is not None
    other.close()
    raced.close()


RISK_ATTRIBUTES = {"riskTier", "intendedUse", "limitations", "validationStatus", "validatedBy", "validationDate"}


def before_risk_metadata() -> dict:
    """Our typedefs as the release before risk and purpose metadata had them."""
    older = copy.deepcopy(atlas_types.load())
    build = next(d for d in older["entityDefs"] if d["name"] == "modelgov_model_build")
    build["attributeDefs"] = [a for a in build["attributeDefs"] if a["name"] not in RISK_ATTRIBUTES]
    older["enumDefs"] = [e for e in older["enumDefs"]
                         if e["name"] not in ("modelgov_risk_tier", "modelgov_validation_status")]
    return older


def write_build(client, name: str, **attributes) -> str:
    """A build (and the project it must belong to) in one bulk request; its guid."""
    project = {"typeName": "ml_project", "guid": "-1", "attributes": {"qualifiedName": f"{name}@ns", "name": name}}
    build = {"typeName": "modelgov_model_build", "guid": "-2",
             "attributes": {"qualifiedName": f"{name}/1.0@ns", "name": f"{name} v1.0", "version": 1000000,
                            **attributes},
             "relationshipAttributes": {"project": {"guid": "-1", "relationshipType": "ml_project_model_build"}}}
    return client.upsert_entities([project, build]).guid_assignments["-2"]


def test_risk_attributes_upgrade_an_older_install_and_its_builds(client):
    """The new enums are created and the build type gains its optional attributes (PUT) in one install; a build
    recorded before still reads, without them, and a new one can use them (the enum exists before the PUT)."""
    install_types(client, before_risk_metadata())
    old = write_build(client, "old")
    report = install_types(client)
    assert sorted(report.created) == ["modelgov_risk_tier", "modelgov_validation_status"]
    assert report.updated == ["modelgov_model_build"]
    stored = {a["name"]: a for a in client.get_typedef("modelgov_model_build")["attributeDefs"]}
    assert stored["riskTier"]["typeName"] == "modelgov_risk_tier" and stored["validationDate"]["isOptional"]
    before = client.get_entity(old)["entity"]["attributes"]
    assert {k: before.get(k) for k in RISK_ATTRIBUTES} == dict.fromkeys(RISK_ATTRIBUTES)
    new = write_build(client, "new", riskTier="high", validationStatus="approved")
    attrs = client.get_entity(new)["entity"]["attributes"]
    assert (attrs["riskTier"], attrs["validationStatus"]) == ("high", "approved")
    # Atlas stores a date left out at create as 0 (1970-01-01), where a build older than the attribute has
    # none: readers take both as "not validated" (governance.compliance.times.iso)
    assert attrs["validationDate"] == 0 and attrs["validatedBy"] is None
    with pytest.raises(AtlasError, match="riskTier=critical: invalid value for type modelgov_risk_tier"):
        write_build(client, "bad", riskTier="critical")  # the enum guards the record too
