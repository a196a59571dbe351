"""A model card for one model version, built only from the record in Atlas (``modelgov card``).

What a reviewer asks of a model version, each answered from the entities one deploy wrote: the build
(purpose, owner, type, risk and validation, code commit, exact bytes and signer, the smoke-test example),
its project (the name as people write it), its training process and datasets (with their versions), and
every deployment made from it (through the build's ``deployments`` relationship, read by guid: no search
index in between, so a card made right after a deploy already lists it).

``card(...)`` returns one JSON-ready dict (``--format json`` prints it exactly); ``render`` turns it into
Markdown or one standalone HTML page through the Jinja2 templates next to the report's, where every value
from the record is escaped for its channel (``governance.safe_output``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from governance.atlas.client import AtlasClient
from governance.atlas.constants import (
    BUILD_TYPE,
    DEFAULT_NAMESPACE,
    SENSITIVE_CLASSIFICATION,
    TRAIN_PROCESS_TYPE,
)
from governance.compliance.templating import template_environment
from governance.compliance.times import iso, to_millis
from governance.compliance.trace import atlas_ui_link, deployment_of, related_guid
from governance.errors import GovernanceError
from governance.staging.metadata import slugify

FORMATS = ("md", "html", "json")


class NoSuchVersion(GovernanceError):
    """Atlas holds no build of that model name and version."""


def card(client: AtlasClient, name: str, version: str, atlas_url: str,
         namespace: str = DEFAULT_NAMESPACE) -> dict:
    """The model card of ``name`` (as written or its identifier) ``version``, from Atlas alone."""
    qualified_name = f"{slugify(name)}/{version}@{namespace}"
    body = client.get_entity_by_unique(BUILD_TYPE, qualified_name)
    if not body:
        raise NoSuchVersion(f"{name} {version}: no {BUILD_TYPE} {qualified_name} in Atlas at {atlas_url}")
    build = body["entity"]
    attrs = build.get("attributes") or {}
    project_guid = related_guid(build, "project")
    project = client.get_entity(project_guid)["entity"] if project_guid else {"attributes": {}}
    signer = {"kind": attrs.get("signerKind"), "fingerprint": attrs.get("signerFingerprint"),
              "subject": attrs.get("signerSubject")} if attrs.get("signerFingerprint") else None
    checksums = attrs.get("artifactChecksums") or {}
    training = _training(client, qualified_name.replace("@", "/train@", 1), atlas_url)
    for dataset in training["datasets"]:
        _shipped_version(dataset, attrs.get("registryUri"), checksums)
    return {
        "model": {"name": attrs.get("qualifiedName", "").split("/", 1)[0], "version": attrs.get("modelVersion") or version,
                  "displayName": (project.get("attributes") or {}).get("name"), "versionNumber": attrs.get("version"),
                  "type": attrs.get("modelType"), "framework": attrs.get("framework"), "owner": attrs.get("owner"),
                  "ownerLob": attrs.get("ownerLob"), "registeredTime": iso(attrs.get("registeredTime")),
                  "qualifiedName": attrs.get("qualifiedName"), "guid": build["guid"],
                  "atlasUrl": atlas_ui_link(atlas_url, build["guid"])},
        "purpose": {"description": attrs.get("description"), "intendedUse": attrs.get("intendedUse"),
                    "limitations": attrs.get("limitations")},
        "risk": {"tier": attrs.get("riskTier"),
                 "validation": {"status": attrs.get("validationStatus"), "by": attrs.get("validatedBy"),
                                # Atlas stores an unset date as 0: iso() takes it as none
                                "date": (iso(attrs.get("validationDate")) or "")[:10] or None}},
        "trainingData": training["datasets"],
        "code": {"repository": attrs.get("stagingRepoUri"), "commit": attrs.get("stagingCommit"),
                 "trainingProcess": training["process"]},
        "bytes": {"registryUri": attrs.get("registryUri"), "executable": attrs.get("executablePath"),
                  "executableSha256": attrs.get("executableSha256"), "contentDigest": attrs.get("contentDigest"),
                  "files": [{"path": p, "sha256": checksums[p]} for p in sorted(checksums)], "signer": signer},
        "deployments": _deployments(client, build, atlas_url),
        "example": {"request": _json(attrs.get("exampleRequest")), "response": _json(attrs.get("exampleResponse"))},
        "generated": iso(to_millis(datetime.now(UTC))),
        "atlasUrl": atlas_url,
    }


def _json(text: str | None):
    """An example as the JSON value it was recorded as (the build stores it as text)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # a record written by hand: shown as the text it is


def _shipped_version(dataset: dict, registry_uri: str | None, checksums: dict) -> None:
    """Training data shipped inside the version (``data/...``) is a file of the registry copy: its version is
    the sha256 the build recorded for that file."""
    location = dataset["location"] or ""
    if dataset["version"] is None and registry_uri and location.startswith(registry_uri.rstrip("/") + "/"):
        sha = checksums.get(location[len(registry_uri.rstrip("/")) + 1:])
        if sha:
            dataset["version"], dataset["versionKind"] = sha, "sha256"


def _training(client: AtlasClient, train_qualified_name: str, atlas_url: str) -> dict:
    """The training process and the datasets it read, each with its exact version where one was recorded."""
    body = client.get_entity_by_unique(TRAIN_PROCESS_TYPE, train_qualified_name)
    if not body:
        return {"process": None, "datasets": []}
    process = body["entity"]
    pattrs = process.get("attributes") or {}
    inputs = [r["guid"] for r in (process.get("relationshipAttributes") or {}).get("inputs") or []
              if isinstance(r, dict) and r.get("guid") and r.get("relationshipStatus", "ACTIVE") == "ACTIVE"]
    datasets = []
    for entity in client.get_active_entities(inputs):
        a = entity.get("attributes") or {}
        own = [c for c in entity.get("classifications") or [] if c.get("typeName") == SENSITIVE_CLASSIFICATION
               and c.get("entityGuid") in (None, entity["guid"])]
        datasets.append({"qualifiedName": a.get("qualifiedName"), "name": a.get("name"),
                         "typeName": entity.get("typeName"),
                         "location": a.get("location") or a.get("path") or a.get("uri"),
                         "version": a.get("dataVersion"), "versionKind": a.get("dataVersionKind"),
                         "sensitive": ((own[0].get("attributes") or {}).get("category") or "sensitive")
                         if own else None,
                         "atlasUrl": atlas_ui_link(atlas_url, entity["guid"])})
    datasets.sort(key=lambda d: d["qualifiedName"] or "")
    return {"process": {"qualifiedName": pattrs.get("qualifiedName"), "trainedBy": pattrs.get("userName"),
                        "codeUri": pattrs.get("codeUri"), "commit": pattrs.get("commit")},
            "datasets": datasets}


def _deployments(client: AtlasClient, build: dict, atlas_url: str) -> list[dict]:
    """Every deployment (and failed or refused attempt) of the build, oldest first, with its window and
    approval."""
    refs = (build.get("relationshipAttributes") or {}).get("deployments") or []
    guids = [r["guid"] for r in refs if isinstance(r, dict) and r.get("guid")
             and r.get("relationshipStatus", "ACTIVE") == "ACTIVE"]
    found = []
    for entity in client.get_active_entities(guids):
        d, a = deployment_of(entity), entity.get("attributes") or {}
        found.append(((d.deployed_ms or 0, d.qualified_name), {"qualifiedName": d.qualified_name, "guid": d.guid,
                    "target": f"{d.target_kind}://{d.target_detail}", "environment": d.environment,
                    "status": d.status, "outcome": d.outcome, "deployedTime": iso(d.deployed_ms),
                    "stoppedTime": iso(d.stopped_ms), "deployedBy": d.deployed_by,
                    "approver": a.get("approver"), "approvalDecision": a.get("approvalDecision"),
                    "approvalTime": iso(a.get("approvalTime")), "approvalProof": a.get("approvalProof"),
                    "deployReason": a.get("deployReason"), "stopReason": a.get("stopReason"),
                    "failureReason": d.failure_reason, "endpoint": d.endpoint_url,
                    "atlasUrl": atlas_ui_link(atlas_url, d.guid)}))
    return [row for _, row in sorted(found, key=lambda pair: pair[0])]


def render(model_card: dict, fmt: str) -> str:
    """The card as ``json`` (exact values), ``md`` or ``html`` (one standalone page, values escaped)."""
    if fmt == "json":
        return json.dumps(model_card, indent=2, ensure_ascii=False) + "\n"
    if fmt not in FORMATS:
        raise ValueError(f"unknown card format {fmt!r}; choose one of {', '.join(FORMATS)}")
    example = model_card["example"]
    shown = {k: None if v is None else json.dumps(v, indent=2, ensure_ascii=False) for k, v in example.items()}
    return template_environment().get_template(f"card.{fmt}.j2").render(card=model_card, example=shown)
