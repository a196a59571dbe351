"""Prefect flow: govern one model deployment. Each task is a few lines calling ``governance``.

fetch -> validate -> preflight -> publish -> governed deploy (under the target's lock: record intent ->
deploy -> record outcome -> compare Atlas with what the target serves). Retries live on the tasks that talk
to idempotent services (registry publish is a no-op for identical bytes); the ledger retries Atlas writes;
the deploy itself is not retried blindly. Compensation (the target put back, the attempt recorded failed)
is the library's policy (``governance.govern``), not Prefect transactions, whose rollback fires on the
first failed attempt of a retried task. A SIGTERM/SIGINT is compensated the same way and ends the run
failed with step "deploy".
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.approval import DEFAULT_APPROVAL_TIMEOUT, await_approval
from flows.target_limits import target_slot
from governance import pipeline, report
from governance.config import resolve_run
from governance.errors import (
    ApprovalRefused,
    AtlasError,
    AtlasUnavailable,
    ConfigError,
    DeployInterrupted,
    RegistryUnavailable,
    StepFailed,
)
from governance.record import ApprovalDecision
from governance.registries import Registry, RegistryVersion
from governance.staging.intake import fetch_and_validate
from governance.staging.repo import StagedRepo
from governance.targets import Release


def _transient(task, task_run, state) -> bool:
    """Retry only errors that may pass: service errors, not refusals (immutability, integrity, 4xx)."""
    try:
        state.result()
    except AtlasUnavailable:
        return False  # the client already retried within its deadline: another round would multiply it
    except AtlasError as exc:
        return exc.status is None or exc.status >= 500
    except RegistryUnavailable:
        return True
    except Exception:  # noqa: BLE001
        return False
    return False


@task(name="fetch-and-validate", cache_policy=NO_CACHE)
def fetch_validate_task(source: str):
    return fetch_and_validate(source)


@task(name="publish", retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient, cache_policy=NO_CACHE)
def publish_task(staged: StagedRepo, registry: Registry, progress: bool) -> RegistryVersion:
    return registry.publish(staged, progress=progress)


@task(name="deploy", cache_policy=NO_CACHE)
def deploy_task(res: pipeline.Resources, release: Release, record, on_wait):
    return pipeline.govern(res, release, record, on_wait)


def publish_report(summary: dict) -> None:
    """Leave a Markdown artifact on the run: what was deployed where, the registry copy, the Atlas guids."""
    create_markdown_artifact(markdown=report.deployment_markdown(summary),
                             key=report.artifact_key("deploy", (summary.get("model") or {}).get("name")),
                             description=f"modelgov deploy: {summary.get('status')}")


@flow(name="deploy-model", log_prints=False, validate_parameters=True)
def deploy_model(source: str, target: str | None = None, registry: str | None = None, atlas_url: str | None = None,
                 environment: str | None = None, namespace: str | None = None, config: str | None = None,
                 progress: bool = False, approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT) -> dict:
    """Govern one deployment of the staged repo at ``source``; returns the summary dict.

    ``target``/``registry`` are names from modelgov.yaml or URIs; unset values come from its defaults.
    A deploy to a target marked production in modelgov.yaml waits (up to ``approval_timeout`` seconds) for
    an approval before it deploys.
    Every run, failed or not, leaves a Markdown artifact summarising it.
    """
    try:
        summary = govern_one(source, target, registry, atlas_url, environment, namespace, config, progress,
                             approval_timeout=approval_timeout)
    except StepFailed as exc:
        publish_report(report.failed_summary(source, exc.step, str(exc.cause), exc.summary))
        raise
    except Exception as exc:  # configuration (names, modelgov.yaml) or a bug: still leave the report
        step = "configuration" if isinstance(exc, ConfigError) else "unexpected"
        publish_report(report.failed_summary(source, step, f"{exc.__class__.__name__}: {exc}"))
        raise
    publish_report(summary)
    return summary


def govern_one(source: str, target: str | None, registry: str | None, atlas_url: str | None,
               environment: str | None, namespace: str | None, config: str | None, progress: bool, *,
               approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT, approval: ApprovalDecision | None = None) -> dict:
    """The deploy saga inside the flow run: resolve, validate, publish, [approval], record intent, deploy,
    record outcome. ``approval``: a decision already taken for this run (a batch asks once for all)."""
    log = get_run_logger()
    settings = resolve_run(target, registry, atlas_url, environment, namespace, config)
    namespace = settings.namespace
    request = pipeline.DeployRequest(source=source, target=settings.target_uri, registry=settings.registry_uri,
                                     atlas_url=settings.atlas_url, environment=settings.environment,
                                     namespace=namespace, progress=progress)
    try:
        staged, fetched = fetch_validate_task(source)
    except Exception as exc:
        raise StepFailed("validate", exc) from exc
    try:
        log.info("validated %s %s from %s", staged.metadata.name, staged.metadata.version, source)
        res = pipeline.run_step("preflight", pipeline.preflight, request)
        registered = pipeline.run_step("publish", publish_task, staged, res.registry, progress)
        log.info("registered %s (%s)", registered.location, "new" if registered.created else "already present")
        record = pipeline.start_record(staged, registered, res.target, request, str(flow_run.id or "") or None)
        if settings.approval_required:
            decision = approval or await_approval(
                f"{staged.metadata.name} {staged.metadata.version} on {res.target.host_detail} "
                f"(registry {registered.location})", approval_timeout)
            if not decision.approved:
                refused = record.rejected(decision)
                atlas_record = pipeline.run_step("record", res.ledger.record_outcome, refused)
                raise StepFailed("approval", ApprovalRefused(refused.failure),
                                 pipeline.summary(refused, atlas_record, []))
            record = record.approved(decision)
        release = pipeline.release_for(staged, registered, res.registry)
        try:
            with target_slot(res.target, log.info, run_id=str(flow_run.id or "") or None):
                governed = deploy_task(res, release, record, log.warning)
        except DeployInterrupted as exc:
            raise StepFailed("deploy", exc, {"status": "failed", "failure": "interrupted",
                                             "deployment_id": record.deployment_id}) from exc
        except StepFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. the Prefect limit could not be taken
            raise StepFailed("deploy", exc) from exc
        out = pipeline.governed_summary(governed)
        if governed.noop:
            log.info("%s", out["message"])
        else:
            log.info("deployed %s v%s at %s; Atlas deployment %s", staged.metadata.name, staged.metadata.version,
                     out["endpoint"], governed.atlas.deployment.guid)
        return out
    finally:
        fetched.cleanup()


__all__ = ["deploy_model"]
