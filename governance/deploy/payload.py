"""A DeploymentRecord as one Atlas bulk payload, and applying that payload (what the ledger and the outbox write).

Reruns update (upsert by qualifiedName), never duplicate. Which earlier deployments are ``stopped`` is decided
by comparing Atlas with what the target serves (``governance.deploy.governed``), through the ledger.
Environment classifications ride in the create payload, so Atlas applies them on create only (it ignores
payload classifications on update), with no call of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.atlas.client import AtlasClient
from governance.atlas.constants import (
    BUILD_TYPE,
    DEFAULT_NAMESPACE,
    DEPLOY_PROCESS_TYPE,
    DEPLOYMENT_TYPE,
    ENVIRONMENT_CLASSIFICATIONS,
    PROJECT_TYPE,
    SENSITIVE_CLASSIFICATION,
)
from governance.deploy.entities import build_entities
from governance.deploy.record import DeploymentRecord
from governance.errors import AtlasError


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
        entities = [e for e in entities if e["typeName"] not in (DEPLOYMENT_TYPE, DEPLOY_PROCESS_TYPE)]
    return {"entities": entities, "build_only": build_only,
            "names": {"project": qn.project, "build": qn.build, "deployment": qn.deployment,
                      "deploy_process": qn.deploy_process},
            "training_data": [list(t) for t in qn.training_data],
            # guids of what Atlas already holds and this payload only refers to (the recorded build)
            "known_guids": {BUILD_TYPE: record.recorded_build.guid, PROJECT_TYPE: record.recorded_build.project_guid}
            if record.recorded_build else {},
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

    known = payload.get("known_guids") or {}

    def recorded(type_name: str, name: str) -> RecordedEntity:
        return RecordedEntity(type_name, name, guid_of.get((type_name, name), known.get(type_name, "")))

    deployment = recorded(DEPLOYMENT_TYPE, names["deployment"])
    category = payload.get("sensitive")
    if category:
        for type_name, name in payload.get("training_data") or []:
            _ensure_sensitive(client, guid_of[(type_name, name)], category)
    return AtlasRecord(build=recorded(BUILD_TYPE, names["build"]), deployment=deployment,
                       deploy_process=recorded(DEPLOY_PROCESS_TYPE, names["deploy_process"]),
                       project=recorded(PROJECT_TYPE, names["project"]))


def pending_record(payload: dict) -> AtlasRecord:
    """The record of a payload that waits in the outbox: its qualifiedNames, no guids yet, ``pending``."""
    names = payload["names"]
    return AtlasRecord(build=RecordedEntity(BUILD_TYPE, names["build"], ""),
                       deployment=RecordedEntity(DEPLOYMENT_TYPE, names["deployment"], ""),
                       deploy_process=RecordedEntity(DEPLOY_PROCESS_TYPE, names["deploy_process"], ""),
                       project=RecordedEntity(PROJECT_TYPE, names["project"], ""), pending=True)


def _ensure_sensitive(client: AtlasClient, dataset_guid: str, category: str) -> None:
    """Tag training data as sensitive with propagate=true: Atlas carries the tag along lineage to every
    process, build and deployment derived from it (dataset_process_inputs / process_dataset_outputs)."""
    own = [c for c in client.get_classifications(dataset_guid)
           if c.get("typeName") == SENSITIVE_CLASSIFICATION and c.get("entityGuid") in (None, dataset_guid)]
    if not own:
        client.add_classifications(dataset_guid, [{"typeName": SENSITIVE_CLASSIFICATION, "propagate": True,
                                                   "attributes": {"category": category}}])
