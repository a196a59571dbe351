"""DeploySummary: what one deploy did, as one typed value built in one place.

The CLI prints it (``--json`` is ``to_dict()``), the flows turn it into Prefect artifacts, a batch makes one
row per model from it, and a failed run carries it in ``StepFailed.summary``. It is built only from the
deployment record and Atlas's answer, so what an operator reads is what the run recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.deploy.payload import AtlasRecord
    from governance.deploy.record import DeploymentRecord
    from governance.errors import StepFailed

SUCCESS = ("deployed", "unchanged")  # unchanged: the target already served exactly these bytes
_NO_PREDICTION = object()


@dataclass(frozen=True)
class DeploySummary(Mapping):
    """One deploy's outcome. ``complete`` when it was built from a deployment record; a run that failed
    before it had one (bad source, configuration) knows only its source, step and error.

    It reads like the JSON object ``modelgov deploy --json`` prints (``summary["atlas"]``), for scripts and
    tests that hold a flow's return value; code uses the attributes."""

    status: str
    model_name: str | None = None
    model_version: str | None = None
    owner: str | None = None
    staging_source: str | None = None
    staging_commit: str | None = None
    registry_uri: str | None = None
    registry_created: bool | None = None
    artifacts: tuple[dict, ...] = ()
    target_kind: str | None = None
    target_detail: str | None = None
    endpoint: str | None = None
    deployment_id: str | None = None
    failure: str | None = None
    superseded: tuple[str, ...] = ()
    approval: dict | None = None
    prediction: Any = _NO_PREDICTION
    record: str = "none"                      # recorded, pending (in the outbox) or none
    message: str | None = None
    atlas: dict[str, dict] | None = None      # project, build, deployment, deploy_process -> typeName/qn/guid
    settled: tuple[dict, ...] | None = None   # stale records this deploy closed
    existing_deployment: dict | None = None   # a no-op: the record that already covers it
    source: str | None = None                 # the source as given, on a failed run
    step: str | None = None
    error: str | None = None
    complete: bool = field(default=True, compare=False)

    # -- built from a record ---------------------------------------------------------------------------------
    @classmethod
    def of(cls, record: DeploymentRecord, atlas_record: AtlasRecord | None,
           superseded: list[str] | tuple[str, ...] = ()) -> DeploySummary:
        meta, registered = record.staged.metadata, record.registered
        status = {"succeeded": "deployed", "rejected": "rejected"}.get(record.outcome, "failed")
        prediction: Any = _NO_PREDICTION
        if record.result and record.result.smoke:
            response = record.result.smoke.response
            prediction = response.get("outputs") if isinstance(response, dict) else response
        pending = atlas_record is not None and atlas_record.pending
        message = None
        if pending:
            message = (f"{meta.name} {meta.version}: {status}; Atlas was unreachable, so its record is pending in "
                       "the local outbox: `modelgov outbox sync` (every deploy also does it first)")
        atlas = None
        if atlas_record is not None and not pending:
            atlas = {"project": atlas_record.project.to_dict(), "build": atlas_record.build.to_dict(),
                     "deployment": atlas_record.deployment.to_dict(),
                     "deploy_process": atlas_record.deploy_process.to_dict()}
        return cls(status=status, model_name=meta.name, model_version=meta.version, owner=meta.owner,
                   staging_source=record.staged.source, staging_commit=record.staged.commit,
                   registry_uri=registered.location, registry_created=registered.created,
                   artifacts=tuple(f.to_dict() for f in registered.manifest.files),
                   target_kind=record.target.kind, target_detail=record.target.host_detail,
                   endpoint=record.endpoint_url, deployment_id=record.deployment_id, failure=record.failure,
                   superseded=tuple(superseded), approval=record.approval.to_dict() if record.approval else None,
                   prediction=prediction,
                   record="pending" if pending else ("recorded" if atlas_record is not None else "none"),
                   message=message, atlas=atlas)

    @classmethod
    def failed_before_record(cls, source: str, step: str, error: str) -> DeploySummary:
        """A run that failed before it had a deployment record."""
        return cls(status="failed", source=source, step=step, error=error, complete=False)

    @classmethod
    def of_step_failure(cls, source: str, failure: StepFailed) -> DeploySummary:
        """The outcome of a run that raised ``failure``: what it recorded (or only its source), failed at the
        step."""
        known = failure.summary or cls.failed_before_record(source, failure.step, str(failure.cause))
        return known.failed_at(source, failure.step, str(failure.cause))

    def failed_at(self, source: str, step: str, error: str) -> DeploySummary:
        """This summary as the outcome of a run that failed at ``step``: it keeps what the run knew."""
        return replace(self, status="failed", source=source, step=step, error=error)

    # -- read ------------------------------------------------------------------------------------------------
    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS

    @property
    def has_prediction(self) -> bool:
        return self.prediction is not _NO_PREDICTION

    @property
    def target(self) -> str | None:
        return f"{self.target_kind}://{self.target_detail}" if self.complete else None

    def atlas_guid(self, role: str) -> str | None:
        return ((self.atlas or {}).get(role) or {}).get("guid")

    @property
    def shown_source(self) -> str | None:
        return self.source or self.staging_source

    @property
    def reason(self) -> str | None:
        """Why it failed: the step's error, else the recorded failure."""
        return self.error or self.failure

    def to_dict(self) -> dict:
        """The JSON object ``modelgov deploy --json`` prints."""
        if not self.complete:
            out: dict = {"status": self.status, "model": {"name": self.model_name, "version": self.model_version}}
        else:
            out = {"status": self.status,
                   "model": {"name": self.model_name, "version": self.model_version, "owner": self.owner},
                   "staging": {"source": self.staging_source, "commit": self.staging_commit},
                   "registry_uri": self.registry_uri, "registry_created": self.registry_created,
                   "artifacts": [dict(a) for a in self.artifacts],
                   "target": {"kind": self.target_kind, "detail": self.target_detail},
                   "endpoint": self.endpoint, "deployment_id": self.deployment_id, "failure": self.failure,
                   "superseded": list(self.superseded), "record": self.record}
            if self.approval:
                out["approval"] = dict(self.approval)
            if self.has_prediction:
                out["prediction"] = self.prediction
            if self.atlas is not None:
                out["atlas"] = {role: dict(entity) for role, entity in self.atlas.items()}
            if self.settled is not None:
                out["settled"] = [dict(s) for s in self.settled]
            if self.existing_deployment is not None:
                out["existing_deployment"] = dict(self.existing_deployment)
        if self.message is not None:
            out["message"] = self.message
        if self.step is not None:
            out.update(source=self.source, step=self.step, error=self.error)
        return out

    def row(self) -> dict:
        """One flat row: what the batch table, its Markdown artifact and ``--json`` per model show."""
        return {"model": self.model_name, "version": self.model_version, "status": self.status,
                "target": self.target, "endpoint": self.endpoint, "registry_uri": self.registry_uri,
                "atlas_deployment_guid": self.atlas_guid("deployment"), "atlas_build_guid": self.atlas_guid("build"),
                "source": self.shown_source, "error": self.reason, "step": self.step}

    # -- the JSON view (Mapping) -----------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
