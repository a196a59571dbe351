"""Contract tests for the Atlas v2 emulator, run against the emulator and against a real Apache Atlas.

Every test that takes the ``atlas`` fixture runs twice: ``[emulator]`` in-process and ``[real]`` against the
session's real Atlas (tests/real_atlas.py). Every test creates uniquely named types/entities. Where the two
legitimately differ (a real Atlas indexes through Solr, so a write is searchable only after a commit), the
test waits with a bounded poll; the differences that cannot be emulated are listed in emulators/atlas/README.md.
"""

from __future__ import annotations

import copy
import json
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.atlas import AtlasEmulator

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "atlas_samples" / "search-basic"
UID = uuid.uuid4().hex[:8]


class Atlas:
    """Small HTTP helper bound to one base URL."""

    def __init__(self, base: str, auth: tuple[str, str]) -> None:
        self.base = base.rstrip("/")
        self.s = requests.Session()
        self.s.auth = auth
        self._version: tuple[int, ...] | None = None

    @property
    def v21(self) -> bool:
        """Atlas 2.1 (the real server: newest war on Maven Central) where it answers differently from 2.4
        (what the emulator follows, read from Atlas's release-2.4.0 source); see emulators/atlas/README.md."""
        if self._version is None:
            text = self.ok("GET", "/api/atlas/admin/version")["Version"]
            self._version = tuple(int(x) for x in text.split("-")[0].split(".")[:2])
        return self._version < (2, 2)

    def call(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = self.base + (path if path.startswith("/api/") else "/api/atlas/v2" + path)
        return self.s.request(method, url, timeout=30, **kw)

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.call(method, path, **kw)
        assert r.status_code in (200, 204), (r.status_code, r.text)
        return r.json() if r.status_code == 200 and r.content else None

    def err(self, method: str, path: str, status: int, code: str, **kw: Any) -> dict[str, Any]:
        r = self.call(method, path, **kw)
        assert r.status_code == status, (r.status_code, r.text)
        body = r.json()
        assert body["errorCode"] == code, body
        return body


@pytest.fixture(scope="module", params=["emulator", pytest.param("real", marks=pytest.mark.real_atlas)])
def atlas(request: pytest.FixtureRequest) -> Iterator[Atlas]:
    if request.param == "real":
        info = request.getfixturevalue("real_atlas")
        yield Atlas(info["url"], (info["username"], info["password"]))
        return
    with AtlasEmulator(host="127.0.0.1", port=0) as emu:
        yield Atlas(emu.url, ("admin", "admin"))


T = f"mgt{UID}_table"       # stands in for hive_table
M = f"mgt{UID}_misc"        # same attributes as T, for non-search tests
C = f"mgt{UID}_column"      # stands in for hive_column
P = f"mgt{UID}_path"        # hdfs_path subtype
TAG = f"mgt{UID}_fooTag"
PII = f"mgt{UID}_PII"
ENUM = f"mgt{UID}_level"


@pytest.fixture(scope="module")
def types(atlas: Atlas) -> None:
    """Module-wide test types (unique per run so the tests also work against a real Atlas)."""
    opt = {"isOptional": True, "cardinality": "SINGLE"}
    attrs = [
        {"name": "retention", "typeName": "int", **opt},
        {"name": "temporary", "typeName": "boolean", **opt},
        {"name": "lastAccessTime", "typeName": "date", **opt},
        {"name": "createTime", "typeName": "date", **opt},
        {"name": "comment", "typeName": "string", **opt},
        {"name": "level", "typeName": ENUM, **opt},
        {"name": "tags", "typeName": "array<string>", "isOptional": True, "cardinality": "SET"},
        {"name": "props", "typeName": "map<string,string>", **opt},
    ]
    atlas.ok("POST", "/types/typedefs", json={
        "enumDefs": [{"name": ENUM, "elementDefs": [{"value": "LOW", "ordinal": 0}, {"value": "HIGH", "ordinal": 1}]}],
        "classificationDefs": [
            {"name": TAG, "attributeDefs": [{"name": "type", "typeName": "string", **opt}]},
            {"name": PII, "attributeDefs": []},
        ],
        "entityDefs": [
            {"name": T, "superTypes": ["DataSet"], "attributeDefs": attrs},
            {"name": M, "superTypes": ["DataSet"], "attributeDefs": attrs},
            {"name": C, "superTypes": ["DataSet"], "attributeDefs": []},
            {"name": P, "superTypes": ["hdfs_path"], "attributeDefs": []},
        ],
    })


def eventually(check: Callable[[], Any], *, timeout: float = 60.0, what: str = "condition") -> Any:
    """A real Atlas indexes through Solr (searchable after a commit) and may propagate classifications in
    background tasks (2.4: deferred actions): poll a check until it holds, bounded. The emulator is instant,
    so there the first call decides."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            error: Exception | None = None
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not true after {timeout:.0f}s") from error
        time.sleep(0.5)


def bulk(atlas: Atlas, *entities: dict[str, Any], referred: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"entities": list(entities)}
    if referred:
        body["referredEntities"] = referred
    return atlas.ok("POST", "/entity/bulk", json=body)


def ml_chain(atlas: Atlas, tag: str) -> dict[str, str]:
    """project -> build -> deploy process -> deployment (plus a training dataset feeding a train process)."""
    q = f"{tag}-{UID}"
    resp = bulk(
        atlas,
        {"typeName": "ml_project", "guid": "-1", "attributes": {"qualifiedName": f"proj-{q}", "name": f"proj-{q}"}},
        {"typeName": "hdfs_path", "guid": "-5", "attributes": {"qualifiedName": f"hdfs://nn/train-{q}@cl1",
                                                               "name": f"train-{q}", "path": f"hdfs://nn/train-{q}"}},
        {"typeName": "ml_model_train_build_process", "guid": "-6", "attributes": {
            "qualifiedName": f"train-proc-{q}", "name": f"train-proc-{q}", "userName": "ci",
            "inputs": [{"guid": "-5"}], "outputs": [{"guid": "-2"}]}},
        {"typeName": "ml_model_build", "guid": "-2", "attributes": {
            "qualifiedName": f"build-{q}", "name": f"build-{q}", "version": 3},
         "relationshipAttributes": {"project": {"guid": "-1"}}},
        {"typeName": "ml_model_deploy_process", "guid": "-4", "attributes": {
            "qualifiedName": f"deploy-proc-{q}", "name": f"deploy-proc-{q}", "userName": "ci",
            "inputs": [{"guid": "-2"}], "outputs": [{"guid": "-3"}]}},
        {"typeName": "ml_model_deployment", "guid": "-3", "attributes": {
            "qualifiedName": f"dep-{q}@prod", "name": f"dep-{q}", "createTime": 1767225600000,
            "deployedTime": "2026-01-01T00:00:00.000Z", "status": "deployed", "cpuMillicores": 500,
            "build": {"guid": "-2"}}},
    )
    g = resp["guidAssignments"]
    return {"project": g["-1"], "build": g["-2"], "deployment": g["-3"], "deploy": g["-4"], "train_data": g["-5"],
            "train": g["-6"], "q": q}


# ----- admin / auth / transport -------------------------------------------------------------------------

def test_admin_status_is_open_and_request_id_only_on_bodiless_answers(atlas: Atlas) -> None:
    r = requests.get(atlas.base + "/api/atlas/admin/status", timeout=10)
    assert r.status_code == 200 and r.json() == {"Status": "ACTIVE"}
    v = atlas.call("GET", "/api/atlas/admin/version")
    assert v.status_code == 200 and "Version" in v.json()
    # AuditFilter sets requestId after the chain: a committed (JSON) body never carries it, a 204 does
    assert "requestId" not in r.headers and "requestId" not in v.headers
    guid = atlas.ok("POST", "/entity", json={"entity": {"typeName": "DataSet", "attributes": {
        "qualifiedName": f"reqid-{UID}", "name": "r"}}})["mutatedEntities"]["CREATE"][0]["guid"]
    labelled = atlas.call("POST", f"/entity/guid/{guid}/labels", json=["x"])
    assert labelled.status_code == 204 and labelled.headers.get("requestId")


def test_bad_credentials_give_html_401_without_challenge(atlas: Atlas) -> None:
    for auth in [None, ("admin", "wrong")]:
        r = requests.get(atlas.base + "/api/atlas/v2/types/typedefs/headers", auth=auth, timeout=10)
        assert r.status_code == 401
        assert "WWW-Authenticate" not in r.headers
        assert "html" in r.headers.get("Content-Type", "").lower()
        assert "<html" in r.text.lower()


def test_bearer_tokens_and_extra_users() -> None:
    with AtlasEmulator(port=0, users={"alice": "pw"}, tokens=["tok-1"]) as emu:
        url = emu.url + "/api/atlas/v2/types/typedef/name/DataSet"
        assert requests.get(url, headers={"Authorization": "Bearer tok-1"}, timeout=10).status_code == 200
        assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401
        assert requests.get(url, auth=("alice", "pw"), timeout=10).status_code == 200
        assert requests.get(url, auth=("admin", "admin"), timeout=10).status_code == 401


def test_unknown_path_and_bad_json_are_plain_text_500(atlas: Atlas) -> None:
    """Jersey 1's NotFoundException and Jackson's parse error both end in AllExceptionMapper."""
    r = atlas.call("GET", "/no/such/resource")
    assert r.status_code == 500 and r.text.startswith("There was an error processing your request")
    assert r.headers["Content-Type"].startswith("text/plain")
    r = atlas.call("POST", "/entity/bulk", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 500 and r.text.startswith("There was an error processing your request")


# ----- typedefs --------------------------------------------------------------------------------------------

def test_vendored_models_are_loaded_with_patches(atlas: Atlas) -> None:
    dep = atlas.ok("GET", "/types/typedef/name/ml_model_deployment")
    assert dep["category"] == "ENTITY" and dep["superTypes"] == ["DataSet"]
    status = next(a for a in dep["attributeDefs"] if a["name"] == "status")
    assert status["typeName"] == "ml_model_deployment_status" and status["valuesMinCount"] == 1
    rel = {a["name"]: a for a in dep["relationshipAttributeDefs"]}
    assert rel["build"]["isOptional"] is False and rel["build"]["relationshipTypeName"] == "ml_build_deployment"
    hdfs = atlas.ok("GET", "/types/entitydef/name/hdfs_path")
    assert hdfs["serviceType"] == "file_system"
    assert "Path" in atlas.ok("GET", "/types/entitydef/name/fs_path")["superTypes"]          # patch 018
    obj = atlas.ok("GET", "/types/typedef/name/aws_s3_object")
    assert {"ownerId", "size", "eTag"} <= {a["name"] for a in obj["attributeDefs"]}        # patch 004
    d = atlas.ok("GET", "/types/typedef/name/aws_s3_v2_directory")
    prefix = next(a for a in d["attributeDefs"] if a["name"] == "objectPrefix")
    assert prefix["isUnique"] is False                                                     # patch 007
    assert "Path" in d["superTypes"]
    assert atlas.ok("GET", "/types/typedef/name/aws_s3_v2_object")["superTypes"]
    asset = atlas.ok("GET", "/types/typedef/name/Asset")
    assert {"displayName", "userDescription"} <= {a["name"] for a in asset["attributeDefs"]}
    ref = atlas.ok("GET", "/types/typedef/name/Referenceable")
    assert next(a for a in ref["attributeDefs"] if a["name"] == "qualifiedName")["searchWeight"] == 10
    atlas.err("GET", "/types/typedef/name/no_such_type_" + UID, 404, "ATLAS-404-00-001")
    atlas.err("GET", "/types/typedef/guid/" + str(uuid.uuid4()), 404, "ATLAS-404-00-002")
    by_guid = atlas.ok("GET", "/types/entitydef/guid/" + dep["guid"])
    assert by_guid["name"] == "ml_model_deployment"
    headers = atlas.ok("GET", "/types/typedefs/headers", params={"type": "enum"})
    assert headers and all(h["category"] == "ENUM" for h in headers)
    ml = atlas.ok("GET", "/types/typedefs", params={"supertype": "Process", "type": "entity"})
    assert {"ml_model_deploy_process", "ml_model_train_build_process"} <= {d["name"] for d in ml["entityDefs"]}
    assert all(k in ml for k in ("enumDefs", "structDefs", "classificationDefs", "relationshipDefs",
                                 "businessMetadataDefs"))


def test_typedef_create_normalises_and_rejects_duplicates_atomically(atlas: Atlas) -> None:
    name, other = f"mgt{UID}_norm", f"mgt{UID}_norm2"
    out = atlas.ok("POST", "/types/typedefs", json={"entityDefs": [{"name": name, "superTypes": ["DataSet"],
        "attributeDefs": [{"name": "a", "typeName": "string", "isOptional": True},
                          {"name": "b", "typeName": "int"},
                          {"name": "c", "typeName": "array<string>", "cardinality": "SET", "isOptional": True}]}]})
    d = out["entityDefs"][0]
    assert d["description"] == name and d["version"] == 1 and d["category"] == "ENTITY"
    assert isinstance(d["createTime"], int) and isinstance(d["updateTime"], int) and d["guid"]
    attrs = {a["name"]: a for a in d["attributeDefs"]}
    assert (attrs["a"]["valuesMinCount"], attrs["a"]["valuesMaxCount"]) == (0, 1)
    assert (attrs["b"]["valuesMinCount"], attrs["b"]["valuesMaxCount"], attrs["b"]["isOptional"]) == (1, 1, False)
    assert attrs["c"]["valuesMaxCount"] == 2147483647
    body = {"entityDefs": [{"name": other, "superTypes": ["DataSet"], "attributeDefs": []},
                           {"name": name, "superTypes": ["DataSet"], "attributeDefs": []}]}
    atlas.err("POST", "/types/typedefs", 409, "ATLAS-409-00-001", json=body)
    atlas.err("GET", "/types/typedef/name/" + other, 404, "ATLAS-404-00-001")   # nothing was created
    redeclared = {"entityDefs": [{"name": f"mgt{UID}_redecl", "superTypes": ["DataSet"],
                                  "attributeDefs": [{"name": "qualifiedName", "typeName": "string"}]}]}
    if atlas.v21:  # 2.1 lets a subtype redeclare an inherited attribute; 2.4 refuses (AtlasEntityType)
        atlas.ok("POST", "/types/typedefs", json=redeclared)
    else:
        atlas.err("POST", "/types/typedefs", 400, "ATLAS-400-00-09E", json=redeclared)
    atlas.err("POST", "/types/typedefs", 400, "ATLAS-400-00-029", json={"entityDefs": [{
        "name": f"mgt{UID}_badref", "superTypes": ["DataSet"],
        "attributeDefs": [{"name": "x", "typeName": f"no_type_{UID}", "isOptional": True}]}]})


def test_typedef_update_rules_and_delete(atlas: Atlas) -> None:
    name = f"mgt{UID}_upd"
    base = {"name": name, "superTypes": ["DataSet"], "attributeDefs": [
        {"name": "a", "typeName": "string", "isOptional": True}]}
    atlas.ok("POST", "/types/typedefs", json={"entityDefs": [base]})
    added = copy.deepcopy(base)
    added["attributeDefs"].append({"name": "b", "typeName": "int", "isOptional": True})
    out = atlas.ok("PUT", "/types/typedefs", json={"entityDefs": [added]})
    assert out["entityDefs"][0]["version"] == 2
    mandatory = copy.deepcopy(added)
    mandatory["attributeDefs"].append({"name": "c", "typeName": "string", "isOptional": False})
    atlas.err("PUT", "/types/typedefs", 400, "ATLAS-400-00-00C", json={"entityDefs": [mandatory]})
    atlas.err("PUT", "/types/typedefs", 400, "ATLAS-400-00-00D", json={"entityDefs": [base]})
    changed = copy.deepcopy(added)
    changed["attributeDefs"][1]["typeName"] = "string"
    atlas.err("PUT", "/types/typedefs", 400, "ATLAS-400-00-029", json={"entityDefs": [changed]})
    assert atlas.ok("GET", "/types/typedef/name/" + name)["version"] == 2
    bulk(atlas, {"typeName": name, "attributes": {"qualifiedName": f"u-{UID}", "name": "u"}})
    r = atlas.call("DELETE", "/types/typedefs", json={"entityDefs": [{"name": name}]})
    assert r.status_code == 409
    spare = f"mgt{UID}_spare"
    atlas.ok("POST", "/types/typedefs", json={"entityDefs": [{"name": spare, "superTypes": ["DataSet"]}]})
    assert atlas.call("DELETE", "/types/typedefs", json={"entityDefs": [{"name": spare}]}).status_code == 204
    atlas.err("GET", "/types/typedef/name/" + spare, 404, "ATLAS-404-00-001")


# ----- entities ---------------------------------------------------------------------------------------------

def test_upsert_guid_assignments_noop_and_other_end_update(atlas: Atlas, types: None) -> None:
    chain = ml_chain(atlas, "upsert")
    dep = atlas.ok("GET", "/entity/guid/" + chain["deployment"])["entity"]
    assert dep["status"] == "ACTIVE" and dep["attributes"]["status"] == "deployed"
    assert dep["attributes"]["deployedTime"] == 1767225600000
    assert dep["attributes"]["memoryMb"] == 0                # an unset int is stored as 0 (mapAttribute)
    assert dep["attributes"]["modelEndpointURL"] is None     # an unset string stays null
    assert dep["relationshipAttributes"]["build"]["guid"] == chain["build"]
    assert dep["relationshipAttributes"]["build"]["relationshipType"] == "ml_build_deployment"
    proc = atlas.ok("GET", "/entity/guid/" + chain["deploy"])["entity"]
    assert [o["guid"] for o in proc["attributes"]["inputs"]] == [chain["build"]]          # legacy attr in both
    assert proc["relationshipAttributes"]["outputs"][0]["relationshipType"] == "process_dataset_outputs"
    # same payload again, no guid: matched by qualifiedName; unchanged so not in mutatedEntities
    same = {"typeName": "ml_project", "attributes": {"qualifiedName": f"proj-{chain['q']}", "name": f"proj-{chain['q']}"}}
    resp = atlas.ok("POST", "/entity", json={"entity": same})
    assert "mutatedEntities" not in resp or not resp["mutatedEntities"].get("UPDATE")
    assert chain["project"] in resp["guidAssignments"].values()
    # a real change is an UPDATE with the same guid
    changed = copy.deepcopy(same)
    changed["guid"] = "-7"
    changed["attributes"]["description"] = "changed"
    resp = atlas.ok("POST", "/entity", json={"entity": changed})
    assert [h["guid"] for h in resp["mutatedEntities"]["UPDATE"]] == [chain["project"]]
    assert resp["guidAssignments"] == {"-7": chain["project"]}
    # a new process pointing at an existing dataset lists that dataset under UPDATE
    resp = bulk(atlas, {"typeName": "Process", "guid": "-1", "attributes": {
        "qualifiedName": f"p2-{UID}", "name": "p2", "inputs": [{"typeName": "ml_model_deployment",
        "uniqueAttributes": {"qualifiedName": f"dep-{chain['q']}@prod"}, "relationshipType": "dataset_process_inputs"}]}})
    assert [h["guid"] for h in resp["mutatedEntities"]["CREATE"]] == [resp["guidAssignments"]["-1"]]
    assert chain["deployment"] in [h["guid"] for h in resp["mutatedEntities"]["UPDATE"]]
    header = atlas.ok("GET", f"/entity/guid/{chain['deployment']}/header")
    assert header["displayText"] == f"dep-{chain['q']}"
    assert header["attributes"].get("owner") == (None if atlas.v21 else "")   # unset header attribute: 2.4 says ""
    assert header["attributes"]["qualifiedName"] == f"dep-{chain['q']}@prod"
    ext = atlas.ok("GET", "/entity/guid/" + chain["build"])
    assert chain["deployment"] in ext["referredEntities"]          # owned COMPOSITION child


def test_validation_errors_use_404_007_and_reference_errors(atlas: Atlas, types: None) -> None:
    dep = {"typeName": "ml_model_deployment", "attributes": {
        "qualifiedName": f"orphan-{UID}", "name": "orphan", "createTime": 1, "deployedTime": 1,
        "status": "deployed", "cpuMillicores": 1}}
    body = atlas.err("POST", "/entity", 404, "ATLAS-404-00-007", json={"entity": dep})
    assert "ml_model_deployment.build: mandatory attribute value missing" in body["errorMessage"]
    bad_int = copy.deepcopy(dep)
    bad_int["attributes"].update(cpuMillicores="lots", build={"guid": str(uuid.uuid4())})
    atlas.err("POST", "/entity", 404, "ATLAS-404-00-00A", json={"entity": bad_int})   # references first
    ent = {"typeName": M, "attributes": {"qualifiedName": f"v-{UID}", "name": "v", "retention": "lots"}}
    body = atlas.err("POST", "/entity", 404, "ATLAS-404-00-007", json={"entity": ent})
    assert f"{M}.retention=lots: invalid value for type int" in body["errorMessage"]
    ent["attributes"].update(retention=1, level="MEDIUM")
    atlas.err("POST", "/entity", 404, "ATLAS-404-00-007", json={"entity": ent})
    ent["attributes"].update(level="HIGH", lastAccessTime="not-a-date")
    atlas.err("POST", "/entity", 404, "ATLAS-404-00-007", json={"entity": ent})
    ent["attributes"].update(lastAccessTime="2026-02-03T04:05:06.000Z", temporary="maybe")
    atlas.err("POST", "/entity", 404, "ATLAS-404-00-007", json={"entity": ent})
    missing = {"typeName": M, "attributes": {"name": "no-qn"}}
    body = atlas.err("POST", "/entity", 404, "ATLAS-404-00-007", json={"entity": missing})
    assert "qualifiedName: mandatory attribute value missing in type Referenceable" in body["errorMessage"]
    atlas.err("POST", "/entity", 400, "ATLAS-400-00-014", json={"entity": {"typeName": f"nope_{UID}",
                                                                           "attributes": {}}})
    ref = {"typeName": "ml_model_build", "attributes": {"qualifiedName": f"b-{UID}", "name": "b", "version": 1,
           "project": {"typeName": "ml_project", "uniqueAttributes": {"qualifiedName": f"missing-{UID}"}}}}
    atlas.err("POST", "/entity", 404, "ATLAS-404-00-00A", json={"entity": ref})
    invented = {"typeName": M, "guid": str(uuid.uuid4()), "attributes": {"qualifiedName": f"inv-{UID}", "name": "i"}}
    atlas.err("POST", "/entity", 404, "ATLAS-404-00-00A", json={"entity": invented})
    good = {"typeName": M, "attributes": {"qualifiedName": f"ok-{UID}", "name": "ok", "retention": "7",
                                          "temporary": "true", "lastAccessTime": "2026-02-03T04:05:06.000Z",
                                          "level": "HIGH", "tags": ["a", "b"], "props": {"k": "v"}}}
    guid = atlas.ok("POST", "/entity", json={"entity": good})["mutatedEntities"]["CREATE"][0]["guid"]
    attrs = atlas.ok("GET", "/entity/guid/" + guid)["entity"]["attributes"]
    assert attrs["retention"] == 7 and attrs["temporary"] is True and attrs["lastAccessTime"] == 1770091506000


def test_unique_attribute_lookup_partial_update_and_soft_delete(atlas: Atlas, types: None) -> None:
    qn = f"soft-{UID}"
    first = atlas.ok("POST", "/entity", json={"entity": {"typeName": M, "attributes": {"qualifiedName": qn,
                                                                                       "name": "one"}}})
    g1 = first["mutatedEntities"]["CREATE"][0]["guid"]
    got = atlas.ok("GET", f"/entity/uniqueAttribute/type/{M}", params={"attr:qualifiedName": qn})
    assert got["entity"]["guid"] == g1
    assert atlas.ok("GET", "/entity/uniqueAttribute/type/DataSet", params={"attr:qualifiedName": qn})["entity"][
        "guid"] == g1                                                   # lookup through a supertype
    atlas.err("GET", f"/entity/uniqueAttribute/type/{M}", 400, "ATLAS-400-00-013", params={"attr:name": "one"})
    atlas.err("GET", f"/entity/uniqueAttribute/type/{M}", 404, "ATLAS-404-00-009",
              params={"attr:qualifiedName": "nope" + UID})
    resp = atlas.ok("PUT", f"/entity/uniqueAttribute/type/{M}", params={"attr:qualifiedName": qn},
                    json={"entity": {"typeName": M, "attributes": {"comment": "partial"}}})
    assert resp["mutatedEntities"]["PARTIAL_UPDATE"][0]["guid"] == g1
    resp = atlas.ok("PUT", f"/entity/guid/{g1}", params={"name": "retention"}, json=42)
    ent = atlas.ok("GET", f"/entity/guid/{g1}")["entity"]
    assert ent["attributes"]["comment"] == "partial" and ent["attributes"]["retention"] == 42
    assert ent["attributes"]["name"] == "one"
    deleted = atlas.ok("DELETE", f"/entity/guid/{g1}")
    assert deleted["mutatedEntities"]["DELETE"][0]["guid"] == g1
    assert deleted["mutatedEntities"]["DELETE"][0]["status"] == "ACTIVE"   # the header from before the delete
    assert atlas.ok("GET", f"/entity/guid/{g1}")["entity"]["status"] == "DELETED"
    atlas.err("GET", f"/entity/uniqueAttribute/type/{M}", 404, "ATLAS-404-00-009", params={"attr:qualifiedName": qn})
    again = atlas.ok("POST", "/entity", json={"entity": {"typeName": M, "attributes": {"qualifiedName": qn,
                                                                                       "name": "two"}}})
    g2 = again["mutatedEntities"]["CREATE"][0]["guid"]
    assert g2 != g1
    assert atlas.ok("DELETE", f"/entity/guid/{uuid.uuid4()}") == {}
    assert atlas.ok("DELETE", f"/entity/guid/{g1}") == {}              # already deleted: no-op


def test_bulk_read_of_several_guids_and_relationships_in_search_headers(atlas: Atlas, types: None) -> None:
    """What the bulk compliance reads rely on (issue 23): one GET /entity/bulk answers several guids of
    several types, full entities with their relationship attributes, and a basic search asked for a
    relationship attribute carries the related object's guid. With minExtInfo, an entity listed after its
    COMPOSITION container comes back in the minimal form the container's referred entities have (found on
    Atlas 2.1: the retriever maps each guid once per request), so the compliance reads never list both."""
    chain = ml_chain(atlas, "bulkread")
    wanted = [chain["build"], chain["train"], chain["deployment"]]
    body = atlas.ok("GET", "/entity/bulk", params=[*(("guid", g) for g in wanted), ("minExtInfo", "true")])
    by_guid = {e["guid"]: e for e in body["entities"]}
    assert [e["guid"] for e in body["entities"]] == wanted
    build, train = by_guid[chain["build"]], by_guid[chain["train"]]
    assert build["attributes"]["version"] == 3 and build["status"] == "ACTIVE"
    assert [(r["guid"], r["typeName"], r["entityStatus"]) for r in build["relationshipAttributes"]["outputFromProcesses"]
            ] == [(chain["train"], "ml_model_train_build_process", "ACTIVE")]
    assert [r["guid"] for r in train["relationshipAttributes"]["inputs"]] == [chain["train_data"]]
    assert "relationshipAttributes" not in by_guid[chain["deployment"]]  # the build's owned child, minimal
    assert chain["deployment"] not in body["referredEntities"]  # listed, so not referred (compact)
    full = atlas.ok("GET", "/entity/bulk", params=[("guid", chain["build"]), ("guid", chain["deployment"])])
    assert full["entities"][1]["relationshipAttributes"]["build"]["guid"] == chain["build"]
    alone = atlas.ok("GET", "/entity/bulk", params=[("guid", chain["deployment"]), ("minExtInfo", "true")])
    assert alone["entities"][0]["relationshipAttributes"]["build"]["guid"] == chain["build"]

    def header() -> dict:
        found = search(atlas, typeName="ml_model_deployment", attributes=["build"], entityFilters={
            "attributeName": "qualifiedName", "operator": "eq", "attributeValue": f"dep-{chain['q']}@prod"})
        return (found.get("entities") or [None])[0]

    found = eventually(header, what="the deployment is searchable")
    assert found["attributes"]["build"]["guid"] == chain["build"]
    assert found["attributes"]["build"]["typeName"] == "ml_model_build"


def test_composition_delete_cascades(atlas: Atlas, types: None) -> None:
    chain = ml_chain(atlas, "cascade")
    resp = atlas.ok("DELETE", "/entity/guid/" + chain["build"])
    deleted = {h["guid"] for h in resp["mutatedEntities"]["DELETE"]}
    assert {chain["build"], chain["deployment"]} <= deleted
    assert atlas.ok("GET", "/entity/guid/" + chain["deployment"])["entity"]["status"] == "DELETED"
    assert atlas.ok("GET", "/entity/guid/" + chain["project"])["entity"]["status"] == "ACTIVE"


def test_audit_events(atlas: Atlas, types: None) -> None:
    qn = f"audit-{UID}"
    guid = atlas.ok("POST", "/entity", json={"entity": {"typeName": M, "attributes": {
        "qualifiedName": qn, "name": "a"}}})["mutatedEntities"]["CREATE"][0]["guid"]
    atlas.ok("POST", "/entity", json={"entity": {"typeName": M, "attributes": {"qualifiedName": qn, "name": "b"}}})
    atlas.ok("POST", f"/entity/guid/{guid}/classifications", json=[{"typeName": PII}])
    atlas.ok("DELETE", f"/entity/guid/{guid}")
    newest_first = ["ENTITY_DELETE", "CLASSIFICATION_ADD", "ENTITY_UPDATE", "ENTITY_CREATE"]
    events = atlas.ok("GET", f"/entity/{guid}/audit", params={"sortOrder": "asc"})  # ignored without sortBy
    assert [e["action"] for e in events] == newest_first
    assert events[3]["details"].startswith("Created: ") and events[2]["details"].startswith("Updated: ")
    assert events[0]["details"] == "Deleted entity" and events[0]["entityId"] == guid
    by_time = atlas.ok("GET", f"/entity/{guid}/audit", params={"sortBy": "timestamp", "sortOrder": "asc"})
    assert [e["action"] for e in by_time] == (newest_first if atlas.v21 else newest_first[::-1])  # 2.1: no sortBy
    assert len(atlas.ok("GET", f"/entity/{guid}/audit", params={"count": 1})) == 1
    assert atlas.ok("GET", f"/entity/{guid}/audit", params={"count": 1})[0]["action"] == "ENTITY_DELETE"


# ----- classifications / labels ----------------------------------------------------------------------

def test_classifications_labels_and_propagation_along_lineage(atlas: Atlas, types: None) -> None:
    chain = ml_chain(atlas, "prop")
    src = chain["train_data"]
    assert atlas.call("POST", f"/entity/guid/{src}/classifications",
                      json=[{"typeName": TAG, "attributes": {"type": "ccn"}, "propagate": True}]).status_code == 204
    atlas.err("POST", f"/entity/guid/{src}/classifications", 400, "ATLAS-400-00-01A", json=[{"typeName": TAG}])
    atlas.err("POST", f"/entity/guid/{src}/classifications", 404, "ATLAS-404-00-008",
              json=[{"typeName": "no_tag_" + UID}])
    atlas.err("GET", f"/entity/guid/{src}/classification/{PII}", 404, "ATLAS-404-00-008")
    for g in (chain["train"], chain["build"], chain["deploy"], chain["deployment"]):
        def propagated(g: str = g) -> bool:
            classes = atlas.ok("GET", f"/entity/guid/{g}/classifications")["list"]
            return [(c["typeName"], c["entityGuid"]) for c in classes] == [(TAG, src)]
        eventually(propagated, what=f"{TAG} propagated to {g}")
        assert TAG in atlas.ok("GET", f"/entity/guid/{g}/header")["classificationNames"]
    assert atlas.ok("GET", f"/entity/guid/{chain['project']}/classifications")["totalCount"] == 0
    found = eventually(lambda: atlas.ok("POST", "/search/basic", json={
        "typeName": "ml_model_deployment", "classification": TAG}).get("entities"), what="classification search")
    assert [e["guid"] for e in found] == [chain["deployment"]]
    prop_filter = {"typeName": "DataSet", "entityFilters": {
        "attributeName": "__propagatedClassificationNames", "operator": "contains", "attributeValue": TAG}}
    eventually(lambda: {chain["build"], chain["deployment"]} <= {
        e["guid"] for e in atlas.ok("POST", "/search/basic", json=prop_filter).get("entities", [])},
        what="search by propagated classification")
    got = atlas.ok("GET", f"/entity/guid/{src}/classification/{TAG}")
    assert got["attributes"]["type"] == "ccn"
    atlas.ok("PUT", f"/entity/guid/{src}/classifications", json=[{"typeName": TAG, "attributes": {"type": "ssn"}}])
    assert atlas.ok("GET", f"/entity/guid/{src}/classification/{TAG}")["attributes"]["type"] == "ssn"
    assert atlas.call("DELETE", f"/entity/guid/{src}/classification/{TAG}").status_code == 204
    eventually(lambda: atlas.ok("GET", f"/entity/guid/{chain['deployment']}/classifications")["totalCount"] == 0,
               what="propagated classification removed")
    # restriction by entityTypes
    restricted = f"mgt{UID}_onlyProc"
    atlas.ok("POST", "/types/typedefs", json={"classificationDefs": [{"name": restricted, "entityTypes": ["Process"]}]})
    atlas.err("POST", f"/entity/guid/{src}/classifications", 400, "ATLAS-400-00-055", json=[{"typeName": restricted}])
    assert atlas.call("POST", f"/entity/guid/{chain['train']}/classifications",
                      json=[{"typeName": restricted}]).status_code == 204
    # bulk + unique-attribute forms
    assert atlas.call("POST", "/entity/bulk/classification", json={
        "classification": {"typeName": PII, "propagate": False}, "entityGuids": [chain["project"]]}).status_code == 204
    assert atlas.ok("GET", f"/entity/guid/{chain['project']}/classification/{PII}")["typeName"] == PII
    assert atlas.call("DELETE", f"/entity/uniqueAttribute/type/ml_project/classification/{PII}",
                      params={"attr:qualifiedName": f"proj-{chain['q']}"}).status_code == 204
    # labels: POST sets, PUT adds, DELETE removes
    assert atlas.call("POST", f"/entity/guid/{src}/labels", json=["a", "b"]).status_code == 204
    assert atlas.call("PUT", f"/entity/guid/{src}/labels", json=["c"]).status_code == 204
    assert atlas.call("DELETE", f"/entity/guid/{src}/labels", json=["a"]).status_code == 204
    assert sorted(atlas.ok("GET", f"/entity/guid/{src}")["entity"]["labels"]) == ["b", "c"]
    atlas.err("POST", f"/entity/guid/{src}/labels", 400, "ATLAS-400-00-090", json=["bad label!"])


# ----- search -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def search_data(atlas: Atlas, types: None) -> dict[str, str]:
    """Data mirroring BasicSearchIT's: 3 tables, 46 columns, one tagged hdfs path with odd characters."""
    tables = [{"typeName": T, "guid": f"-{i + 1}", "attributes": {
        "qualifiedName": f"testtable_{i}@{UID}", "name": f"testtable_{i}", "retention": i, "temporary": False,
        "createTime": 1491250000000 + i, "lastAccessTime": 1491249000000, "owner": "hive",
        "comment": f"t10 comment {i}", "level": ["LOW", "HIGH", "LOW"][i], "tags": [f"x{i}", "all"]}}
        for i in range(3)]
    cols = [f"col30_{i}" for i in range(27)] + [f"c{i}8" for i in range(16)] + [f"col104_{i}" for i in range(3)]
    columns = [{"typeName": C, "guid": f"-{100 + i}", "attributes": {"qualifiedName": f"{n}@{UID}", "name": n}}
               for i, n in enumerate(cols)]
    path = {"typeName": P, "guid": "-99", "attributes": {"qualifiedName": f"hdfs://nn/test+dir{UID}@cl1",
            "name": "test!path", "path": "hdfs://nn/test+dir"}}
    resp = bulk(atlas, *tables, *columns, path)
    g = resp["guidAssignments"]
    atlas.ok("POST", f"/entity/guid/{g['-99']}/classifications", json=[{"typeName": TAG, "propagate": False}])
    # a real Atlas answers from its Solr index: wait until every write of this fixture is searchable
    eventually(lambda: len(search(atlas, typeName=T).get("entities", [])) == 3
               and len(search(atlas, typeName=C, limit=100).get("entities", [])) == 46
               and search(atlas, typeName=P, classification=TAG).get("entities"), what="search index caught up")
    return {"t0": g["-1"], "t1": g["-2"], "t2": g["-3"], "path": g["-99"]}


def search(atlas: Atlas, **params: Any) -> dict[str, Any]:
    return atlas.ok("POST", "/search/basic", json=params)


def names(result: dict[str, Any]) -> list[str]:
    return [e["attributes"]["name"] for e in result.get("entities", [])]


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("=", "testtable_1", ["testtable_1"]), ("eq", "testtable_1", ["testtable_1"]),
    ("!=", "testtable_1", ["testtable_0", "testtable_2"]), ("neq", "testtable_1", ["testtable_0", "testtable_2"]),
    ("<", "1", ["testtable_0"]), ("lt", "1", ["testtable_0"]), (">", "1", ["testtable_2"]),
    ("gt", "0", ["testtable_1", "testtable_2"]), ("<=", "1", ["testtable_0", "testtable_1"]),
    ("lte", "1", ["testtable_0", "testtable_1"]), (">=", "2", ["testtable_2"]), ("gte", "2", ["testtable_2"]),
])
def test_search_comparison_operators(atlas: Atlas, search_data: dict[str, str], op: str, value: str,
                                     expected: list[str]) -> None:
    attr = "name" if "testtable" in value else "retention"
    result = search(atlas, typeName=T, entityFilters={"attributeName": attr, "operator": op, "attributeValue": value},
                    sortBy="name")
    assert names(result) == expected


@pytest.mark.parametrize(("attr", "op", "value", "expected"), [
    ("name", "in", "testtable_0,testtable_2", ["testtable_0", "testtable_2"]),
    ("name", "IN", "testtable_0", ["testtable_0"]),
    ("name", "like", "test*_1", ["testtable_1"]), ("name", "LIKE", "*table_2", ["testtable_2"]),
    ("name", "startsWith", "testtable_", ["testtable_0", "testtable_1", "testtable_2"]),
    ("name", "STARTSWITH", "testtable_2", ["testtable_2"]), ("name", "begins_with", "testtable_0", ["testtable_0"]),
    ("name", "endsWith", "_1", ["testtable_1"]), ("name", "ends_with", "_2", ["testtable_2"]),
    ("name", "contains", "table_1", ["testtable_1"]), ("name", "CONTAINS", "table", ["testtable_0", "testtable_1",
                                                                                       "testtable_2"]),
    ("name", "not_contains", "_1", ["testtable_0", "testtable_2"]),
    ("description", "isNull", "", ["testtable_0", "testtable_1", "testtable_2"]),
    ("description", "notNull", "", []), ("owner", "notNull", "", ["testtable_0", "testtable_1", "testtable_2"]),
    ("temporary", "eq", "false", ["testtable_0", "testtable_1", "testtable_2"]),
    ("level", "eq", "HIGH", ["testtable_1"]),
    ("tags", "notEmpty", "_", ["testtable_0", "testtable_1", "testtable_2"]),
    ("createTime", "timerange", "1491250000000,1491250000001", ["testtable_0", "testtable_1"]),
    ("__timestamp", "timerange", "LAST_7_DAYS", ["testtable_0", "testtable_1", "testtable_2"]),
    ("__state", "eq", "ACTIVE", ["testtable_0", "testtable_1", "testtable_2"]),
    ("__typeName", "eq", T, ["testtable_0", "testtable_1", "testtable_2"]),
])
def test_search_string_and_special_operators(atlas: Atlas, search_data: dict[str, str], attr: str, op: str,
                                             value: str, expected: list[str]) -> None:
    params = {"typeName": T, "sortBy": "name",
              "entityFilters": {"attributeName": attr, "operator": op, "attributeValue": value}}
    if atlas.v21 and (attr, op) in SEARCH_V21:
        expected = SEARCH_V21[(attr, op)]
        if expected == 500:
            assert atlas.call("POST", "/search/basic", json=params).status_code == 500
            return
    assert names(search(atlas, **params)) == expected


ALL3 = ["testtable_0", "testtable_1", "testtable_2"]
# What Atlas 2.1.0 answers where its basic search differs from 2.4's (which the emulator follows): IN and
# wildcard LIKE find nothing, notEmpty on an array is a 500, timerange does not narrow a date attribute.
SEARCH_V21: dict[tuple[str, str], Any] = {("name", "in"): [], ("name", "IN"): [], ("name", "like"): [],
                                          ("name", "LIKE"): [], ("tags", "notEmpty"): 500,
                                          ("createTime", "timerange"): ALL3}


def test_search_guid_filter_groups_sort_paging_and_attributes(atlas: Atlas, search_data: dict[str, str]) -> None:
    r = search(atlas, typeName=T, entityFilters={"attributeName": "__guid", "operator": "eq",
                                                 "attributeValue": search_data["t1"]})
    assert names(r) == ["testtable_1"]
    nested = {"condition": "OR", "criterion": [
        {"attributeName": "name", "operator": "eq", "attributeValue": "testtable_0"},
        {"condition": "AND", "criterion": [{"attributeName": "retention", "operator": "gt", "attributeValue": "0"},
                                           {"attributeName": "level", "operator": "eq", "attributeValue": "LOW"}]}]}
    assert names(search(atlas, typeName=T, entityFilters=nested, sortBy="name")) == ["testtable_0", "testtable_2"]
    r = search(atlas, typeName=T, sortBy="name", sortOrder="DESCENDING", limit=2, offset=0, attributes=["comment"])
    assert names(r) == ["testtable_2", "testtable_1"]
    assert r["entities"][0]["attributes"]["comment"] == "t10 comment 2"
    assert r["searchParameters"]["limit"] == 2 and r["queryType"] == "BASIC"
    assert names(search(atlas, typeName=T, sortBy="name", limit=2, offset=2)) == ["testtable_2"]
    for bad_limit in (0, 10001, -0):
        r = search(atlas, typeName=C, limit=bad_limit)
        assert r["searchParameters"]["limit"] == 100 and len(r["entities"]) == 46
    empty = search(atlas, typeName=T, entityFilters={"attributeName": "name", "operator": "eq",
                                                     "attributeValue": "nothing"})
    assert "entities" not in empty and "approximateCount" in empty
    sub = search(atlas, typeName="hdfs_path", query=f"dir{UID}")
    assert search_data["path"] in [e["guid"] for e in sub.get("entities", [])]       # subtypes included
    no_sub = search(atlas, typeName="hdfs_path", query=f"dir{UID}", includeSubTypes=False)
    assert "entities" not in no_sub
    if atlas.v21:  # several types in one typeName came with 2.2 (ATLAS-3652)
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-00A", json={"typeName": f"{T},{P}", "query": UID})
    else:
        two = search(atlas, typeName=f"{T},{P}", query=UID)
        assert {e["typeName"] for e in two["entities"]} == {T, P}
    get = atlas.ok("GET", "/search/basic", params={"typeName": T, "query": "testtable_1"})
    assert names(get) == ["testtable_1"]


def test_search_validation_codes(atlas: Atlas, search_data: dict[str, str]) -> None:
    leaf = {"attributeName": "name", "operator": "eq", "attributeValue": "x"}
    atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-029", json={"typeName": T, "limit": -1})
    atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-047", json={"limit": 10})
    bad_operators = [{"typeName": T, "entityFilters": {**leaf, "operator": name}}
                     for name in ("EQ", "STARTS_WITH", "eqqq")]
    no_attribute = {"typeName": T, "entityFilters": {**leaf, "attributeName": ""}}
    no_value = {"typeName": T, "entityFilters": {**leaf, "attributeValue": ""}}
    no_condition = {"typeName": T, "entityFilters": {"criterion": [leaf, leaf]}}
    if atlas.v21:  # 2.1 validates no filter (the 103-105 codes came later): it searches, or fails with a 500
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-00A", json={"entityFilters": leaf})
        for params in [*bad_operators, no_attribute, no_condition]:
            atlas.ok("POST", "/search/basic", json=params)
        assert atlas.call("POST", "/search/basic", json=no_value).status_code == 500
    else:
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-029", json={"entityFilters": leaf})
        for params in bad_operators:
            atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-103", json=params)
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-104", json=no_attribute)
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-105", json=no_value)
        atlas.err("POST", "/search/basic", 500, "ATLAS-500-00-001", json=no_condition)
    atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-00A", json={"typeName": f"nope_{UID}"})
    atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-023",
              json={"typeName": T, "entityFilters": {**leaf, "attributeName": "nosuchattr"}})
    atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-046", json={"classification": f"nope_{UID}"})
    assert search(atlas, typeName=T, entityFilters={}, tagFilters={})["approximateCount"] >= 3


@pytest.mark.parametrize(("fixture", "code"), [("operator.json", "ATLAS-400-00-103"),
                                               ("attribute-name.json", "ATLAS-400-00-104"),
                                               ("attribute-value.json", "ATLAS-400-00-105")])
def test_search_it_fixtures_negative(atlas: Atlas, fixture: str, code: str) -> None:
    """BasicSearchIT's cases name hive types, which neither server has: 2.4 validates the filters first
    (DiscoveryREST.validateSearchParameters), 2.1 has no such check and reports the unknown type."""
    for case in json.loads((FIXTURES / "it-fixtures" / fixture).read_text()):
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-00A" if atlas.v21 else code,
                  json=case["searchParameters"])


def _localise(params: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(params)
    for old, new in (("hive_table", T), ("hive_column", C), ("hdfs_path", P), ("fooTag", TAG)):
        text = text.replace(f'"{old}"', f'"{new}"')
    return json.loads(text)


@pytest.mark.parametrize("fixture", ["entity-filters.json", "attribute-filters.json", "combination-filters.json",
                                     "tag-filters.json"])
def test_search_it_fixtures_positive(atlas: Atlas, search_data: dict[str, str], fixture: str) -> None:
    for case in json.loads((FIXTURES / "it-fixtures" / fixture).read_text()):
        params = _localise(case["searchParameters"])
        result = atlas.ok("POST", "/search/basic", json=params)
        got = len(result.get("entities", []))
        assert got == case["expectedCount"], (case["testDescription"], params, got)


def test_search_sample_parameter_files(atlas: Atlas, search_data: dict[str, str]) -> None:
    p = _localise(json.loads((FIXTURES / "searchparameters2AND.json").read_text()))
    p["entityFilters"]["criterion"][0]["attributeValue"] = "testtable_1"
    p["entityFilters"]["criterion"][1]["attributeValue"] = "t10"
    r = search(atlas, **p)
    if atlas.v21:  # 2.1 combines the free-text "query" with the filters differently: nothing found
        assert names(r) == []
    else:
        assert names(r) == ["testtable_1"] and r["entities"][0]["attributes"]["comment"] == "t10 comment 1"
    p2 = json.loads((FIXTURES / "searchparameters2Types.json").read_text())
    p2["typeName"] = f"{T},{C}"
    if atlas.v21:  # several types in one typeName came with 2.2
        atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-00A", json=p2)
    else:
        assert search(atlas, **p2)["approximateCount"] >= 3
    p3 = json.loads((FIXTURES / "search_basic_with_attribute_filters.json").read_text())
    atlas.err("POST", "/search/basic", 400, "ATLAS-400-00-00A", json=p3)   # Employee type is not defined


def test_dsl(atlas: Atlas, search_data: dict[str, str]) -> None:
    r = atlas.ok("GET", "/search/dsl", params={"query": f'{T} where name = "testtable_1"'})
    assert r["queryType"] == "DSL" and r["approximateCount"] == -1 and names(r) == ["testtable_1"]
    r = atlas.ok("GET", "/search/dsl", params={"typeName": T, "query": "where retention >= 1 and level = 'LOW'"})
    assert names(r) == ["testtable_2"]
    r = atlas.ok("GET", "/search/dsl", params={"query": f"from {T} where name = 'testtable_0' or retention > 1"})
    assert sorted(names(r)) == ["testtable_0", "testtable_2"]
    r = atlas.ok("GET", "/search/dsl", params={"query": f"{T} where name like 'testtable*' limit 2 offset 1"})
    assert len(r["entities"]) == 2
    r = atlas.ok("GET", "/search/dsl", params={"query": f'{T} where name = "none"'})
    assert "entities" not in r
    atlas.err("GET", "/search/dsl", 400, "ATLAS-400-00-059", params={"query": f"{T} where name ==== 'x' ((("})


# ----- lineage ---------------------------------------------------------------------------------------------

def test_lineage_directions_and_depth(atlas: Atlas, types: None) -> None:
    c = ml_chain(atlas, "lineage")
    both = atlas.ok("GET", f"/lineage/{c['deployment']}", params={"direction": "BOTH", "depth": 0})
    assert both["baseEntityGuid"] == c["deployment"] and both["lineageDirection"] == "BOTH"
    flows = {(r["fromEntityId"], r["toEntityId"]) for r in both["relations"]}
    assert flows == {(c["train_data"], c["train"]), (c["train"], c["build"]), (c["build"], c["deploy"]),
                     (c["deploy"], c["deployment"])}
    assert all(r["relationshipId"] for r in both["relations"])
    assert both.get("relationsOnDemand") == (None if atlas.v21 else {})     # on-demand lineage came with 2.2
    assert c["project"] not in both["guidEntityMap"]
    one = atlas.ok("GET", f"/lineage/{c['deployment']}", params={"direction": "INPUT", "depth": 1})
    assert {(r["fromEntityId"], r["toEntityId"]) for r in one["relations"]} == {
        (c["build"], c["deploy"]), (c["deploy"], c["deployment"])}
    out = atlas.ok("GET", f"/lineage/{c['build']}", params={"direction": "OUTPUT"})
    assert {(r["fromEntityId"], r["toEntityId"]) for r in out["relations"]} == {
        (c["build"], c["deploy"]), (c["deploy"], c["deployment"])}
    assert out["lineageDepth"] == 3
    proc = atlas.ok("GET", f"/lineage/{c['deploy']}", params={"direction": "INPUT", "depth": 1})
    assert {(r["fromEntityId"], r["toEntityId"]) for r in proc["relations"]} == {(c["build"], c["deploy"])}
    by_unique = atlas.ok("GET", "/lineage/uniqueAttribute/type/ml_model_deployment",
                         params={"attr:qualifiedName": f"dep-{c['q']}@prod", "direction": "INPUT", "depth": 1})
    assert by_unique["baseEntityGuid"] == c["deployment"]
    lonely = atlas.ok("GET", f"/lineage/{c['project']}")
    assert lonely["guidEntityMap"] == {} and lonely["relations"] == []
    glossary = atlas.ok("POST", "/entity", json={"entity": {"typeName": "AtlasServer", "attributes": {
        "name": "s", "displayName": "s", "fullName": f"srv-{UID}"}}})
    sg = glossary["mutatedEntities"]["CREATE"][0]["guid"]
    atlas.err("GET", f"/lineage/{sg}", 404, "ATLAS-404-00-011")
    atlas.err("GET", f"/lineage/{uuid.uuid4()}", 404, "ATLAS-404-00-005")


# ----- relationships -----------------------------------------------------------------------------------------

def test_relationship_api(atlas: Atlas, types: None) -> None:
    resp = bulk(atlas, {"typeName": M, "guid": "-1", "attributes": {"qualifiedName": f"rel-in-{UID}", "name": "ri"}},
                {"typeName": "Process", "guid": "-2", "attributes": {"qualifiedName": f"rel-p-{UID}", "name": "rp"}})
    ds, proc = resp["guidAssignments"]["-1"], resp["guidAssignments"]["-2"]
    rel = atlas.ok("POST", "/relationship", json={"typeName": "dataset_process_inputs", "end1": {"guid": proc},
                                                  "end2": {"guid": ds}})
    assert rel["guid"] and rel["status"] == "ACTIVE"
    atlas.err("POST", "/relationship", 409, "ATLAS-409-00-004", json={"typeName": "dataset_process_inputs",
              "end1": {"guid": proc}, "end2": {"guid": ds}})
    # the ends may come either way round (validateRelationship): a second relationship, stored as given
    swapped = atlas.ok("POST", "/relationship", json={"typeName": "dataset_process_inputs",
                                                      "end1": {"guid": ds}, "end2": {"guid": proc}})
    assert swapped["guid"] != rel["guid"] and swapped["end1"]["guid"] == ds
    assert atlas.call("DELETE", f"/relationship/guid/{swapped['guid']}").status_code == 204
    other = atlas.ok("POST", "/entity", json={"entity": {"typeName": "ml_project", "attributes": {
        "qualifiedName": f"rel-proj-{UID}", "name": "rp"}}})["mutatedEntities"]["CREATE"][0]["guid"]
    atlas.err("POST", "/relationship", 400, "ATLAS-400-00-036", json={"typeName": "dataset_process_inputs",
              "end1": {"guid": other}, "end2": {"guid": ds}})
    got = atlas.ok("GET", f"/relationship/guid/{rel['guid']}")
    assert got["relationship"]["end1"]["guid"] == proc
    assert [o["guid"] for o in atlas.ok("GET", f"/entity/guid/{proc}")["entity"]["attributes"]["inputs"]] == [ds]
    assert atlas.call("DELETE", f"/relationship/guid/{rel['guid']}").status_code == 204
    assert atlas.ok("GET", f"/relationship/guid/{rel['guid']}")["relationship"]["status"] == "DELETED"
    # a soft-deleted relationship is still listed on the entity, marked DELETED
    after = atlas.ok("GET", f"/entity/guid/{proc}")["entity"]
    assert [o["guid"] for o in after["attributes"]["inputs"]] == [ds]
    assert [o["relationshipStatus"] for o in after["relationshipAttributes"]["inputs"]] == ["DELETED"]


# ----- CLI + persistence (emulator only) ------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_cli(port: int, state: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulators.atlas", "--host", "127.0.0.1", "--port", str(port), "--state", str(state),
         "--users", "admin:admin,other:pw"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == f"atlas emulator listening on http://127.0.0.1:{port}", line
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def test_cli_state_persists_across_restart(tmp_path: Path) -> None:
    state = tmp_path / "atlas-state.json"
    port = _free_port()
    proc = _start_cli(port, state)
    try:
        a = Atlas(f"http://127.0.0.1:{port}", ("other", "pw"))
        a.ok("POST", "/types/typedefs", json={"entityDefs": [{"name": "persisted_t", "superTypes": ["DataSet"]}]})
        guid = a.ok("POST", "/entity", json={"entity": {"typeName": "persisted_t", "attributes": {
            "qualifiedName": "kept@cl1", "name": "kept"}}})["mutatedEntities"]["CREATE"][0]["guid"]
    finally:
        _stop(proc)
    assert json.loads(state.read_text())["store"]["entities"][guid]["typeName"] == "persisted_t"
    proc = _start_cli(port, state)
    try:
        a = Atlas(f"http://127.0.0.1:{port}", ("admin", "admin"))
        ent = a.ok("GET", "/entity/uniqueAttribute/type/persisted_t", params={"attr:qualifiedName": "kept@cl1"})
        assert ent["entity"]["guid"] == guid
        assert a.ok("GET", "/types/typedef/name/persisted_t")["name"] == "persisted_t"
    finally:
        _stop(proc)


def test_state_is_written_soon_after_a_change_and_fully_on_stop(tmp_path: Path) -> None:
    """The whole state is written at most once a second (writing it per mutation made every write slower as
    the store grew), within seconds while running, and completely on stop."""
    from emulators.atlas import AtlasEmulator

    state = tmp_path / "atlas-state.json"
    emu = AtlasEmulator(port=0, state_path=str(state)).start()
    try:
        a = Atlas(emu.url, ("admin", "admin"))
        a.ok("POST", "/types/typedefs", json={"entityDefs": [{"name": "soon_t", "superTypes": ["DataSet"]}]})
        guids = [a.ok("POST", "/entity", json={"entity": {"typeName": "soon_t", "attributes": {
            "qualifiedName": f"e{i}@cl1", "name": f"e{i}"}}})["mutatedEntities"]["CREATE"][0]["guid"]
            for i in range(20)]
        deadline = time.monotonic() + 30
        while not (state.exists() and guids[-1] in state.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert guids[-1] in state.read_text()
        last = a.ok("POST", "/entity", json={"entity": {"typeName": "soon_t", "attributes": {
            "qualifiedName": "last@cl1", "name": "last"}}})["mutatedEntities"]["CREATE"][0]["guid"]
    finally:
        emu.stop()
    assert set(guids + [last]) <= set(json.loads(state.read_text())["store"]["entities"])
