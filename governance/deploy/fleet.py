"""Fleet operations from the registry alone: reconcile, rollback, undeploy (no Prefect, no staging repo).

Reconcile compares, per target, what Atlas records as ``deployed`` with what the target itself serves
(``ServingTarget.served()``):
- drift (the model is missing, another version serves, or the served executable has other bytes) is fixed by
  deploying the recorded version again from the registry, recorded as a new deployment with reason
  "reconcile" that supersedes the drifted record;
- a served model no deployment accounts for is *ungoverned*: reported, and recorded once in Atlas as a
  ``modelgov_ungoverned_model`` so compliance sees it;
- a deployment left ``deploying`` by a run that died is settled from the target's answer.
A second run right after finds nothing to change. Deploys go through ``GovernedDeploy`` (the target's
lock, the ledger, compensation), exactly like ``modelgov deploy``, and every record, the ungoverned-model
finding and undeploy's ``stopped`` included, goes through the ledger (and its outbox while Atlas is down).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from governance.atlas.constants import DEFAULT_NAMESPACE, UNGOVERNED_TYPE, millis
from governance.config import load_config
from governance.deploy.governed import Governed, GovernedDeploy, plan_reconcile
from governance.deploy.ledger import Ledger
from governance.deploy.record import DeploymentRecord
from governance.deploy.release import release_from_registry, staged_view
from governance.errors import ConfigError, GovernanceError, TargetError
from governance.registries import Registry, get_registry
from governance.targets import ServingTarget, get_target
from governance.targets.base import Release, ServedModel
from governance.targets.lock import target_lock
from governance.trust.signing import SigningSettings, TrustSettings

RECONCILE = "reconcile"


@dataclass
class Finding:
    """One thing reconcile found on a target, and what it did about it."""

    kind: str          # missing, other-version, other-bytes, ungoverned, stale-deploying
    target: str
    model: str
    version: str | None
    detail: str
    action: str = "none"   # redeployed, recorded, settled, already-recorded, would-*, failed
    atlas: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(f.action in ("redeployed", "recorded", "settled") for f in self.findings)

    @property
    def failed(self) -> bool:
        return any(f.action == "failed" for f in self.findings)


def registry_of(row: dict, fallback: str | None) -> Registry:
    """The registry a recorded deployment was installed from: its ``serializedObjectUri`` is
    ``<registry>/<name>/<version>/<executable>``, executables live under ``executable/``."""
    uri = row.get("serializedObjectUri") or ""
    marker = f"/{row['modelName']}/{row['modelVersion']}/"
    if marker in uri:
        return get_registry(uri.split(marker, 1)[0])
    if fallback:
        return get_registry(fallback)
    raise ConfigError(f"{row['qualifiedName']}: cannot tell which registry it came from; pass --registry")


def redeploy(target: ServingTarget, ledger: Ledger, release: Release, reason: str, *,
             environment: str | None = None, run_id: str | None = None,
             on_wait: Callable[[str], None] | None = None, trust: TrustSettings | None = None,
             signing: SigningSettings | None = None) -> Governed:
    """Deploy a registered version again (rollback, reconcile) as a new governed deployment with ``reason``."""
    record = DeploymentRecord.start(staged_view(release), release.registered, target, run_id=run_id,
                                    environment=environment, reason=reason, signing=signing)
    return GovernedDeploy(target, ledger, on_wait=on_wait, trust=trust).run(release, record)


def _drift(row: dict, served: list[ServedModel], release: Release) -> tuple[str, str] | None:
    """(kind, detail) when the target does not serve exactly the recorded version, else None."""
    mine = [m for m in served if m.name == row["modelName"]]
    if not mine:
        return "missing", f"{row['modelName']} is not served at all"
    same = [m for m in mine if m.version == row["modelVersion"]]
    if not same:
        return "other-version", (f"serves {', '.join(m.version for m in mine)} instead of the recorded "
                                 f"{row['modelVersion']}")
    expected = release.executable_entry.sha256
    if all(m.sha256 != expected for m in same):
        return "other-bytes", f"served executable sha256 {same[0].sha256}, registry says {expected}"
    return None


def _latest_deployed(rows: list[dict]) -> list[dict]:
    """The newest ``deployed`` record per model (rows come newest first)."""
    seen: dict[str, dict] = {}
    for row in rows:
        if row["status"] == "deployed":
            seen.setdefault(row["modelName"], row)
    return list(seen.values())


def _record_ungoverned(ledger: Ledger, target: ServingTarget, model: ServedModel) -> tuple[str, bool]:
    """Record the finding once, through the ledger: (qualifiedName, created). An existing record is left
    untouched."""
    qn = f"ungoverned/{target.kind}://{target.host_detail}/{model.name}/{model.target_version}@{ledger.namespace}"
    attrs = {"qualifiedName": qn, "name": f"{model.name} {model.version} (ungoverned) @ {target.host_detail}",
             "modelName": model.name, "modelVersion": model.version, "targetKind": target.kind,
             "targetDetail": target.host_detail, "executableSha256": model.sha256,
             "foundTime": millis(datetime.now(UTC)), "description": "served, but no governed deployment records it"}
    return qn, ledger.record_entity(UNGOVERNED_TYPE, attrs)


def reconcile_target(target: ServingTarget, ledger: Ledger, *, registry_fallback: str | None = None,
                     dry_run: bool = False, environment: str | None = None, run_id: str | None = None,
                     report: ReconcileReport | None = None, trust: TrustSettings | None = None,
                     signing: SigningSettings | None = None) -> ReconcileReport:
    """Reconcile one target (see the module docstring); returns the findings."""
    report = report or ReconcileReport()
    where = f"{target.kind}://{target.host_detail}"
    report.checked.append(where)

    # 1. records left 'deploying' by runs that died (under the lock: a live deploy holds it)
    with target_lock(target.lock_path(), f"reconcile of {where}"):
        rows = ledger.records_on(target.host_detail)
        served = target.served()
        _, settle = plan_reconcile(rows, served)
        for name, live in settle:
            row = next(r for r in rows if r["qualifiedName"] == name)
            finding = Finding("stale-deploying", where, row["modelName"], row["modelVersion"],
                              f"left 'deploying' by run {row.get('orchestratorRunId')}", atlas=name)
            if dry_run:
                finding.action = "would-settle"
            else:
                done = ledger.settle(name, serving=live, reason="abandoned (settled by reconcile)")
                finding.action, finding.detail = "settled", f"{finding.detail}; now {done.status}"
            report.findings.append(finding)

    # 2. drift of what Atlas says is deployed: deploy the recorded version again, from the registry
    rows = ledger.records_on(target.host_detail)
    served = target.served()
    for row in _latest_deployed(rows):
        try:
            release = release_from_registry(registry_of(row, registry_fallback), row["modelName"],
                                            row["modelVersion"])
        except GovernanceError as exc:
            report.findings.append(Finding("unrecoverable", where, row["modelName"], row["modelVersion"],
                                           str(exc), "failed", row["qualifiedName"]))
            continue
        drift = _drift(row, served, release)
        if drift is None:
            continue
        finding = Finding(drift[0], where, row["modelName"], row["modelVersion"], drift[1],
                          atlas=row["qualifiedName"])
        report.findings.append(finding)
        if dry_run:
            finding.action = "would-redeploy"
            continue
        try:
            governed = redeploy(target, ledger, release, RECONCILE, environment=environment, run_id=run_id,
                                trust=trust, signing=signing)
        except GovernanceError as exc:
            finding.action, finding.detail = "failed", f"{finding.detail}; redeploy failed: {exc}"
            continue
        finding.action = "redeployed"
        if governed.atlas:
            finding.atlas = governed.atlas.deployment.qualified_name

    # 3. served models no deployed record accounts for
    rows = ledger.records_on(target.host_detail, statuses=("deployed",))
    recorded = {(r["modelName"], r["modelVersion"]) for r in rows}
    for model in target.served():
        if (model.name, model.version) in recorded:
            continue
        finding = Finding("ungoverned", where, model.name, model.version,
                          f"served as {model.target_version} (sha256 {model.sha256}) with no governed deployment")
        report.findings.append(finding)
        if dry_run:
            finding.action = "would-record"
            continue
        finding.atlas, created = _record_ungoverned(ledger, target, model)
        finding.action = "recorded" if created else "already-recorded"
    return report


def rollback(target: ServingTarget, ledger: Ledger, registry: Registry, name: str, version: str, reason: str, *,
             environment: str | None = None, trust: TrustSettings | None = None,
             signing: SigningSettings | None = None) -> Governed:
    """Serve an earlier registered version again; recorded with reason "rollback: ...", superseding."""
    if not reason.strip():
        raise ConfigError("--reason is required: it is recorded in Atlas")
    release = release_from_registry(registry, name, version)
    return redeploy(target, ledger, release, f"rollback: {reason.strip()}", environment=environment, trust=trust,
                    signing=signing)


def undeploy(target: ServingTarget, ledger: Ledger, name: str, version: str | None, reason: str) -> list[str]:
    """Take a model (one version, or every version) out of service; its records become ``stopped`` with the
    reason. Returns the qualifiedNames stopped. Under the target's lock, like a deploy."""
    if not reason.strip():
        raise ConfigError("--reason is required: it is recorded in Atlas")
    where = f"{target.kind}://{target.host_detail}"
    with target_lock(target.lock_path(), f"undeploy of {name} from {where}"):
        served = [m for m in target.served(name) if version is None or m.version == version]
        records = [r for r in ledger.records_on(target.host_detail, name)
                   if version is None or r["modelVersion"] == version]
        if not served and not records:
            raise TargetError(f"{where} does not serve {name}{' ' + version if version else ''} and Atlas "
                              f"records no deployment of it there")
        for model in served:
            target.undeploy(model.name, model.target_version)
        left = {(m.name, m.version) for m in target.served(name)}
        now = datetime.now(UTC)
        stopped = []
        for row in records:
            if (row["modelName"], row["modelVersion"]) in left:
                continue
            stopped.append(ledger.stop(row["qualifiedName"], now, f"undeploy: {reason.strip()}"))
        if any((m.name, m.version) in left for m in served):
            raise TargetError(f"{where} still serves {name} after undeploy: {sorted(left)}")
        return stopped


def reconcile_targets(targets: list[str] | None = None, registry: str | None = None, atlas_url: str | None = None,
                      namespace: str | None = None, config: str | None = None, dry_run: bool = False,
                      run_id: str | None = None) -> ReconcileReport:
    """Reconcile the named targets, or every target in modelgov.yaml; what ``modelgov reconcile`` and the
    scheduled ``reconcile`` flow both run."""
    cfg = load_config(config)
    names = list(targets or []) or sorted(cfg.targets)
    if not names:
        raise ConfigError("no target to reconcile: pass --target or define targets in modelgov.yaml")
    fallback = cfg.registry_uri(registry) if (registry or cfg.default_registry) else None
    resolved = [(cfg.target(name), name) for name in names]  # every name checked before anything changes
    report = ReconcileReport()
    ledger = Ledger.open(atlas_url or cfg.atlas_url, namespace or cfg.namespace or DEFAULT_NAMESPACE)
    try:
        for named, name in resolved:
            reconcile_target(get_target(named.uri), ledger, registry_fallback=fallback, dry_run=dry_run,
                             environment=named.environment, run_id=run_id, report=report,
                             trust=cfg.trust_for(name, named.environment), signing=cfg.signing)
    finally:
        ledger.close()
    return report
