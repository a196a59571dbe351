"""Prefect flow ``deploy-models``: many staged repos in one flow run, concurrently, a per-target limit.

Each model runs the same saga as ``deploy-model`` (``governance.deploy.saga``) in its own task; a failing model is
recorded and reported, and never stops the others. The run leaves one Markdown table (one row per model).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.approval import DEFAULT_APPROVAL_TIMEOUT, await_approval
from flows.artifacts import publish_batch
from flows.deploy_model import prefect_hooks, run_saga
from flows.target_limits import target_slot
from governance.deploy.batch_run import BatchRun
from governance.deploy.record import ApprovalDecision
from governance.deploy.request import DeployRequest, resolve_run
from governance.deploy.saga import Validated, validate_source
from governance.deploy.summary import DeploySummary
from governance.errors import DeployInterrupted, StepFailed
from governance.stops import stop_requested, stops_forwarded
from governance.targets import get_target

MAX_THREADS = 16
READ_AHEAD = 100  # sources validated, and their records read ahead from Atlas, per chunk of a batch
_gates: dict[str, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


def target_gate(run_id: str, target_uri: str, limit: int) -> threading.BoundedSemaphore:
    """At most ``limit`` models of this run deploy to one target at a time (more would overload it)."""
    with _gates_lock:
        return _gates.setdefault(f"{run_id}|{target_uri}", threading.BoundedSemaphore(limit))


def _progress_printer(total: int, enabled: bool) -> Callable[[str, DeploySummary | None], None]:
    """Lines on stderr as models start and finish (a terminal run by ``modelgov deploy``); also logged."""
    done = [0]
    lock = threading.Lock()
    from rich.console import Console

    console = Console(stderr=True, highlight=False)

    def show(source: str, summary: DeploySummary | None) -> None:
        log = get_run_logger()
        with lock:
            if summary is None:
                line = f"[{done[0]}/{total}] deploying {source}"
            else:
                done[0] += 1
                what = summary.endpoint if summary.succeeded else f"{summary.step}: {summary.reason}"
                line = (f"[{done[0]}/{total}] {summary.status:<8} {summary.model_name or source} "
                        f"{summary.model_version or ''} {what}")
            log.info(line)
            if enabled:
                console.print(line, markup=False)

    return show


def _not_started(source: str, show) -> DeploySummary:
    summary = DeploySummary.failed_before_record(source, "deploy", "interrupted before it started")
    show(source, summary)
    return summary


@task(name="validate-one", cache_policy=NO_CACHE)
def validate_one(request: DeployRequest, show) -> Validated | DeploySummary:
    """Fetch and validate one source before the batch reads its models' records ahead; the failed summary
    (shown at once) when it is not a valid staged repo."""
    try:
        return validate_source(request, prefect_hooks())
    except StepFailed as exc:
        summary = DeploySummary.of_step_failure(request.source, exc)
    except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the batch
        summary = DeploySummary.failed_before_record(request.source, "unexpected", f"{exc.__class__.__name__}: {exc}")
    show(request.source, summary)
    return summary


@task(name="deploy-one", cache_policy=NO_CACHE)
def deploy_one(request: DeployRequest, limit: int, show, approval: ApprovalDecision | None = None,
               run: BatchRun | None = None, validated: Validated | None = None) -> DeploySummary:
    """One model's saga; always returns its summary (failed or deployed), never raises for the model's fault."""
    source = request.source
    gate = target_gate(str(flow_run.id), request.target_uri, limit)
    with gate:
        if stop_requested():  # the batch got SIGTERM/SIGINT: what has not started does not start
            if validated is not None:
                validated[1].cleanup()
            return _not_started(source, show)
        show(source, None)
        try:
            summary = run_saga(request, approval=approval, run=run, validated=validated)
        except StepFailed as exc:
            summary = DeploySummary.of_step_failure(source, exc)
        except DeployInterrupted as exc:  # stopped outside the governed deploy, which records its own
            summary = DeploySummary.failed_before_record(source, "deploy", f"interrupted ({exc})")
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the batch
            summary = DeploySummary.failed_before_record(source, "unexpected", f"{exc.__class__.__name__}: {exc}")
    show(source, summary)
    return summary


def _deploy_chunk(requests: list[DeployRequest], limit: int, show, approval: ApprovalDecision | None,
                  run: BatchRun) -> list[DeploySummary]:
    """Validate a chunk of the batch, read its models' records ahead in bulk, deploy it."""
    if stop_requested():  # the batch got SIGTERM/SIGINT: a chunk not started is not even validated
        return [_not_started(r.source, show) for r in requests]
    checked = [f.result() for f in [validate_one.submit(r, show) for r in requests]]
    run.read_ahead([v[0].metadata.name for v in checked if not isinstance(v, DeploySummary)])
    futures = [None if isinstance(v, DeploySummary) else deploy_one.submit(r, limit, show, approval, run, v)
               for r, v in zip(requests, checked, strict=True)]
    return [v if f is None else f.result() for v, f in zip(checked, futures, strict=True)]


@flow(name="deploy-models", log_prints=False, validate_parameters=True,
      task_runner=ThreadPoolTaskRunner(max_workers=MAX_THREADS))
def deploy_models(sources: list[str], target: str | None = None, registry: str | None = None,
                  atlas_url: str | None = None, environment: str | None = None, namespace: str | None = None,
                  config: str | None = None, per_target_limit: int = 2, progress: bool = False,
                  approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT,
                  request: DeployRequest | None = None) -> list[DeploySummary]:
    """Deploy every source; return one summary per source, in the order given. The names are resolved once
    for the whole batch (the CLI passes the ``request`` it resolved instead).

    A production batch asks for one approval, for all its models, before any of them deploys. Sources are
    validated and their records read ahead ``READ_AHEAD`` at a time (Atlas is checked once for the run:
    ``governance.deploy.batch_run``), which also bounds how many fetched copies wait on disk."""
    if per_target_limit < 1:
        raise ValueError("per_target_limit must be at least 1")
    settings = request or resolve_run(target, registry, atlas_url, environment, namespace, config)
    show = _progress_printer(len(sources), progress and sys.stderr is not None)
    approval = None
    if settings.approval_required:
        approval = await_approval(f"a batch of {len(sources)} models to {settings.target_uri.split('?')[0]}",
                                  approval_timeout)
    # the run takes the target's Prefect slot once for all its models (after any approval, never while a
    # person decides); each model's deploy reuses it and is still serialised by the target's lock
    # SIGTERM/SIGINT reach this (main) thread only: forwarded, each model's deploy stops on its own thread and
    # puts its target back (governance.stops)
    with target_slot(get_target(settings.target_uri), get_run_logger().info, run_id=str(flow_run.id)), \
            stops_forwarded():
        run = BatchRun(settings.atlas_url, settings.namespace)  # what the run's models share of Atlas
        requests = [settings.for_source(src, progress=False) for src in sources]
        summaries: list[DeploySummary] = []
        for start in range(0, len(requests), READ_AHEAD):
            summaries += _deploy_chunk(requests[start:start + READ_AHEAD], per_target_limit, show, approval, run)
    publish_batch(summaries)
    return summaries


__all__ = ["deploy_models"]
