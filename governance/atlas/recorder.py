"""Record a DeploymentRecord in Atlas and answer compliance's questions from it.

Reruns update (upsert by qualifiedName), never duplicate. Which earlier deployments are ``stopped`` is decided
by comparing Atlas with what the target serves (``governance.govern``), through ``governance.ledger``.
Environment classifications ride in the create payload, so Atlas applies them on create only (it ignores
payload classifications on update), with no call of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.atlas.client import AtlasClient
from governance.atlas.entities import (
    DEFAULT_NAMESPACE,
    DEPLOYMENT_TYPE,
    build_entities,
    iso_from_millis,
)
from governance.errors import AtlasError
from governance.record import DeploymentRecord

SENSITIVE_CLASSIFICATION = "modelgov_sensitive_data"
ENVIRONMENT_CLASSIFICATIONS = {"production": "modelgov_production", "staging": "modelgov_staging"}
DEPLOYMENT_COLUMNS = ["modelName", "modelVersion", "status", "outcome", "targetKind", "targetDetail",
                      "modelEndpointURL", "deployedTime", "stoppedTime", "serializedObjectUri", "deployedBy",
                      "failureReason"]


@dataclass(frozen=True)
class RecordedEntity:
    type_name: str
    qualified_name: str
    guid: str

    def to_dict(self) -> dict:
        return {"typeName": self.type_name, "qualifiedName": self.qualified_name, "guid": self.guid}


@dataclass(frozen=True)
class AtlasRecord:
    build: RecordedEntity
    deployment: RecordedEntity
    deploy_process: RecordedEntity
    project: RecordedEntity
    superseded: tuple[str, ...] = ()
    pending: bool = False  # Atlas was unreachable: the record waits in the local outbox (modelgov outbox sync)


def record_deployment(client: AtlasClient, record: DeploymentRecord,
                      namespace: str = DEFAULT_NAMESPACE) -> AtlasRecord:
    """Upsert every entity of the record in one bulk call; return the guids Atlas assigned."""
    return apply_deployment(client, deployment_payload(record, namespace))


def deployment_payload(record: DeploymentRecord, namespace: str = DEFAULT_NAMESPACE, *,
                       build_only: bool = False) -> dict:
    """Everything ``apply_deployment`` writes, as plain JSON (what the outbox stores). ``build_only``: the
    build's entities without the deployment and its process (a run stopped before touching the target)."""
    entities, qn = build_entities(record, namespace)
    if build_only:
        entities = [e for e in entities if e["typeName"] not in (DEPLOYMENT_TYPE, "modelgov_deploy_process")]
    return {"entities": entities, "build_only": build_only,
            "names": {"project": qn.project, "build": qn.build, "deployment": qn.deployment,
                      "deploy_process": qn.deploy_process},
            "training_data": [list(t) for t in qn.training_data],
            "classification": ENVIRONMENT_CLASSIFICATIONS.get(record.environment or ""),
            "sensitive": record.staged.metadata.sensitive_data_category}


def apply_deployment(client: AtlasClient, payload: dict) -> AtlasRecord:
    """Write a ``deployment_payload`` to Atlas (an upsert by qualifiedName: applying it twice is harmless)."""
    entities, names = payload["entities"], payload["names"]
    classification = payload.get("classification")
    if classification:  # in the create payload: Atlas applies it when it creates the entity, not on update
        entities = [dict(e, classifications=[{"typeName": classification, "propagate": False}])
                    if e["typeName"] == DEPLOYMENT_TYPE and e["attributes"]["qualifiedName"] == names["deployment"]
                    and not e.get("classifications") else e for e in entities]
    result = client.upsert_entities(entities)
    guid_of = {}
    for entity in entities:
        assigned = result.guid_assignments.get(entity["guid"])
        if assigned is None:
            raise AtlasError(f"Atlas returned no guid for {entity['typeName']} {entity['attributes']['qualifiedName']}")
        guid_of[(entity["typeName"], entity["attributes"]["qualifiedName"])] = assigned

    def recorded(type_name: str, name: str) -> RecordedEntity:
        return RecordedEntity(type_name, name, guid_of.get((type_name, name), ""))

    deployment = recorded(DEPLOYMENT_TYPE, names["deployment"])
    category = payload.get("sensitive")
    if category:
        for type_name, name in payload.get("training_data") or []:
            _ensure_sensitive(client, guid_of[(type_name, name)], category)
    return AtlasRecord(build=recorded("modelgov_model_build", names["build"]), deployment=deployment,
                       deploy_process=recorded("modelgov_deploy_process", names["deploy_process"]),
                       project=recorded("ml_project", names["project"]))


def _ensure_sensitive(client: AtlasClient, dataset_guid: str, category: str) -> None:
    """Tag training data as sensitive with propagate=true: Atlas carries the tag along lineage to every
    process, build and deployment derived from it (dataset_process_inputs / process_dataset_outputs)."""
    own = [c for c in client.get_classifications(dataset_guid)
           if c.get("typeName") == SENSITIVE_CLASSIFICATION and c.get("entityGuid") in (None, dataset_guid)]
    if not own:
        client.add_classifications(dataset_guid, [{"typeName": SENSITIVE_CLASSIFICATION, "propagate": True,
                                                   "attributes": {"category": category}}])


def find_deployments(client: AtlasClient, *, name: str | None = None, owner: str | None = None,
                     status: str | None = None, limit: int | None = None) -> list[dict]:
    """Recorded deployments, newest first, as flat dicts for display."""
    criteria = []
    if name:
        criteria.append({"attributeName": "modelName", "operator": "=", "attributeValue": name})
    if owner:
        criteria.append({"attributeName": "owner", "operator": "=", "attributeValue": owner})
    if status == "failed":  # a failed attempt is stored stopped with outcome=failed
        criteria.append({"attributeName": "outcome", "operator": "=", "attributeValue": "failed"})
    elif status:
        criteria.append({"attributeName": "status", "operator": "=", "attributeValue": status})
    params: dict = {"typeName": DEPLOYMENT_TYPE, "excludeDeletedEntities": True, "attributes": DEPLOYMENT_COLUMNS,
                    "sortBy": "deployedTime", "sortOrder": "DESCENDING"}
    if len(criteria) == 1:
        params["entityFilters"] = criteria[0]
    elif criteria:
        params["entityFilters"] = {"condition": "AND", "criterion": criteria}
    rows = []
    for header in client.search_basic(params, max_results=limit):
        attrs = header.get("attributes") or {}
        row = {"guid": header.get("guid"), "qualifiedName": attrs.get("qualifiedName"),
               "owner": attrs.get("owner"), **{c: attrs.get(c) for c in DEPLOYMENT_COLUMNS}}
        for date_column in ("deployedTime", "stoppedTime"):
            row[date_column] = iso_from_millis(row[date_column])
        if row["outcome"] == "failed":
            # never deployed: Atlas's ml_model_deployment requires a deployedTime, so the attempt's start is
            # stored there; people see it as failed, with no deployed time
            row["status"], row["deployedTime"] = "failed", None
        if status and status != "failed" and row["status"] != status:
            continue
        rows.append(row)
    return rows
