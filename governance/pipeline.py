"""The pipeline's steps as plain functions, so flows stay a table of contents and tests need no Prefect.

Order: fetch -> validate -> preflight -> publish -> (under the target's lock) record intent -> deploy ->
record outcome -> compare Atlas with what the target serves. Publishing first lets the target serve exactly
the registered, checksummed bytes. Atlas is checked before anything is written and told "deploying" before
the target is touched, so no deployment goes unrecorded: a failed deploy leaves an immutable registry
version and an Atlas deployment recorded as failed. Every record goes through the Ledger
(``governance.ledger``); the deploy itself is governed by ``governance.govern``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.entities import DEFAULT_NAMESPACE
from governance.atlas.recorder import AtlasRecord
from governance.errors import GovernanceError, StepFailed
from governance.govern import Governed, GovernedDeploy
from governance.ledger import Ledger
from governance.outbox import Outbox
from governance.record import DeploymentRecord, TargetInfo, current_user
from governance.registries import Registry, RegistryVersion, get_registry
from governance.staging.repo import StagedRepo
from governance.targets import Release, ServingTarget, get_target


@dataclass(frozen=True)
class DeployRequest:
    """What the operator asked for. Holds no secrets: Atlas credentials come from the environment."""

    source: str
    target: str
    registry: str
    atlas_url: str | None = None
    environment: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    progress: bool = False


@dataclass
class Resources:
    registry: Registry
    target: ServingTarget
    ledger: Ledger

    @property
    def atlas(self) -> AtlasClient:
        return self.ledger.atlas


def run_step(step: str, fn, *args, **kwargs):
    """Run one step; any failure becomes StepFailed naming the step."""
    try:
        return fn(*args, **kwargs)
    except StepFailed:
        raise
    except GovernanceError as exc:
        raise StepFailed(step, exc) from exc
    except Exception as exc:  # noqa: BLE001 - unexpected errors are still attributed to their step
        raise StepFailed(step, exc) from exc


def preflight(request: DeployRequest, settings: AtlasSettings | None = None) -> Resources:
    """Resolve registry and target URIs and make sure Atlas answers and has our types, before writing anything."""
    registry = get_registry(request.registry)
    target = get_target(request.target)
    ledger = Ledger(AtlasClient(settings or AtlasSettings.from_env(request.atlas_url)), request.namespace,
                    outbox=Outbox())
    ledger.check()
    return Resources(registry, target, ledger)


def start_record(staged: StagedRepo, registered: RegistryVersion, target: ServingTarget,
                 request: DeployRequest, run_id: str | None) -> DeploymentRecord:
    return DeploymentRecord(
        deployment_id=run_id or uuid.uuid4().hex, staged=staged, registered=registered,
        target=TargetInfo(kind=target.kind, uri=target.uri, host_detail=target.host_detail),
        started_at=datetime.now(UTC), deployed_by=current_user(), run_id=run_id,
        environment=request.environment)


def release_for(staged: StagedRepo, registered: RegistryVersion, registry: Registry) -> Release:
    return Release(metadata=staged.metadata, registered=registered, registry=registry,
                   example_request=staged.example_request, example_response=staged.example_response)


def govern(res: Resources, release: Release, record: DeploymentRecord,
           on_wait: Callable[[str], None] | None = None) -> Governed:
    """Deploy under the target's lock and keep Atlas equal to what the target serves (see governance.govern).
    Raises StepFailed naming the step (record, deploy) with the summary of what was recorded, or
    DeployInterrupted after compensating for SIGTERM/SIGINT."""
    return GovernedDeploy(res.target, res.ledger, on_wait=on_wait).run(release, record, summary)


def governed_summary(governed: Governed) -> dict:
    """The summary of a governed deploy: a no-op says so and names the record that already covers it."""
    out = summary(governed.record, governed.atlas, governed.superseded)
    out["settled"] = [{"qualifiedName": s.qualified_name, "status": s.status, "reason": s.reason}
                      for s in governed.settled]
    if governed.noop:
        existing = governed.existing or {}
        out.update(status="unchanged", endpoint=existing.get("modelEndpointURL"),
                   message=f"{governed.record.target.host_detail} already serves these exact bytes "
                           f"(same sha256): nothing was deployed or recorded",
                   existing_deployment={"guid": existing.get("guid"),
                                        "qualifiedName": existing.get("qualifiedName")})
    return out


def summary(record: DeploymentRecord, atlas_record: AtlasRecord | None, superseded: list[str]) -> dict:
    """The one JSON object ``modelgov deploy --json`` prints."""
    meta, registered = record.staged.metadata, record.registered
    out = {
        "status": {"succeeded": "deployed", "rejected": "rejected"}.get(record.outcome, "failed"),
        "model": {"name": meta.name, "version": meta.version, "owner": meta.owner},
        "staging": {"source": record.staged.source, "commit": record.staged.commit},
        "registry_uri": registered.location,
        "registry_created": registered.created,
        "artifacts": [f.to_dict() for f in registered.manifest.files],
        "target": {"kind": record.target.kind, "detail": record.target.host_detail},
        "endpoint": record.endpoint_url,
        "deployment_id": record.deployment_id,
        "failure": record.failure,
        "superseded": superseded,
    }
    if record.approval:
        out["approval"] = record.approval.to_dict()
    if record.result and record.result.smoke:
        out["prediction"] = record.result.smoke.response.get("outputs") \
            if isinstance(record.result.smoke.response, dict) else record.result.smoke.response
    out["record"] = "pending" if atlas_record is not None and atlas_record.pending else \
        ("recorded" if atlas_record is not None else "none")
    if atlas_record and atlas_record.pending:
        out["message"] = (f"{meta.name} {meta.version}: {out['status']}; Atlas was unreachable, so its record is "
                          "pending in the local outbox: `modelgov outbox sync` (every deploy also does it first)")
    elif atlas_record:
        out["atlas"] = {"project": atlas_record.project.to_dict(), "build": atlas_record.build.to_dict(),
                        "deployment": atlas_record.deployment.to_dict(),
                        "deploy_process": atlas_record.deploy_process.to_dict()}
    return out


def plan(source: str, target_uri: str, registry_uri: str) -> dict:
    """What a deploy would do, without writing anything: the validated model, where it would be registered,
    and the target's rendered manifest when it has one (KServe)."""
    from governance.registries.base import Manifest
    from governance.staging.intake import fetch_and_validate

    staged, fetched = fetch_and_validate(source)
    try:
        registry = get_registry(registry_uri)
        target = get_target(target_uri)
        meta = staged.metadata
        location = registry.version_location(meta.name, meta.version)
        try:
            state = "exists" if registry.lookup(meta.name, meta.version) else "new"
        except GovernanceError as exc:
            state = f"unknown ({exc})"
        would_be = RegistryVersion(registry.uri, location, Manifest.for_staged(staged))
        render = getattr(target, "render_manifest", None)
        return {
            "model": {"name": meta.name, "version": meta.version},
            "registry_uri": location,
            "registry_state": state,
            "target": {"kind": target.kind, "detail": target.host_detail},
            "rendered": render(release_for(staged, would_be, registry)) if render else None,
        }
    finally:
        fetched.cleanup()
