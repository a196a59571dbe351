"""One governed deploy to one target, keeping Atlas's ``deployed`` equal to what the target serves.

Under the target's deploy lock (one deploy per target at a time):
1. ask the target what it serves, and settle records left ``deploying`` by runs that died;
2. if the target already serves exactly these bytes, say so and stop: no new deployment entity;
3. record the intent (``deploying``), deploy (the target keeps the old version serving until the new one is
   ready and smoke-tested, and puts itself back on failure), record the outcome;
4. compare Atlas with the target's new answer: records whose version left service become ``stopped``.
SIGTERM/SIGINT inside this raise DeployInterrupted, which compensates like a failure and is recorded
``failed`` with reason "interrupted" before it propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from governance.deploy.batch_run import BatchRun
from governance.deploy.interrupts import interrupts_raise
from governance.deploy.ledger import Ledger, Settlement
from governance.deploy.payload import AtlasRecord
from governance.deploy.record import DeploymentRecord
from governance.deploy.reference import ModelEntities
from governance.deploy.summary import DeploySummary
from governance.errors import (
    AtlasError,
    CompensationError,
    DeployInterrupted,
    GovernanceError,
    RecordMismatch,
    StepFailed,
)
from governance.targets.base import Release, ServedModel, ServingTarget
from governance.targets.lock import target_lock
from governance.trust.signing import SignatureError, TrustPolicy, TrustSettings

log = logging.getLogger(__name__)
ABANDONED = "abandoned"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class Governed:
    """What a governed deploy did. ``noop`` when the target already served exactly these bytes."""

    record: DeploymentRecord
    atlas: AtlasRecord | None
    superseded: list[str] = field(default_factory=list)
    settled: list[Settlement] = field(default_factory=list)
    noop: bool = False
    existing: dict | None = None   # the deployed record that already covers a no-op

    def summary(self) -> DeploySummary:
        """What this deploy did; a no-op says so and names the record that already covers it."""
        out = replace(DeploySummary.of(self.record, self.atlas, self.superseded),
                      settled=tuple({"qualifiedName": s.qualified_name, "status": s.status, "reason": s.reason}
                                    for s in self.settled))
        if not self.noop:
            return out
        existing = self.existing or {}
        return replace(out, status="unchanged", endpoint=existing.get("modelEndpointURL"),
                       message=f"{self.record.target.host_detail} already serves these exact bytes "
                               f"(same sha256): nothing was deployed or recorded",
                       existing_deployment={"guid": existing.get("guid"),
                                            "qualifiedName": existing.get("qualifiedName")})


def serves_exactly(served: list[ServedModel], release: Release, traffic_percent: int | None = None
                   ) -> ServedModel | None:
    """The served copy of this release when the target reports the same version with the same sha256 (and,
    where the target splits traffic, the share asked for: a canary is not a full deploy)."""
    meta = release.metadata
    expected = release.executable_entry.sha256
    wanted = traffic_percent or 100
    for model in served:
        if model.name == meta.name and model.version == meta.version and model.sha256 and model.sha256 == expected \
                and model.traffic_percent in (None, wanted):
            return model
    return None


def plan_reconcile(records: list[dict], served: list[ServedModel], *, keep: str | None = None
                   ) -> tuple[list[str], list[tuple[str, bool]]]:
    """Compare recorded deployments (newest first) with what is served.

    Returns (qualifiedNames to retire, [(qualifiedName, serving)] of stale ``deploying`` records to settle).
    A ``deployed`` record whose version no longer serves is retired; of several ``deployed`` records for one
    served version only the newest (or ``keep``) stays. A stale ``deploying`` record becomes ``deployed`` when
    its version serves and no other record already says so, else it failed ("abandoned").
    """
    serving = {(m.name, m.version) for m in served}
    covered: dict[tuple[str, str], str] = {}
    ordered = sorted(records, key=lambda r: r["qualifiedName"] != keep)  # keep first, then newest first
    retire: list[str] = []
    for row in ordered:
        if row["status"] != "deployed":
            continue
        key = (row["modelName"], row["modelVersion"])
        if key not in serving or key in covered:
            retire.append(row["qualifiedName"])
        else:
            covered[key] = row["qualifiedName"]
    settle: list[tuple[str, bool]] = []
    for row in ordered:
        if row["status"] != "deploying" or row["qualifiedName"] == keep:
            continue
        key = (row["modelName"], row["modelVersion"])
        live = key in serving and key not in covered
        if live:
            covered[key] = row["qualifiedName"]
        settle.append((row["qualifiedName"], live))
    return retire, settle


class GovernedDeploy:
    """Runs steps 1-4 above for one record; the saga's task hook wraps ``run``, the library needs no Prefect."""

    def __init__(self, target: ServingTarget, ledger: Ledger, *, on_wait: Callable[[str], None] | None = None,
                 lock_timeout_s: float | None = None, trust: TrustSettings | None = None,
                 run: BatchRun | None = None):
        self.batch = run  # the batch this deploy belongs to: other models' stale records are settled once per run
        self.target = target
        self.ledger = ledger
        self.trust = trust  # modelgov.yaml's trust policy for this target; the environment's joins it
        self.on_wait = on_wait or log.warning
        self.lock_timeout_s = lock_timeout_s

    def run(self, release: Release, record: DeploymentRecord) -> Governed:
        """Raises StepFailed naming the step (preflight, record, deploy) with the DeploySummary of what was
        recorded, or DeployInterrupted after compensating for SIGTERM/SIGINT."""
        what = f"deploy of {release.metadata.name} {release.metadata.version} by {record.deployed_by} " \
               f"(run {record.run_id or record.deployment_id})"
        with target_lock(self.target.lock_path(), what, timeout_s=self.lock_timeout_s, on_wait=self.on_wait), \
                interrupts_raise():
            return self._locked(release, record)

    # -- steps -----------------------------------------------------------------------------------------------
    def _records(self, model: str, known: ModelEntities | None = None) -> list[dict]:
        """The model's ``deployed``/``deploying`` records on this target (every model's on a single-model
        target), newest first; ``known``: the model's entities as read under this lock a moment ago."""
        detail = self.target.host_detail
        rows = {r["qualifiedName"]: r for r in self.ledger.records_on(detail, model, model=known)}
        if self.target.single_model:
            rows.update({r["qualifiedName"]: r for r in self.ledger.records_on(detail)})
        return sorted(rows.values(), key=lambda r: (r["createTimeMs"] or 0, r["qualifiedName"]), reverse=True)

    def _served(self, model: str) -> list[ServedModel]:
        return self.target.served(None if self.target.single_model else model)

    def _reconcile(self, model: str, *, keep: str | None, when: datetime, rows: list[dict] | None = None
                   ) -> tuple[list[str], list[Settlement]]:
        rows = self._records(model) if rows is None else rows
        retire, settle = plan_reconcile(rows, self._served(model), keep=keep)
        settled = [self.ledger.settle(name, serving=live, reason=ABANDONED, when=when) for name, live in settle]
        retired = self.ledger.retire(retire, when)
        for item in settled:
            log.warning("settled %s left 'deploying' by a run that died: %s%s", item.qualified_name, item.status,
                        f" ({item.reason})" if item.reason else "")
        return retired, settled

    def _settle_other_models(self, model: str) -> list[Settlement]:
        """Stale ``deploying`` records of other models on this target (found by search: they are old)."""
        if self.target.single_model:
            return []
        detail = self.target.host_detail
        if self.batch is not None and not self.batch.settles_others_on(detail):
            return []  # the run's first deploy to this target did it, under this lock
        stale = [r for r in self.ledger.deploying_on(detail) if r["modelName"] != model]
        if not stale:
            if self.batch is not None:
                self.batch.others_settled_on(detail)
            return []
        serving = {(m.name, m.version) for m in self.target.served()}
        covered = {(r["modelName"], r["modelVersion"]) for r in self.ledger.deployed_on(self.target.host_detail)}
        now = datetime.now(UTC)
        settled = [self.ledger.settle(r["qualifiedName"], reason=ABANDONED, when=now,
                                      serving=(r["modelName"], r["modelVersion"]) in serving - covered)
                   for r in stale]
        if self.batch is not None:
            self.batch.others_settled_on(detail)
        return settled

    def _locked(self, release: Release, record: DeploymentRecord) -> Governed:
        model = release.metadata.name
        registered = release.registered
        try:
            # one consistent read of the model under the lock answers both the reference check and which of
            # its deployments are recorded on this target
            known = self.ledger.read_model(model)
            record = record.referring_to(self.ledger.check_version(registered.manifest, registered.location, known))
        except RecordMismatch as exc:
            self._refuse(record.referring_to(exc.recorded), exc)
        except GovernanceError as exc:
            raise StepFailed("preflight", exc) from exc
        try:  # who produced these bytes: the trust policy, before the target is touched (issue 21)
            record = record.signature_checked(self._signature_check(release))
        except SignatureError as exc:
            self._refuse(record, exc)
        except GovernanceError as exc:
            raise StepFailed("preflight", exc) from exc
        try:
            removed = self.target.recover(model)
            if removed:
                log.warning("removed what a killed deploy left on %s: %s", self.target.host_detail, removed)
            before = self._records(model, known)
            retired, settled = self._reconcile(model, keep=None, when=datetime.now(UTC), rows=before)
            settled += self._settle_other_models(model)
            current = serves_exactly(self._served(model), release, self.target.canary_percent)
        except GovernanceError as exc:
            raise StepFailed("preflight", exc) from exc
        if current is not None:
            existing = next((r for r in self.ledger.deployed_on(self.target.host_detail, model)
                             if r["modelVersion"] == release.metadata.version), None)
            if existing is not None:
                log.info("%s %s already serves on %s with the same sha256: nothing to do", model,
                         release.metadata.version, self.target.host_detail)
                return Governed(record, None, retired, settled, noop=True, existing=existing)
        try:
            intent = self.ledger.record_intent(record)
        except GovernanceError as exc:
            raise StepFailed("record", exc) from exc
        if record.recorded_build is None:  # this run wrote the build: make sure no other run wrote it at once
            try:
                record = record.referring_to(self.ledger.confirm_written(registered.manifest, registered.location,
                                                                         intent))
            except RecordMismatch as exc:
                self._refuse(record.referring_to(exc.recorded), exc)
            except GovernanceError as exc:
                raise StepFailed("record", exc) from exc
        try:
            result = self.target.deploy(release)
        except (Exception, DeployInterrupted) as exc:  # noqa: BLE001 - every failure is recorded, then raised
            self._record_failure(record, exc)
            raise  # unreachable: _record_failure raises
        final = record.succeeded(result)
        try:
            recorded = self.ledger.record_outcome(final)
        except GovernanceError as exc:
            raise StepFailed("record", AtlasError(
                f"{model} v{release.metadata.version} is serving at {result.endpoint_url}, but Atlas could not be "
                f"updated and still records deployment {record.deployment_id} as 'deploying' ({exc}); the next "
                f"deploy to this target settles it from what the target serves"), DeploySummary.of(final, None)) from exc
        if recorded.pending:  # Atlas is down: the outcome waits in the outbox; the next deploy reconciles
            log.warning("%s v%s serves at %s; its Atlas record is pending in the outbox", model,
                        release.metadata.version, result.endpoint_url)
            return Governed(final, recorded, retired, settled)
        if not before and not self.target.single_model:
            # nothing was recorded deployed or deploying for this model here under this lock (a consistent
            # read), and nothing else writes such a record while it is held (deploys and reconcile take it; an
            # outbox replay writes deployed/deploying only for a deployment whose intent Atlas already held):
            # this deploy's record is the only one, nothing to supersede. A single-model target's other models come from a search, which a real
            # Atlas answers from its index a moment late: those are read again below.
            return Governed(final, recorded, retired, settled)
        try:
            superseded, more = self._reconcile(model, keep=recorded.deployment.qualified_name,
                                               when=final.finished_at or datetime.now(UTC))
        except GovernanceError as exc:
            raise StepFailed("record", AtlasError(
                f"{model} v{release.metadata.version} is deployed and recorded, but earlier deployments could "
                f"not be compared with what {self.target.host_detail} serves ({exc}); the next deploy does it"),
                DeploySummary.of(final, recorded)) from exc
        return Governed(final, recorded, retired + superseded, settled + more)

    def _signature_check(self, release: Release) -> str:
        """What the trust policy proves of the version's signature (recorded on the deployment); SignatureError
        when it refuses the version."""
        signer, checked = release.registry.signature_of(release.registered, TrustPolicy.load(self.trust))
        if not checked:
            return f"not checked (no trust policy); signed by {signer.describe()}" if signer else \
                "not checked (no trust policy)"
        return f"verified: signed by trusted {signer.describe()}" if signer else "unsigned, allowed by the policy"

    def _refuse(self, record: DeploymentRecord, exc: GovernanceError):
        """The version differs from Atlas's record, or its signature fails the trust policy: the target is not
        touched, the attempt is recorded failed (referring to the recorded build, never rewriting it), then
        StepFailed("preflight") is raised."""
        failed = record.failed(f"{exc.__class__.__name__}: {exc}")
        try:
            recorded = self.ledger.record_outcome(failed)
        except GovernanceError as atlas_exc:
            raise StepFailed("preflight", GovernanceError(
                f"{exc}; and Atlas could not record the refused attempt ({atlas_exc})"),
                DeploySummary.of(failed, None)) from exc
        raise StepFailed("preflight", exc, DeploySummary.of(failed, recorded)) from exc

    def _record_failure(self, record: DeploymentRecord, exc: BaseException):
        """Record the failed attempt (the target already put itself back), then raise for the caller."""
        cause = exc.cause if isinstance(exc, CompensationError) and exc.cause is not None else exc
        if isinstance(cause, DeployInterrupted):
            reason = INTERRUPTED if cause is exc else f"{INTERRUPTED}; {exc}"
        else:
            reason = f"{exc.__class__.__name__}: {exc}"
        failed = record.failed(reason)
        try:
            recorded = self.ledger.record_outcome(failed)
            if not recorded.pending:
                self._reconcile(record.staged.metadata.name, keep=None, when=datetime.now(UTC))
        except GovernanceError as atlas_exc:
            raise StepFailed("deploy", GovernanceError(
                f"{exc}; and Atlas could not record the failed attempt ({atlas_exc}): it still says 'deploying' "
                f"until the next deploy to this target settles it"), DeploySummary.of(failed, None)) from exc
        if isinstance(cause, DeployInterrupted):
            raise cause
        raise StepFailed("deploy", exc, DeploySummary.of(failed, recorded)) from exc
