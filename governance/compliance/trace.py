"""Trace one deployment back to its bytes, code, data and people, from Atlas's entity and lineage APIs.

deployment --(deploy process)--> build + registry copy --(train process)--> training datasets.
The chain is read with ``GET /v2/lineage/{guid}?direction=INPUT`` (only Process inputs/outputs edges, as
Atlas walks them), then its nodes (build, both processes, every training dataset: attributes and
classifications, including classifications propagated along lineage) in one ``GET /v2/entity/bulk`` per
page of guids, so a build trained on many datasets costs no call per dataset. The deployment record's own changes (status
deploying -> deployed -> stopped, and by which Atlas account) come from ``GET /v2/entity/{guid}/audit``.
"""

from __future__ import annotations

import json

from governance.atlas.client import AtlasClient
from governance.atlas.constants import (
    DEPLOY_PROCESS_TYPE,
    DEPLOYMENT_TYPE,
    SENSITIVE_CLASSIFICATION,
    TRAIN_PROCESS_TYPE,
)
from governance.compliance.queries import Deployment
from governance.compliance.times import iso
from governance.errors import AtlasNotFound, GovernanceError

LINEAGE_DEPTH = 3  # deployment <- deploy process <- build <- train process <- datasets


class NotADeployment(GovernanceError):
    """The reference names no recorded deployment."""


def atlas_ui_link(atlas_url: str, guid: str) -> str:
    """The entity's page in Atlas's web UI."""
    return f"{atlas_url.rstrip('/')}/index.html#!/detailPage/{guid}"


def load_deployment(client: AtlasClient, reference: str) -> dict:
    """The deployment entity (``AtlasEntityWithExtInfo``) by guid, or by qualifiedName (which has an '@')."""
    try:
        if "@" in reference:
            body = client.get_entity_by_unique(DEPLOYMENT_TYPE, reference)
        else:
            body = client.get_entity(reference)
    except AtlasNotFound:
        body = None
    if not body or body.get("entity", {}).get("typeName") != DEPLOYMENT_TYPE:
        raise NotADeployment(f"{reference}: no {DEPLOYMENT_TYPE} with that guid or qualifiedName in Atlas")
    return body


def related_guid(entity: dict, attribute: str) -> str | None:
    related = (entity.get("relationshipAttributes") or {}).get(attribute)
    return related.get("guid") if isinstance(related, dict) else None


def deployment_of(entity: dict) -> Deployment:
    """A Deployment from a full entity (the same fields a search header carries)."""
    header = {"guid": entity["guid"], "attributes": entity.get("attributes") or {},
              "classificationNames": [c.get("typeName") for c in entity.get("classifications") or []
                                      if c.get("entityGuid") in (None, entity["guid"])]}
    return Deployment.from_header(header)


def _own_and_propagated(entity: dict) -> tuple[list[dict], list[dict]]:
    own, propagated = [], []
    for c in entity.get("classifications") or []:
        item = {"typeName": c.get("typeName"), **(c.get("attributes") or {})}
        if c.get("entityGuid") in (None, entity["guid"]):
            own.append(item)
        else:
            propagated.append({**item, "from": c.get("entityGuid")})
    return own, propagated


def record_changes(client: AtlasClient, guid: str) -> list[dict]:
    """The deployment record's audit trail, oldest first: when, which Atlas account, what, and the status
    the record had after the change (parsed from the event's entity snapshot)."""
    out = []
    for event in sorted(client.audit(guid), key=lambda e: e.get("timestamp") or 0):
        status = None
        details = event.get("details") or ""
        snapshot = event.get("entity")
        if snapshot is None and ": " in details:
            try:
                snapshot = json.loads(details.split(": ", 1)[1])
            except ValueError:
                snapshot = None
        if isinstance(snapshot, dict):
            status = (snapshot.get("attributes") or {}).get("status")
        out.append({"time": iso(event.get("timestamp")), "user": event.get("user"), "action": event.get("action"),
                    "status": status})
    return out


def _read_chain(client: AtlasClient, guids: list[str]) -> dict[str, dict]:
    """The chain's entities by guid, a page of guids per call; one Atlas left out is an error, as its
    ``GET /v2/entity/guid`` would have been."""
    read = {e["guid"]: e for e in client.get_entities_paged(guids, min_ext_info=True)}
    missing = [g for g in guids if g not in read]
    if missing:
        raise AtlasNotFound(f"Atlas GET /v2/entity/bulk did not return {', '.join(missing)}")
    return read


MAX_SCORING_RUNS = 100  # a nightly job's year is 365 runs: trace shows the newest, and how many there are


def scoring_runs(client: AtlasClient, entity: dict) -> dict | None:
    """The Spark scoring runs that used this deployment's binding (``modelgov_scoring_run``), newest first, read
    in bulk: each run's outcome, window, rows and the exact input and output it read and wrote. None for a
    deployment that is not a Spark job's."""
    refs = [r for r in (entity.get("relationshipAttributes") or {}).get("scoringRuns") or [] if isinstance(r, dict)]
    if not refs:
        return None
    runs = []
    for run in client.get_entities_paged([r["guid"] for r in refs if r.get("guid")]):
        a, rel = run.get("attributes") or {}, run.get("relationshipAttributes") or {}

        runs.append({"guid": run.get("guid"), "runId": a.get("orchestratorRunId"), "outcome": a.get("outcome"),
                     "startTime": iso(a.get("startTime")), "endTime": iso(a.get("endTime")),
                     "startMs": a.get("startTime") or 0, "rowsIn": a.get("rowsIn"), "rowsOut": a.get("rowsOut"),
                     "inputs": _names(rel.get("inputs")), "outputs": _names(rel.get("outputs")),
                     "outputUri": a.get("outputUri"),
                     "failureReason": a.get("failureReason"), "runBy": a.get("runBy")})
    runs.sort(key=lambda r: (r.pop("startMs"), r["runId"] or ""), reverse=True)
    return {"total": len(runs), "runs": runs[:MAX_SCORING_RUNS]}


def _names(refs: object) -> list[str]:
    """What a run's inputs or outputs are called (Atlas's displayText: the dataset's name, with its version)."""
    return [str(d.get("displayText") or (d.get("uniqueAttributes") or {}).get("qualifiedName") or d.get("guid"))
            for d in refs or [] if isinstance(d, dict)] if isinstance(refs, list) else []


def trace(client: AtlasClient, reference: str, atlas_url: str) -> dict:
    """The whole chain behind one deployment as one JSON-ready object."""
    body = load_deployment(client, reference)
    entity = body["entity"]
    dep = deployment_of(entity)
    attrs = entity.get("attributes") or {}
    build_guid = related_guid(entity, "build")
    dep_own, dep_propagated = _own_and_propagated(entity)

    lineage = client.lineage(entity["guid"], direction="INPUT", depth=LINEAGE_DEPTH)
    nodes = lineage.get("guidEntityMap") or {}
    inputs_of: dict[str, list[str]] = {}
    for relation in lineage.get("relations") or []:
        inputs_of.setdefault(relation["toEntityId"], []).append(relation["fromEntityId"])

    def upstream(guid: str | None, type_name: str) -> str | None:
        return next((g for g in inputs_of.get(guid or "", []) if nodes.get(g, {}).get("typeName") == type_name),
                    None)

    deploy_guid = upstream(entity["guid"], DEPLOY_PROCESS_TYPE)
    train_guid = upstream(build_guid, TRAIN_PROCESS_TYPE)
    data_guids = sorted(inputs_of.get(train_guid or "", []), key=lambda g: nodes[g]["attributes"]["qualifiedName"])
    read = _read_chain(client, [g for g in (build_guid, deploy_guid, train_guid) if g] + data_guids)
    build = read[build_guid] if build_guid else {"attributes": {}}
    battrs = build.get("attributes") or {}
    deploy_proc = read[deploy_guid] if deploy_guid else None
    train_proc = read[train_guid] if train_guid else None
    datasets = []
    for guid in data_guids:
        data = read[guid]
        own, _ = _own_and_propagated(data)
        sensitive = next((c for c in own if c["typeName"] == SENSITIVE_CLASSIFICATION), None)
        datasets.append({"guid": guid, "typeName": data["typeName"],
                         "qualifiedName": data["attributes"].get("qualifiedName"),
                         "name": data["attributes"].get("name"), "classifications": own,
                         "sensitive": (sensitive.get("category") or SENSITIVE_CLASSIFICATION) if sensitive else None,
                         "atlasUrl": atlas_ui_link(atlas_url, guid)})
    copy_ref = (build.get("relationshipAttributes") or {}).get("registryCopy") or {}
    checksums = battrs.get("artifactChecksums") or {}
    return {
        "deployment": {**dep.to_dict(), "ownerLob": battrs.get("ownerLob"), "targetUri": attrs.get("targetUri"),
                       "serializedObjectUri": attrs.get("serializedObjectUri"),
                       "orchestratorRunId": attrs.get("orchestratorRunId"), "classifications": dep_own,
                       "signatureCheck": attrs.get("signatureCheck"), "deployedByProof": attrs.get("deployedByProof"),
                       "propagatedClassifications": dep_propagated, "atlasUrl": atlas_ui_link(atlas_url, dep.guid)},
        "deployProcess": None if deploy_proc is None else {
            "guid": deploy_proc["guid"], "qualifiedName": deploy_proc["attributes"].get("qualifiedName"),
            "userName": deploy_proc["attributes"].get("userName"),
            "orchestratorRunId": deploy_proc["attributes"].get("orchestratorRunId"),
            "startTime": iso(deploy_proc["attributes"].get("startTime")),
            "endTime": iso(deploy_proc["attributes"].get("endTime")),
            "atlasUrl": atlas_ui_link(atlas_url, deploy_proc["guid"])},
        "build": {"guid": build.get("guid"), "qualifiedName": battrs.get("qualifiedName"),
                  "modelVersion": battrs.get("modelVersion"), "versionNumber": battrs.get("version"),
                  "modelType": battrs.get("modelType"), "framework": battrs.get("framework"),
                  "description": battrs.get("description"), "owner": battrs.get("owner"),
                  "ownerLob": battrs.get("ownerLob"), "registeredTime": iso(battrs.get("registeredTime")),
                  "signer": ({"kind": battrs.get("signerKind"), "fingerprint": battrs.get("signerFingerprint"),
                              "subject": battrs.get("signerSubject")}
                             if battrs.get("signerFingerprint") else None),
                  "atlasUrl": atlas_ui_link(atlas_url, build["guid"]) if build.get("guid") else None},
        "registryCopy": {"uri": battrs.get("registryUri"), "guid": copy_ref.get("guid"),
                         "typeName": copy_ref.get("typeName"),
                         "qualifiedName": (copy_ref.get("uniqueAttributes") or {}).get("qualifiedName"),
                         "executable": battrs.get("executablePath"),
                         "executableSha256": battrs.get("executableSha256"),
                         "files": [{"path": p, "sha256": checksums[p]} for p in sorted(checksums)]},
        "staging": {"repository": battrs.get("stagingRepoUri"), "commit": battrs.get("stagingCommit")},
        "training": {
            "process": None if train_proc is None else {
                "guid": train_proc["guid"], "qualifiedName": train_proc["attributes"].get("qualifiedName"),
                "userName": train_proc["attributes"].get("userName"),
                "codeUri": train_proc["attributes"].get("codeUri"),
                "commit": train_proc["attributes"].get("commit")},
            "datasets": datasets},
        "scoringRuns": scoring_runs(client, entity),
        "recordChanges": record_changes(client, entity["guid"]),
        "people": {"owner": battrs.get("owner") or dep.owner, "ownerLob": battrs.get("ownerLob"),
                   "deployedBy": dep.deployed_by,
                   "trainedBy": train_proc["attributes"].get("userName") if train_proc else None,
                   "recordedBy": entity.get("createdBy")},
    }
