"""Verify one deployment: the registry copy, the target and Atlas must tell the same story.

1. registry: re-read every file of the registry copy and hash it; compare with the sha256 Atlas recorded
   on the build (``artifactChecksums``) and with the registry's own manifest, and the manifest itself (its
   content digest: files, metadata, examples) with the one Atlas recorded, so a rewritten manifest shows;
2. target: ask the target what it serves (``ServingTarget.served``: name, version, installed bytes where it
   lets us read them) and compare with what Atlas records as deployed there: this deployment's version
   must be served (with the recorded executable sha256) when Atlas says ``deployed``, and nothing of this
   model may be served that Atlas does not record as deployed on that target (read through the ledger's
   relationship walk, so a record written a moment ago counts although basic search indexes it later).
Each disagreement is one line naming the side that disagrees and how.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.atlas.client import AtlasClient
from governance.compliance.trace import deployment_of, load_deployment, related_guid
from governance.deploy.ledger import Ledger
from governance.deploy.reference import RecordedBuild
from governance.errors import GovernanceError


@dataclass
class Verification:
    deployment: str
    checked: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    registry: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict:
        return {"deployment": self.deployment, "agree": self.agree, "mismatches": self.mismatches,
                "checked": self.checked, "registry": self.registry, "target": self.target}


def verify_deployment(client: AtlasClient, reference: str) -> Verification:
    """Compare registry bytes, the target's own answer and Atlas's record for one deployment."""
    entity = load_deployment(client, reference)["entity"]
    dep = deployment_of(entity)
    build_guid = related_guid(entity, "build")
    build = (client.get_entity(build_guid)["entity"].get("attributes") or {}) if build_guid else {}
    result = Verification(deployment=dep.qualified_name)
    found = _check_registry(result, dep.model_name, dep.model_version, build)
    _check_target(result, client, dep, entity.get("attributes") or {}, build)
    _check_approval(result, dep, entity.get("attributes") or {}, build)
    if found is not None:
        _check_kept_approval(result, *found, (entity.get("attributes") or {}).get("approvalStatement"))
    return result


def _check_kept_approval(result: Verification, registry, registered, statement: str | None) -> None:
    """The signed approval Atlas records is kept, byte for byte, beside the version in the registry."""
    if not statement:
        return
    where = registry.approvals_location(registered.manifest.model_name, registered.manifest.model_version)
    try:
        kept = registry.is_kept(registered, statement)
    except GovernanceError as exc:
        result.mismatches.append(f"approval: cannot list the approvals kept at {where}: {exc}")
        return
    if kept:
        result.checked.append(f"approval: the signed statement Atlas records is kept in the registry at {where}")
    else:
        result.mismatches.append(f"approval: the signed statement Atlas records is not kept in the registry at "
                                 f"{where}")


def _check_approval(result: Verification, dep, attrs: dict, build: dict) -> None:
    """A signed approval recorded on the deployment, verified again against the approvers' keys
    (``MODELGOV_APPROVER_KEYS``) and the deployment it approved: checkable without Prefect."""
    from governance.trust.approvals import ApprovalNotValid, ApprovalSubject, verify_approval
    from governance.trust.signing import APPROVER_KEYS_ENV, TrustPolicy

    statement = attrs.get("approvalStatement")
    if not statement:
        return
    policy = TrustPolicy.from_env()
    if not policy.approvers:
        result.checked.append(f"approval: a signed statement is recorded, not checked (set {APPROVER_KEYS_ENV})")
        return
    subject = ApprovalSubject(dep.model_name, dep.model_version, build.get("contentDigest") or "",
                              dep.target_detail or "", dep.environment, attrs.get("orchestratorRunId") or "")
    try:
        verified = verify_approval(statement, subject, policy.approvers, deployer=attrs.get("deployedBy"),
                                   version_signer=build.get("signerFingerprint"), later=True)
    except ApprovalNotValid as exc:
        result.mismatches.append(f"approval: {exc}")
        return
    recorded = attrs.get("approver")
    who = f"{verified.approver.kind} {verified.approver.fingerprint}"
    if recorded != who:
        result.mismatches.append(f"approval: signed by {who}, Atlas records approver {recorded!r}")
        return
    result.checked.append(f"approval: {'approved' if verified.approved else 'rejected'} by {who}, signed for these "
                          f"bytes, this target and run")


def _check_registry(result: Verification, name: str, version: str, build: dict) -> tuple | None:
    """(registry, version) once the registry copy is found; what differs from Atlas joins the mismatches."""
    from governance.registries import get_registry

    location = build.get("registryUri") or ""
    recorded = dict(build.get("artifactChecksums") or {})
    actual: dict[str, str | None] = {}
    result.registry = {"uri": location, "files": actual}
    suffix = f"/{name}/{version}"
    if not location.rstrip("/").endswith(suffix):
        result.mismatches.append(f"atlas: build records registry copy {location or '(none)'}, which is not a "
                                 f"<registry>{suffix} version folder")
        return None
    try:
        registry = get_registry(location.rstrip("/")[: -len(suffix)])
        registered = registry.lookup(name, version)
    except GovernanceError as exc:
        result.mismatches.append(f"registry: cannot read {location}: {exc}")
        return None
    if registered is None:
        result.mismatches.append(f"registry: {location} has no complete version (no manifest); Atlas records "
                                 f"{len(recorded)} files")
        return None
    manifest = {f.path: f.sha256 for f in registered.manifest.files}
    for path in sorted(set(recorded) | set(manifest)):
        if path not in recorded:
            result.mismatches.append(f"registry: {registered.artifact_uri(path)} is in the registry manifest but "
                                     f"not in Atlas's record")
            continue
        try:
            actual[path], _ = registry.digest_of(registered, path)
        except Exception as exc:  # noqa: BLE001 - reported: verify lists every problem
            actual[path] = None
            result.mismatches.append(f"registry: {registered.artifact_uri(path)} cannot be read ({exc}); Atlas "
                                     f"recorded sha256 {recorded[path]}")
            continue
        if actual[path] != recorded[path]:
            result.mismatches.append(f"registry: {registered.artifact_uri(path)} has sha256 {actual[path]}, "
                                     f"Atlas recorded {recorded[path]}")
        elif manifest.get(path) != recorded[path]:
            result.mismatches.append(f"registry: manifest of {location} lists {path} with sha256 "
                                     f"{manifest.get(path)}, Atlas recorded {recorded[path]}")
    digest = build.get("contentDigest")
    if digest and registered.manifest.content_digest != digest:
        differs = RecordedBuild.of({"attributes": build}).differences(registered.manifest)
        result.mismatches.append(f"registry: manifest of {location} has content digest "
                                 f"{registered.manifest.content_digest}, Atlas recorded {digest}"
                                 + (f" ({'; '.join(differs)})" if differs else ""))
    elif not digest and build.get("owner") and (registered.manifest.metadata or {}).get("owner") not in (
            None, build.get("owner")):
        result.mismatches.append(f"registry: manifest of {location} names owner "
                                 f"{registered.manifest.metadata['owner']!r}, Atlas recorded {build.get('owner')!r}")
    elif all(actual.get(p) == recorded[p] for p in recorded) and set(manifest) == set(recorded):
        result.checked.append(f"registry: {len(recorded)} files of {location} re-hashed; sha256 and manifest as "
                              f"Atlas recorded")
    _check_signature(result, registry, registered, build)
    return registry, registered


def _check_signature(result: Verification, registry, registered, build: dict) -> None:
    """The version's signature under the trust policy (``governance.trust.signing``), and whether its signer is the
    one Atlas recorded."""
    from governance.trust.signing import TRUSTED_KEYS_ENV, SignatureError, TrustPolicy

    claimed = (registered.manifest.signer or {}).get("fingerprint")
    recorded = build.get("signerFingerprint")
    result.registry["signer"] = claimed
    if recorded != claimed:
        result.mismatches.append(f"registry: the manifest names signer {claimed or '(none)'}, Atlas recorded "
                                 f"{recorded or '(none)'}")
    try:
        signer, checked = registry.signature_of(registered, TrustPolicy.from_env())
    except SignatureError as exc:
        result.mismatches.append(f"signature: {exc}")
        return
    if signer and not checked:
        result.checked.append(f"signature: signed by {signer.describe()}, not checked (set {TRUSTED_KEYS_ENV})")
        return
    result.checked.append(f"signature: valid, by trusted {signer.describe()}" if signer else "signature: unsigned")


def _check_target(result: Verification, client: AtlasClient, dep, attrs: dict, build: dict) -> None:
    from governance.targets import get_target

    where = f"{dep.target_kind}://{dep.target_detail}"
    version_number = str(build.get("version")) if build.get("version") is not None else None
    recorded_sha = build.get("executableSha256")
    uri = attrs.get("targetUri")
    if not uri:
        result.mismatches.append(f"atlas: deployment records no targetUri; cannot ask {where} what it serves")
        return
    try:
        served = get_target(uri).served(dep.model_name)
    except GovernanceError as exc:
        result.mismatches.append(f"target: cannot ask {where} what it serves: {exc}")
        return
    result.target = {"where": where, "served": [
        {"name": s.name, "version": s.version, "targetVersion": s.target_version, "sha256": s.sha256,
         "endpointUrl": s.endpoint_url} for s in served]}

    def is_this(s) -> bool:
        return s.version == dep.model_version or (version_number is not None and s.target_version == version_number)

    # a consistent read (project -> builds -> deployments), not basic search, which Atlas indexes later
    ledger = Ledger.reader(client, namespace=dep.qualified_name.rsplit("@", 1)[-1])
    recorded_versions = {r["modelVersion"] for r in ledger.deployed_on(dep.target_detail or "", dep.model_name)}
    mine = [s for s in served if is_this(s)]
    if dep.status == "deployed":
        if not mine:
            others = ", ".join(sorted(s.version for s in served)) or "nothing"
            result.mismatches.append(f"target: {where} does not serve {dep.model_name} {dep.model_version}, which "
                                     f"Atlas records as deployed there (it serves {dep.model_name}: {others})")
        for s in mine:
            if s.sha256 and recorded_sha and s.sha256 != recorded_sha:
                result.mismatches.append(f"target: {where} serves {dep.model_name} {dep.model_version} from an "
                                         f"executable with sha256 {s.sha256}, Atlas recorded {recorded_sha}")
            elif s.endpoint_url and dep.endpoint_url and s.endpoint_url != dep.endpoint_url:
                result.mismatches.append(f"target: {where} serves {dep.model_name} {dep.model_version} at "
                                         f"{s.endpoint_url}, Atlas recorded {dep.endpoint_url}")
            else:
                bytes_note = f"installed sha256 {s.sha256}" if s.sha256 else "installed bytes not readable"
                result.checked.append(f"target: {where} serves {dep.model_name} {dep.model_version} "
                                      f"({bytes_note}) as Atlas records")
    for s in served:
        if s.version not in recorded_versions and not (is_this(s) and dep.status == "deployed"):
            result.mismatches.append(f"target: {where} serves {s.name} {s.version}, which Atlas does not record "
                                     f"as deployed there")
    if dep.status != "deployed" and not any(s.version not in recorded_versions for s in served):
        result.checked.append(f"target: {where} serves only what Atlas records as deployed there "
                              f"({dep.model_name} {dep.model_version} is {dep.status}, {dep.outcome})")
