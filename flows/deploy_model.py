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
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.target_limits import target_slot
from governance import pipeline
from governance.errors import AtlasError, DeployInterrupted, RegistryUnavailable, StepFailed
from governance.registries import Registry, RegistryVersion
from governance.staging.intake import fetch_and_validate
from governance.staging.repo import StagedRepo
from governance.targets import Release


def _transient(task, task_run, state) -> bool:
    """Retry only errors that may pass: service errors, not refusals (immutability, integrity, 4xx)."""
    try:
        state.result()
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


@flow(name="deploy-model", log_prints=False, validate_parameters=True)
def deploy_model(source: str, target: str, registry: str, atlas_url: str | None = None,
                 environment: str | None = None, namespace: str = "modelgov", progress: bool = False) -> dict:
    """Govern one deployment of the staged repo at ``source``; returns the summary dict."""
    log = get_run_logger()
    request = pipeline.DeployRequest(source=source, target=target, registry=registry, atlas_url=atlas_url,
                                     environment=environment, namespace=namespace, progress=progress)
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
        release = pipeline.release_for(staged, registered, res.registry)
        try:
            with target_slot(res.target, log.info):
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
