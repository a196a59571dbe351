"""Build the Atlas entities for one governed deployment, from a DeploymentRecord, in one bulk request.

Lineage: training data -> train/build process -> model build -> deploy process -> deployment, with the
registry copy (fs_path / hdfs_path / aws_s3_v2 directory) as a second input of the deploy process and as
the build's ``registryCopy``. Parents (project, S3 buckets and directories) travel in the same request with
negative guids, because a reference by unique attributes must already exist in Atlas.

qualifiedName scheme (``ns`` = the Atlas namespace, default "modelgov"):
  project           <name>@ns
  build             <name>/<version>@ns                       one per model name and version
  train process     <name>/<version>/train@ns
  deployment        <name>/<version>/<kind>://<host>/<deployment-id>@ns   one per deploy event
  deploy process    <name>/<version>/<kind>://<host>/<deployment-id>/deploy@ns
  registry copies   Atlas's own path conventions: <uri>@ns for fs_path/hdfs_path, s3://bucket/dir/@ns for S3 v2
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlparse

import atlas_types
from governance.atlas.constants import (
    BUILD_TYPE,
    DATASET_TYPE,
    DEFAULT_NAMESPACE,
    DEPLOY_PROCESS_TYPE,
    DEPLOYMENT_TYPE,
    PROJECT_TYPE,
    TRAIN_PROCESS_TYPE,
    millis,
)
from governance.deploy.datasets import registered_data_versions, versioned_dataset_attributes
from governance.deploy.record import DeploymentRecord
from governance.staging.metadata import is_repo_relative
from governance.staging.risk import RiskProfile

# the values of our modelgov_target_kind enum, read from the typedefs themselves: a kind added there (spark) is
# recorded as itself, not as "other"
TARGET_KINDS = frozenset(e["value"] for e in next(d for d in atlas_types.load()["enumDefs"]
                                                   if d["name"] == "modelgov_target_kind")["elementDefs"]) - {"other"}


@dataclass
class EntityBatch:
    """Entities of one bulk request; references between them use negative guids."""

    entities: list[dict] = field(default_factory=list)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    _by_qn: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, type_name: str, attributes: dict, relationships: dict | None = None) -> str:
        key = (type_name, attributes["qualifiedName"])
        if key in self._by_qn:
            return self._by_qn[key]
        guid = f"-{next(self._counter)}"
        entity = {"typeName": type_name, "guid": guid, "attributes": attributes}
        if relationships:
            entity["relationshipAttributes"] = relationships
        self.entities.append(entity)
        self._by_qn[key] = guid
        return guid


def ref(guid: str, relationship_type: str | None = None) -> dict:
    out = {"guid": guid}
    if relationship_type:
        out["relationshipType"] = relationship_type
    return out


@dataclass(frozen=True)
class QualifiedNames:
    project: str
    build: str
    deployment: str
    deploy_process: str
    train_process: str
    training_data: tuple[tuple[str, str], ...] = ()  # (typeName, qualifiedName) of each training dataset


def qualified_names(record: DeploymentRecord, namespace: str = DEFAULT_NAMESPACE) -> QualifiedNames:
    meta = record.staged.metadata
    build = f"{meta.name}/{meta.version}"
    deployment = f"{build}/{record.target.kind}://{record.target.host_detail}/{record.deployment_id}"
    return QualifiedNames(project=f"{meta.name}@{namespace}", build=f"{build}@{namespace}",
                          deployment=f"{deployment}@{namespace}", deploy_process=f"{deployment}/deploy@{namespace}",
                          train_process=f"{build}/train@{namespace}")


def add_location(batch: EntityBatch, uri: str, *, is_file: bool, namespace: str) -> str:
    """An Atlas entity for a storage location, following Atlas's own path conventions; returns its guid."""
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a"):
        return _add_s3(batch, parsed.netloc, parsed.path, is_file=is_file, namespace=namespace)
    name = parsed.path.rstrip("/").rsplit("/", 1)[-1] or parsed.path
    if parsed.scheme in ("hdfs", "webhdfs", "swebhdfs"):
        return batch.add("hdfs_path", {"qualifiedName": f"{uri}@{namespace}", "name": parsed.path, "path": uri,
                                       "isFile": is_file, "clusterName": namespace})
    if parsed.scheme == "file":
        return batch.add("fs_path", {"qualifiedName": f"{uri}@{namespace}", "name": parsed.path, "path": uri,
                                     "isFile": is_file})
    return batch.add("modelgov_dataset", {"qualifiedName": f"{uri}@{namespace}", "name": name or uri, "uri": uri})


def _add_s3(batch: EntityBatch, bucket: str, path: str, *, is_file: bool, namespace: str) -> str:
    """aws_s3_v2 bucket -> directory per segment -> object, each contained in its parent (mandatory)."""
    container = batch.add("aws_s3_v2_bucket", {"qualifiedName": f"s3://{bucket.lower()}@{namespace}",
                                               "name": bucket})
    segments = [s for s in path.split("/") if s]
    dirs = segments[:-1] if is_file else segments
    prefix = ""
    for seg in dirs:
        prefix += f"/{seg}"
        container = batch.add("aws_s3_v2_directory",
                              {"qualifiedName": f"s3://{bucket}{prefix}/@{namespace}", "name": seg,
                               "objectPrefix": f"{prefix}/", "bucketName": bucket},
                              {"container": ref(container, "aws_s3_v2_container_contained")})
    if not is_file:
        return container
    key = "/".join(segments)
    return batch.add("aws_s3_v2_object", {"qualifiedName": f"s3://{bucket}/{key}@{namespace}",
                                          "name": segments[-1], "bucketName": bucket},
                     {"container": ref(container, "aws_s3_v2_container_contained")})


def build_examples(manifest, staged) -> tuple[str | None, str | None]:
    """The version's example request and answer as JSON text: the manifest's (self-describing versions),
    else the staged repo's files, which the manifest's checksums pin."""
    source = manifest if manifest.metadata is not None else staged
    return tuple(json.dumps(v, sort_keys=True) if v is not None else None  # type: ignore[return-value]
                 for v in (source.example_request, source.example_response))


def build_entities(record: DeploymentRecord, namespace: str = DEFAULT_NAMESPACE) -> tuple[list[dict], QualifiedNames]:
    """All entities recording this deployment (or attempt), ready for ``AtlasClient.upsert_entities``."""
    staged, registered, meta = record.staged, record.registered, record.staged.metadata
    qn = qualified_names(record, namespace)
    batch = EntityBatch()
    manifest = registered.manifest
    published = datetime.fromisoformat(manifest.published_at)

    recorded = record.recorded_build
    if recorded is not None:
        # the version is recorded: refer to its project and build, never write them again (the record of a
        # version is the reference; a replica or a refused attempt must not rewrite it)
        build = ref_by_name(BUILD_TYPE, qn.build)
        registry_copy = add_location(batch, registered.location, is_file=False, namespace=namespace)
        owner = recorded.owner or meta.owner
        return _deployment_entities(batch, record, qn, build, registry_copy, owner), qn
    project = batch.add(PROJECT_TYPE, {"qualifiedName": qn.project, "name": meta.display_name, "owner": meta.owner,
                                       "metadata": {"ownerLob": meta.owner_lob}})
    registry_copy = add_location(batch, registered.location, is_file=False, namespace=namespace)
    executable = next(f for f in manifest.files if f.path == manifest.executable)
    # the build is the registered version: written from its immutable manifest, once (later deploys refer to it)
    example_request, example_response = build_examples(manifest, staged)
    build_attrs = {
        "qualifiedName": qn.build, "name": f"{meta.display_name} v{meta.version}", "version": meta.version_number,
        "description": meta.description, "owner": meta.owner, "createTime": millis(published),
        "registeredTime": millis(published), "modelVersion": meta.version, "modelType": meta.type,
        "framework": meta.framework, "ownerLob": meta.owner_lob, "stagingRepoUri": manifest.source,
        "stagingCommit": manifest.commit, "registryUri": registered.location,
        "executablePath": manifest.executable, "executableSha256": executable.sha256,
        "artifactChecksums": {f.path: f.sha256 for f in manifest.files}, "contentDigest": manifest.content_digest,
        "metadata": {k: v for k, v in {**meta.extra, "model.microservice.endpoint": meta.endpoint or ""}.items()
                     if v},
        "exampleRequest": example_request, "exampleResponse": example_response,
        "mlflowModelUri": meta.extra.get("model.mlflow.model.uri"), "mlflowRunId": meta.extra.get("model.mlflow.run.id"),
        "signerKind": (manifest.signer or {}).get("kind"), "signerFingerprint": (manifest.signer or {}).get("fingerprint"),
        "signerSubject": (manifest.signer or {}).get("subject"),
        **risk_attributes(meta.risk),
    }
    build_guid = batch.add(BUILD_TYPE, {k: v for k, v in build_attrs.items() if v is not None},
                           {"project": ref(project, "ml_project_model_build"),
                            "registryCopy": ref(registry_copy, "modelgov_build_registry_copy")})
    build = ref(build_guid)

    if meta.training_data:
        inputs = []
        datasets = []
        versions = registered_data_versions(record)
        for entry in meta.training_data:
            uri = registered.artifact_uri(entry) if is_repo_relative(entry) else entry
            version = versions.get(entry)
            if version is not None and version.version is not None:
                guid = batch.add(DATASET_TYPE, versioned_dataset_attributes(version, namespace))
            else:
                guid = add_location(batch, uri, is_file=True, namespace=namespace)
            inputs.append(ref(guid, "dataset_process_inputs"))
            entity = next(e for e in batch.entities if e["guid"] == guid)
            datasets.append((entity["typeName"], entity["attributes"]["qualifiedName"]))
        qn = replace(qn, training_data=tuple(datasets))
        batch.add(TRAIN_PROCESS_TYPE,
                  {"qualifiedName": qn.train_process, "name": f"train {meta.name} v{meta.version}",
                   "userName": meta.owner, "codeUri": staged.source, "commit": staged.commit},
                  {"inputs": inputs, "outputs": [ref(build_guid, "process_dataset_outputs")]})
    return _deployment_entities(batch, record, qn, build, registry_copy, meta.owner), qn


def risk_attributes(risk: RiskProfile) -> dict:
    """The build's risk and purpose attributes (None where the owner declared nothing, left out by the caller:
    a build recorded before these keys existed simply has none)."""
    day = risk.validation_date
    return {"riskTier": risk.risk_tier, "intendedUse": risk.intended_use, "limitations": risk.limitations,
            "validationStatus": risk.validation_status, "validatedBy": risk.validated_by,
            "validationDate": millis(datetime(day.year, day.month, day.day, tzinfo=UTC)) if day else None}


def ref_by_name(type_name: str, qualified_name: str) -> dict:
    """A reference to an entity Atlas already holds, by its unique name (stable across outbox replays)."""
    return {"typeName": type_name, "uniqueAttributes": {"qualifiedName": qualified_name}}


def _linked(target: dict, relationship_type: str) -> dict:
    return {**target, "relationshipType": relationship_type}


def _deployment_entities(batch: EntityBatch, record: DeploymentRecord, qn: QualifiedNames, build: dict,
                         registry_copy: str, owner: str) -> list[dict]:
    """The deployment (one deploy event) and its deploy process, linked to ``build``."""
    meta, registered = record.staged.metadata, record.registered
    result = record.result
    when = result.deployed_at if result else record.started_at
    deployment_attrs = {
        "qualifiedName": qn.deployment, "name": f"{meta.display_name} v{meta.version} @ {record.target.host_detail}",
        "description": meta.description, "owner": owner,
        "createTime": millis(record.started_at), "deployedTime": millis(when), "status": record.status,
        "cpuMillicores": 0, "replicas": 1, "modelName": meta.name, "modelVersion": meta.version,
        "targetKind": record.target.kind if record.target.kind in TARGET_KINDS else "other",
        "targetDetail": record.target.host_detail, "targetUri": record.target.uri,
        "serializedObjectUri": registered.executable_uri, "outcome": record.outcome,
        "failureReason": record.failure, "deployedBy": record.deployed_by, "orchestratorRunId": record.run_id,
        "modelEndpointURL": record.endpoint_url,
        "metadata": dict(result.details) if result else {},
    }
    if record.status == "stopped" and record.finished_at:
        deployment_attrs["stoppedTime"] = millis(record.finished_at)
    if record.reason:
        deployment_attrs["deployReason"] = record.reason
    if record.signature_check:
        deployment_attrs["signatureCheck"] = record.signature_check
    if record.deployed_by_proof:
        deployment_attrs["deployedByProof"] = record.deployed_by_proof
    if record.approval:
        deployment_attrs.update(approver=record.approval.approver, approvalTime=millis(record.approval.time),
                                approvalDecision=record.approval.decision,
                                approvalReason=record.approval.reason or None,
                                approvalProof=record.approval.proof,
                                approvalStatement=record.approval.statement)
    deployment = batch.add(DEPLOYMENT_TYPE, {k: v for k, v in deployment_attrs.items() if v is not None},
                           {"build": _linked(build, "ml_build_deployment")})
    process_attrs = {"qualifiedName": qn.deploy_process,
                     "name": f"deploy {meta.name} v{meta.version} to {record.target.host_detail}",
                     "userName": record.deployed_by, "orchestratorRunId": record.run_id,
                     "startTime": millis(record.started_at)}
    if record.finished_at:
        process_attrs["endTime"] = millis(record.finished_at)
    batch.add(DEPLOY_PROCESS_TYPE, {k: v for k, v in process_attrs.items() if v is not None},
              {"inputs": [_linked(build, "dataset_process_inputs"), ref(registry_copy, "dataset_process_inputs")],
               "outputs": [ref(deployment, "process_dataset_outputs")]})
    return batch.entities
