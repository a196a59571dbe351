"""The order of a deploy, written once: fetch -> validate -> preflight -> publish -> [approval] -> governed
deploy (under the target's lock: record intent -> deploy -> record outcome -> compare Atlas with what the
target serves).

Publishing first lets the target serve exactly the registered, checksummed bytes. Atlas is checked before
anything is written and told "deploying" before the target is touched, so no deployment goes unrecorded: a
failed deploy leaves an immutable registry version and an Atlas deployment recorded as failed. Every record
goes through the Ledger; the deploy itself is governed by ``governance.deploy.governed``.

An orchestrator wraps the saga through ``SagaHooks`` without the library knowing it: each step can run in a
task (the flows make them Prefect tasks with retries), a person can be asked for approval, and the deploy can
hold a concurrency slot. With the default hooks the saga runs plainly in this process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from governance.deploy.batch_run import BatchRun
from governance.deploy.governed import GovernedDeploy
from governance.deploy.ledger import Ledger
from governance.deploy.record import ApprovalDecision, DeploymentRecord
from governance.deploy.release import release_for
from governance.deploy.request import DeployRequest
from governance.deploy.summary import DeploySummary
from governance.errors import ApprovalRefused, DeployInterrupted, GovernanceError, StepFailed
from governance.registries import Registry, RegistryVersion, get_registry
from governance.registries.base import Manifest
from governance.staging.intake import FetchedSource, fetch_and_validate
from governance.staging.repo import StagedRepo
from governance.staging.requirements import check_requirements
from governance.targets import ServingTarget, get_target
from governance.trust.approvals import ApprovalNotValid, ApprovalSubject, verify_approval
from governance.trust.signing import APPROVER_KEYS_ENV, SigningIdentity, SigningSettings, TrustPolicy

_log = logging.getLogger(__name__)
Validated = tuple[StagedRepo, FetchedSource]  # a validated source and its fetched copy (to clean up)

def _direct(step: str, fn: Callable[..., Any], *args: Any) -> Any:  # noqa: ARG001 - the default: no wrapper
    return fn(*args)


@dataclass(frozen=True)
class SagaHooks:
    """How an orchestrator wraps the saga. ``step(name, fn, *args)`` runs one step (validate, publish,
    deploy); ``approve(what)`` asks a person and returns the decision (None: no approval gate is reachable,
    so a deploy that needs approval is refused); ``slot(target)`` is held around the governed deploy;
    ``run_id`` names the deployment; ``log``/``on_wait`` report progress and lock waits."""

    step: Callable[..., Any] = _direct
    approve: Callable[[str, dict], ApprovalDecision] | None = None
    slot: Callable[[ServingTarget], AbstractContextManager[None]] = field(
        default=lambda target: contextlib.nullcontext())
    run_id: str | None = None
    log: Callable[[str], None] = _log.info
    on_wait: Callable[[str], None] = _log.warning


@dataclass
class Resources:
    """The registry, target and ledger of one deploy, opened at preflight."""

    registry: Registry
    target: ServingTarget
    ledger: Ledger


def run_step(step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one step; any failure becomes StepFailed naming the step."""
    try:
        return fn(*args, **kwargs)
    except StepFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - unexpected errors are still attributed to their step
        raise StepFailed(step, exc) from exc


def preflight(request: DeployRequest, run: BatchRun | None = None) -> Resources:
    """Resolve registry and target URIs and make sure Atlas answers and has our types, before writing anything
    (once per batch ``run``: its first model checks for all)."""
    registry = get_registry(request.registry_uri)
    target = get_target(request.target_uri)
    ledger = run.open_ledger() if run is not None else Ledger.open(request.atlas_url, request.namespace)
    return Resources(registry, target, ledger)


def start_record(staged: StagedRepo, registered: RegistryVersion, target: ServingTarget,
                 request: DeployRequest, run_id: str | None) -> DeploymentRecord:
    """The record of this deploy attempt, before approval and the target are touched."""
    return DeploymentRecord.start(staged, registered, target, run_id=run_id, environment=request.environment,
                                  signing=request.signing)


def publish(registry: Registry, staged: StagedRepo, progress: bool,
            signing: SigningSettings | None = None) -> RegistryVersion:
    """The publish step: the staged bytes into the immutable registry (a no-op for identical bytes), signed
    when ``MODELGOV_SIGNING_KEY`` or modelgov.yaml's ``signing:`` names a key (``governance.trust.signing``)."""
    return registry.publish(staged, progress=progress, signing=SigningIdentity.load(signing))


def run_deploy(request: DeployRequest, hooks: SagaHooks | None = None, *,
               approval: ApprovalDecision | None = None, run: BatchRun | None = None,
               validated: Validated | None = None) -> DeploySummary:
    """Govern one deployment of ``request.source``; returns its summary or raises StepFailed naming the step
    (with the summary of what was recorded). ``approval``: a decision already taken (a batch asks once);
    ``run``: the batch this model belongs to (``governance.deploy.batch_run``); ``validated``: the source as
    ``validate_source`` left it (a batch validates first), cleaned up here either way."""
    hooks = hooks or SagaHooks()
    staged, fetched = validated or validate_source(request, hooks)
    try:
        res = run_step("preflight", preflight, request, run)
        try:
            return _registered_and_deployed(request, hooks, approval, staged, res, run)
        finally:
            res.ledger.close()
    finally:
        fetched.cleanup()


def validate_source(request: DeployRequest, hooks: SagaHooks | None = None) -> Validated:
    """The validate step: fetch and validate ``request.source`` and check what the target and environment
    require of its metadata, before anything is written; StepFailed("validate") otherwise. The caller cleans
    up the fetched copy (``run_deploy`` does)."""
    hooks = hooks or SagaHooks()
    try:
        staged, fetched = hooks.step("validate", fetch_and_validate, request.source, None, request.limits)
    except Exception as exc:
        raise StepFailed("validate", exc) from exc
    try:
        run_step("validate", check_requirements, staged, request.requirements)
    except BaseException:
        fetched.cleanup()
        raise
    meta = staged.metadata
    hooks.log(f"validated {meta.name} {meta.version} from {request.source}")
    return staged, fetched


def _registered_and_deployed(request: DeployRequest, hooks: SagaHooks, approval: ApprovalDecision | None,
                             staged: StagedRepo, res: Resources, run: BatchRun | None = None) -> DeploySummary:
    meta = staged.metadata
    # the record is the reference: a version Atlas holds with other content is refused before anything is written
    # (a batch read its models' records ahead, in bulk: checked against that, then again under the target's lock)
    recorded = run_step("preflight", res.ledger.check_version, Manifest.for_staged(staged),
                        res.registry.version_location(meta.name, meta.version),
                        run.read_ahead_of(meta.name) if run is not None else None)
    registered = run_step("publish", hooks.step, "publish", publish, res.registry, staged, request.progress,
                          request.signing)
    hooks.log(f"registered {registered.location} ({'new' if registered.created else 'already present'})")
    record = start_record(staged, registered, res.target, request, hooks.run_id).referring_to(recorded)
    if request.approval_required:
        what = f"{meta.name} {meta.version} on {res.target.host_detail} (registry {registered.location})"
        subject = ApprovalSubject(meta.name, meta.version, registered.manifest.content_digest, res.target.host_detail,
                                  request.environment, hooks.run_id or record.deployment_id)
        decision = approval or (hooks.approve(what, subject.to_dict()) if hooks.approve else ApprovalDecision(
            "rejected", None, datetime.now(UTC), "no approval gate is reachable from this run"))
        decision = checked_approval(decision, subject, TrustPolicy.load(request.trust), deployer=record.deployed_by,
                                    version_signer=(registered.manifest.signer or {}).get("fingerprint"),
                                    for_batch=approval is not None)
        try:
            if decision.statement and decision.proof != "signed approval, refused":
                kept = run_step("approval", res.registry.keep_approval, registered, decision.statement)
                hooks.log(f"kept the signed approval at {kept}")
        except StepFailed as exc:
            failed = record.approved(decision).failed(f"the signed approval could not be kept beside the version "
                                                      f"in the registry: {exc.cause}")
            atlas_record = run_step("record", res.ledger.record_outcome, failed)
            raise StepFailed("approval", exc.cause, DeploySummary.of(failed, atlas_record)) from exc
        if not decision.approved:
            refused = record.rejected(decision)
            atlas_record = run_step("record", res.ledger.record_outcome, refused)
            raise StepFailed("approval", ApprovalRefused(refused.failure), DeploySummary.of(refused, atlas_record))
        record = record.approved(decision)
    release = release_for(staged, registered, res.registry)
    governed_deploy = GovernedDeploy(res.target, res.ledger, on_wait=hooks.on_wait, trust=request.trust, run=run)
    try:
        with hooks.slot(res.target):
            governed = hooks.step("deploy", governed_deploy.run, release, record)
    except DeployInterrupted as exc:
        raise StepFailed("deploy", exc, DeploySummary.of(record.failed("interrupted"), None)) from exc
    except StepFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. the orchestrator's slot could not be taken
        raise StepFailed("deploy", exc) from exc
    out = governed.summary()
    if governed.noop:
        hooks.log(out.message or "")
    else:
        hooks.log(f"deployed {meta.name} v{meta.version} at {out.endpoint}; Atlas deployment "
                  f"{out.atlas_guid('deployment') or '(pending)'}")
    return out


def checked_approval(decision: ApprovalDecision, subject: ApprovalSubject, policy: TrustPolicy, *,
                     deployer: str | None, version_signer: str | None, for_batch: bool = False) -> ApprovalDecision:
    """The decision as the trust policy takes it (``governance.trust.approvals``). Where the policy names approvers,
    only an approval they signed for these bytes, this target, environment and run counts, and the approver
    is their verified key; anything else is a rejection saying why. Elsewhere a typed name still counts,
    recorded as unverified."""
    if decision.decision == "timed_out":
        return decision
    if not decision.statement:
        if not policy.approvers:
            return replace(decision, proof="typed name, unverified")
        why = ("a batch asks for one approval before its versions exist, so it cannot be signed for their bytes: "
               "deploy these models one by one" if for_batch else
               f"the approval by {decision.approver or '(nobody)'} is not signed, and this target's policy requires "
               f"one signed by an approver ({APPROVER_KEYS_ENV}, trust.approvers): modelgov approve RUN_ID --key PATH")
        return replace(decision, decision="rejected", reason=why, proof="typed name, refused")
    if not policy.approvers:
        return replace(decision, proof="signed, not verified: the policy names no approvers")
    try:
        verified = verify_approval(decision.statement, subject, policy.approvers, deployer=deployer,
                                   version_signer=version_signer)
    except ApprovalNotValid as exc:
        return replace(decision, decision="rejected", reason=f"signed approval refused: {exc}",
                       proof="signed approval, refused")
    return replace(decision, decision="approved" if verified.approved else "rejected",
                   approver=f"{verified.approver.kind} {verified.approver.fingerprint}", reason=verified.reason,
                   proof="signed approval, verified")


def plan(request: DeployRequest) -> dict:
    """What a deploy would do, without writing anything: the validated model, where it would be registered,
    and the target's rendered manifest when it has one (KServe)."""
    staged, fetched = fetch_and_validate(request.source, None, request.limits)
    try:
        check_requirements(staged, request.requirements)
        registry = get_registry(request.registry_uri)
        target = get_target(request.target_uri)
        meta = staged.metadata
        location = registry.version_location(meta.name, meta.version)
        try:
            state = "exists" if registry.lookup(meta.name, meta.version) else "new"
        except GovernanceError as exc:
            state = f"unknown ({exc})"
        would_be = RegistryVersion(registry.uri, location, Manifest.for_staged(staged))
        return {
            "model": {"name": meta.name, "version": meta.version},
            "registry_uri": location,
            "registry_state": state,
            "target": {"kind": target.kind, "detail": target.host_detail},
            "rendered": target.render_manifest(release_for(staged, would_be, registry)),
        }
    finally:
        fetched.cleanup()
