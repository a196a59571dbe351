"""DeploymentRecord: the aggregated model and deployment metadata (pipeline step 4), built in one place.

Every Atlas entity is derived from this value, so what Atlas says is exactly what the run knew.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from governance.deploy.reference import RecordedBuild
from governance.registries.base import RegistryVersion
from governance.staging.repo import StagedRepo
from governance.targets.base import DeploymentResult, ServingTarget
from governance.trust.signing import SigningSettings


@dataclass(frozen=True)
class TargetInfo:
    """What we know about the target before deploying (so a failed attempt can still be recorded)."""

    kind: str
    uri: str
    host_detail: str


@dataclass(frozen=True)
class ApprovalDecision:
    """The answer at a production deploy's approval gate: who, when, which way, why.

    ``approver`` is the name the approver typed (open-source Prefect records no identity on resume), or, for a
    signed approval (``governance.trust.approvals``) once verified, the approver's key; ``proof`` says which.
    """

    decision: str             # approved, rejected, timed_out
    approver: str | None
    time: datetime
    reason: str = ""
    statement: str | None = None  # the signed approval (DSSE envelope) as received, before verification
    proof: str | None = None      # "signed approval, verified" or "typed name, unverified"

    @property
    def approved(self) -> bool:
        return self.decision == "approved"

    def to_dict(self) -> dict:
        return {"decision": self.decision, "approver": self.approver, "time": self.time.isoformat(),
                "reason": self.reason, "proof": self.proof}


@dataclass(frozen=True)
class DeploymentRecord:
    deployment_id: str
    staged: StagedRepo
    registered: RegistryVersion
    target: TargetInfo
    started_at: datetime
    deployed_by: str
    run_id: str | None = None
    environment: str | None = None         # "production" / "staging" -> classification on the deployment
    status: str = "deploying"              # Atlas ml_model_deployment_status: deploying, deployed, stopped
    outcome: str = "pending"               # pending, succeeded, failed
    result: DeploymentResult | None = None
    failure: str | None = None
    finished_at: datetime | None = None
    approval: ApprovalDecision | None = None
    reason: str | None = None              # why this deployment was made: "reconcile", "rollback: <text>"
    signature_check: str | None = None     # what the trust policy proved before the target: governance.trust.signing
    deployed_by_proof: str | None = None   # how ``deployed_by`` is known: "signing key", or unproven (proven_deployer)
    # the build Atlas already holds for this name and version (checked equal to ``registered``): the record then
    # refers to it and never writes it again. None: this deploy is the version's first record.
    recorded_build: RecordedBuild | None = None

    @classmethod
    def start(cls, staged: StagedRepo, registered: RegistryVersion, target: ServingTarget, *,
              run_id: str | None = None, environment: str | None = None, reason: str | None = None,
              signing: SigningSettings | None = None) -> DeploymentRecord:
        """A new attempt, ``deploying``, by the current user; the one place a record is begun (deploy,
        rollback and reconcile alike). Its id is the orchestrator's run id when there is one."""
        deployer = proven_deployer(signing)
        return cls(deployment_id=run_id or uuid.uuid4().hex, staged=staged, registered=registered,
                   target=TargetInfo(kind=target.kind, uri=target.uri, host_detail=target.host_detail),
                   started_at=datetime.now(UTC), deployed_by=deployer[0], deployed_by_proof=deployer[1],
                   run_id=run_id, environment=environment, reason=reason)

    @property
    def endpoint_url(self) -> str | None:
        return self.result.endpoint_url if self.result else None

    def succeeded(self, result: DeploymentResult) -> DeploymentRecord:
        return replace(self, status="deployed", outcome="succeeded", result=result, finished_at=datetime.now(UTC))

    def failed(self, reason: str) -> DeploymentRecord:
        return replace(self, status="stopped", outcome="failed", failure=reason, finished_at=datetime.now(UTC))

    def referring_to(self, build: RecordedBuild | None) -> DeploymentRecord:
        """This record, writing the build only if Atlas does not hold it yet."""
        return replace(self, recorded_build=build)

    def signature_checked(self, outcome: str) -> DeploymentRecord:
        return replace(self, signature_check=outcome)

    def approved(self, approval: ApprovalDecision) -> DeploymentRecord:
        return replace(self, approval=approval)

    def rejected(self, approval: ApprovalDecision) -> DeploymentRecord:
        """Nothing was deployed: recorded so the audit trail shows the attempt and who stopped it."""
        why = {"rejected": f"rejected by {approval.approver}", "timed_out": "not approved in time"}[approval.decision]
        reason = f"{why}: {approval.reason}" if approval.reason else why
        return replace(self, status="stopped", outcome="rejected", failure=reason, approval=approval,
                       finished_at=datetime.now(UTC))

    def example_json(self) -> tuple[str | None, str | None]:
        req, resp = self.staged.example_request, self.staged.example_response
        if self.result and self.result.smoke and resp is None:
            resp = self.result.smoke.response
        return (json.dumps(req, sort_keys=True) if req is not None else None,
                json.dumps(resp, sort_keys=True) if resp is not None else None)


def proven_deployer(signing: SigningSettings | None = None) -> tuple[str, str]:
    """(who deploys, how that is known). The run's signing identity when it has one (``MODELGOV_SIGNING_KEY`` or
    modelgov.yaml's ``signing:``: ``key sha256:...``, proven by the key it holds); else the name in
    MODELGOV_DEPLOYED_BY or the OS login, marked unproven, because anyone can type a name or run under a shared
    account."""
    from governance.trust.signing import SigningIdentity

    identity = SigningIdentity.load(signing)
    if identity is not None:
        signer = identity.signer
        return f"{signer.kind} {signer.fingerprint}", "signing key"
    if os.environ.get("MODELGOV_DEPLOYED_BY"):
        return os.environ["MODELGOV_DEPLOYED_BY"], "as given in MODELGOV_DEPLOYED_BY (unproven)"
    return current_user(), "OS login (unproven)"


def current_user() -> str:
    """Who runs the deployment: MODELGOV_DEPLOYED_BY, else the OS user."""
    try:
        return os.environ.get("MODELGOV_DEPLOYED_BY") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
