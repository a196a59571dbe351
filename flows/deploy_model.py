"""Prefect flow ``deploy-model``: the library's deploy saga (``governance.deploy.saga``), wrapped.

The saga decides the order and the compensation; this flow only gives it Prefect's parts through
``SagaHooks``: each step a task (publish retried on errors that may pass: registry publishes are no-ops for
identical bytes), the approval gate (pause/resume), the target's global concurrency slot, the run id and
logger. Compensation is the library's (the target put back, the attempt recorded failed), not Prefect
transactions, whose rollback fires on the first failed attempt of a retried task. A SIGTERM/SIGINT is
compensated the same way and ends the run failed with step "deploy".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.approval import DEFAULT_APPROVAL_TIMEOUT, await_approval
from flows.artifacts import publish_deployment
from flows.score import schedule_scoring
from flows.target_limits import target_slot
from governance.deploy.batch_run import BatchRun
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest, resolve_request
from governance.deploy.saga import SagaHooks, Validated, run_deploy
from governance.deploy.summary import DeploySummary
from governance.errors import AtlasError, AtlasUnavailable, ConfigError, RegistryUnavailable, StepFailed


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


@task(name="step", cache_policy=NO_CACHE)
def _step(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


STEP_TASKS = {
    "validate": _step.with_options(name="fetch-and-validate"),
    "publish": _step.with_options(name="publish", retries=2, retry_delay_seconds=[1, 5],
                                  retry_condition_fn=_transient),
    "deploy": _step.with_options(name="deploy"),
}


def prefect_hooks(approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT) -> SagaHooks:
    """The saga's hooks inside a flow run: tasks, the approval gate, the target's Prefect slot."""
    log = get_run_logger()
    run_id = str(flow_run.id or "") or None
    return SagaHooks(step=lambda name, fn, *args: STEP_TASKS[name](fn, *args),
                     approve=lambda what, subject: await_approval(what, approval_timeout, subject),
                     slot=lambda target: target_slot(target, log.info, run_id=run_id),
                     run_id=run_id, log=log.info, on_wait=log.warning)


def run_saga(request: DeployRequest, *, approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT,
               approval: ApprovalDecision | None = None, run: BatchRun | None = None,
               validated: Validated | None = None) -> DeploySummary:
    """One model's saga inside the current flow run (``deploy-model``, or one model of ``deploy-models``, which
    passes the ``run`` its models share and the source it validated)."""
    return run_deploy(request, prefect_hooks(approval_timeout), approval=approval, run=run, validated=validated)


@flow(name="deploy-model", log_prints=False, validate_parameters=True)
def deploy_model(source: str, target: str | None = None, registry: str | None = None, atlas_url: str | None = None,
                 environment: str | None = None, namespace: str | None = None, config: str | None = None,
                 progress: bool = False, approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT,
                 request: DeployRequest | None = None) -> DeploySummary:
    """Govern one deployment of the staged repo at ``source``; returns its DeploySummary.

    ``target``/``registry`` are names from modelgov.yaml or URIs; unset values come from its defaults. The CLI
    passes the ``request`` it already resolved instead (its parameters then name the resolved URIs). A deploy
    to a target marked production in modelgov.yaml waits (up to ``approval_timeout`` seconds) for an approval.
    Every run, failed or not, leaves a Markdown artifact summarising it.
    """
    try:
        request = request.for_source(source) if request is not None else resolve_request(
            source, target, registry, atlas_url, environment, namespace, config, progress=progress)
        summary = run_saga(request, approval_timeout=approval_timeout)
        schedule_scoring(request, summary)  # a Spark target with schedule=: its job, on the Prefect server
    except StepFailed as exc:
        publish_deployment(DeploySummary.of_step_failure(source, exc))
        raise
    except Exception as exc:  # configuration (names, modelgov.yaml) or a bug: still leave the report
        step = "configuration" if isinstance(exc, ConfigError) else "unexpected"
        publish_deployment(DeploySummary.failed_before_record(source, step, f"{exc.__class__.__name__}: {exc}"))
        raise
    publish_deployment(summary)
    return summary


__all__ = ["deploy_model"]
