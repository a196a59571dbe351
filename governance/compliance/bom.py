"""A CycloneDX 1.6 ML-BOM of one deployment (``modelgov bom``), from the record in Atlas alone.

What the deployment put into service, as CycloneDX tools read it: the deployment itself (``metadata.component``,
an application), the model version (a ``machine-learning-model`` component with the executable's sha256, one
``file`` sub-component per registered file with its sha256, the registry location as its ``distribution``
reference, the staging commit as its ``vcs`` reference and a ``modelCard``), each training dataset (a ``data``
component, with its exact version), and the serving runtime (the target kind, a ``platform`` component, with
its version where the record holds one). ``dependencies`` say deployment -> model + runtime, model -> datasets.

``cyclonedx-python-lib`` builds and serialises the document (so bom-refs, hashes and references are its
well-formed types). Its 11.x model has no ``modelCard`` nor component ``data`` yet (both are "TODO since
CDX1.5" in ``cyclonedx.model.component``), so those two objects are added to the serialised JSON here, in the
shape the 1.6 schema defines; ``validate`` then checks the whole document against the official 1.6 schema.
The fields come from ``card()``, the same reading of the record as ``modelgov card``.
"""

from __future__ import annotations

import json

from governance.atlas.client import AtlasClient
from governance.compliance.card import card
from governance.compliance.times import iso
from governance.compliance.trace import deployment_of, load_deployment, related_guid
from governance.errors import GovernanceError

SPEC_VERSION = "1.6"
RUNTIME_VERSION_KEYS = ("runtime_version",)  # the deployment metadata key a target records its server version in


class InvalidBom(GovernanceError):
    """The document does not validate against the CycloneDX schema (a bug here, never a user error)."""


def bom(client: AtlasClient, reference: str, atlas_url: str) -> dict:
    """The ML-BOM of the deployment ``reference`` (guid or qualifiedName), as a JSON-ready dict, validated."""
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        Property,
        XsUri,
    )
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    entity = load_deployment(client, reference)["entity"]
    dep, attrs = deployment_of(entity), entity.get("attributes") or {}
    build_guid = related_guid(entity, "build")
    build = client.get_entity(build_guid)["entity"] if build_guid else None
    namespace = dep.qualified_name.rsplit("@", 1)[-1]
    model_card = card(client, dep.model_name, dep.model_version, atlas_url, namespace)
    model, data, code = model_card["model"], model_card["trainingData"], model_card["code"]
    files = model_card["bytes"]

    def props(pairs: dict) -> list:
        return [Property(name=f"modelgov:{k}", value=str(v)) for k, v in pairs.items() if v not in (None, "")]

    def sha(value: str | None) -> list:
        return [HashType(alg=HashAlgorithm.SHA_256, content=value)] if value else []

    model_ref = f"model:{model['qualifiedName']}"
    references = [ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(files["registryUri"]),
                                    comment="the immutable registry version these bytes were deployed from")] \
        if files.get("registryUri") else []
    if code.get("repository"):
        references.append(ExternalReference(type=ExternalReferenceType.VCS, url=XsUri(code["repository"]),
                                            comment=f"staging commit {code.get('commit') or 'not recorded'}"))
    signer = files.get("signer") or {}
    model_component = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=model_ref, name=model["name"], version=model["version"],
        description=model_card["purpose"]["description"], hashes=sha(files.get("executableSha256")),
        external_references=references,
        components=[Component(type=ComponentType.FILE, bom_ref=f"{model_ref}#{f['path']}", name=f["path"],
                              hashes=sha(f["sha256"])) for f in files["files"]],
        properties=props({"displayName": model["displayName"], "owner": model["owner"], "ownerLob": model["ownerLob"],
                          "framework": model["framework"], "executable": files.get("executable"),
                          "contentDigest": files.get("contentDigest"), "registryUri": files.get("registryUri"),
                          "stagingCommit": code.get("commit"), "signerKind": signer.get("kind"),
                          "signerFingerprint": signer.get("fingerprint"), "signerSubject": signer.get("subject"),
                          "atlasGuid": model["guid"]}))
    datasets = []
    for d in data:
        datasets.append(Component(
            type=ComponentType.DATA, bom_ref=f"data:{d['qualifiedName']}", name=d["location"] or d["qualifiedName"],
            version=d["version"], hashes=sha(d["version"]) if d["versionKind"] == "sha256" else [],
            properties=props({"dataVersionKind": d["versionKind"], "atlasType": d["typeName"],
                              "qualifiedName": d["qualifiedName"]})))
    runtime_version = next((str((attrs.get("metadata") or {})[k]) for k in RUNTIME_VERSION_KEYS
                            if (attrs.get("metadata") or {}).get(k)), None)
    runtime = Component(type=ComponentType.PLATFORM, bom_ref=f"runtime:{dep.target_kind}://{dep.target_detail}",
                        name=dep.target_kind or "unknown", version=runtime_version,
                        properties=props({"targetDetail": dep.target_detail, "endpoint": dep.endpoint_url}))
    deployment = Component(
        type=ComponentType.APPLICATION, bom_ref=f"deployment:{dep.qualified_name}", name=dep.qualified_name,
        version=dep.model_version, description=f"{model['displayName'] or dep.model_name} {dep.model_version} "
                                                f"served on {dep.target_kind}://{dep.target_detail}",
        properties=props({"environment": dep.environment, "status": dep.status, "outcome": dep.outcome,
                          "deployedTime": iso(dep.deployed_ms), "stoppedTime": iso(dep.stopped_ms),
                          "deployedBy": dep.deployed_by, "approver": attrs.get("approver"),
                          "approvalDecision": attrs.get("approvalDecision"), "atlasGuid": dep.guid,
                          "buildGuid": (build or {}).get("guid")}))
    document = Bom(components=[model_component, *datasets, runtime])
    document.metadata.component = deployment
    document.register_dependency(deployment, [model_component, runtime])
    document.register_dependency(model_component, datasets)
    out = json.loads(JsonV1Dot6(document).output_as_string())
    _add_model_card(out, model_ref, model_card)
    _add_data(out, data)
    validate(out)
    return out


def _component(out: dict, bom_ref: str) -> dict:
    return next(c for c in out.get("components") or [] if c.get("bom-ref") == bom_ref)


def _add_model_card(out: dict, model_ref: str, model_card: dict) -> None:
    """The 1.6 ``modelCard``: task and framework, datasets by bom-ref, intended use, limitations, risk."""
    purpose, risk, model = model_card["purpose"], model_card["risk"], model_card["model"]
    parameters: dict = {"datasets": [{"ref": f"data:{d['qualifiedName']}"} for d in model_card["trainingData"]]}
    if model.get("type"):
        parameters["task"] = model["type"]
    if model.get("framework"):
        parameters["architectureFamily"] = model["framework"]
    considerations = {k: [v] for k, v in (("useCases", purpose.get("intendedUse")),
                                          ("technicalLimitations", purpose.get("limitations"))) if v}
    validation = risk.get("validation") or {}
    properties = [{"name": f"modelgov:{k}", "value": str(v)} for k, v in (
        ("riskTier", risk.get("tier")), ("validationStatus", validation.get("status")),
        ("validatedBy", validation.get("by")), ("validationDate", validation.get("date"))) if v]
    card_json: dict = {"bom-ref": f"{model_ref}#model-card", "modelParameters": parameters}
    if considerations:
        card_json["considerations"] = considerations
    if properties:
        card_json["properties"] = properties
    _component(out, model_ref)["modelCard"] = card_json


def _add_data(out: dict, datasets: list[dict]) -> None:
    """Each data component's 1.6 ``data``: a dataset, where it lives, and its sensitivity where classified."""
    for d in datasets:
        entry: dict = {"type": "dataset", "name": d["name"] or d["qualifiedName"]}
        if d["location"]:
            entry["contents"] = {"url": d["location"]}
        if d["sensitive"]:
            entry["sensitiveData"] = [d["sensitive"]]
        _component(out, f"data:{d['qualifiedName']}")["data"] = [entry]


def validate(document: dict) -> None:
    """Raise InvalidBom unless ``document`` is valid CycloneDX 1.6 JSON (the library's strict validator)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        raise InvalidBom(f"the ML-BOM is not valid CycloneDX {SPEC_VERSION}: {error}")
