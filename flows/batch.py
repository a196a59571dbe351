"""Prefect flow ``deploy-models``: many staged repos in one flow run, concurrently, a per-target limit.

Each model runs the same saga as ``deploy-model`` (``govern_one``) in its own task; a failing model is
recorded and reported, and never stops the others. The run leaves one Markdown table (one row per model).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.approval import DEFAULT_APPROVAL_TIMEOUT, await_approval
from flows.deploy_model import govern_one
from flows.target_limits import target_slot
from governance import report
from governance.config import resolve_run
from governance.errors import StepFailed
from governance.record import ApprovalDecision
from governance.targets import get_target

MAX_THREADS = 16
_gates: dict[str, threading.BoundedSemaphore] = {}
_gates_lock = threading.Lock()


def target_gate(run_id: str, target_uri: str, limit: int) -> threading.BoundedSemaphore:
    """At most ``limit`` models of this run deploy to one target at a time (more would overload it)."""
    with _gates_lock:
        return _gates.setdefault(f"{run_id}|{target_uri}", threading.BoundedSemaphore(limit))


def _progress_printer(total: int, enabled: bool) -> Callable[[str, dict | None], None]:
    """Lines on stderr as models start and finish (a terminal run by ``modelgov deploy``); also logged."""
    done = [0]
    lock = threading.Lock()
    from rich.console import Console

    console = Console(stderr=True, highlight=False)

    def show(source: str, summary: dict | None) -> None:
        log = get_run_logger()
        with lock:
            if summary is None:
                line = f"[{done[0]}/{total}] deploying {source}"
            else:
                done[0] += 1
                row = report.row(summary)
                what = row["endpoint"] if row["status"] in ("deployed", "unchanged") \
                    else f"{row['step']}: {row['error']}"
                line = f"[{done[0]}/{total}] {row['status']:<8} {row['model'] or source} {row['version'] or ''} {what}"
            log.info(line)
            if enabled:
                console.print(line, markup=False)

    return show


@task(name="deploy-one", cache_policy=NO_CACHE)
def deploy_one(source: str, target: str | None, registry: str | None, atlas_url: str | None,
               environment: str | None, namespace: str | None, config: str | None, target_uri: str, limit: int,
               show, approval: ApprovalDecision | None = None) -> dict:
    """One model's saga; always returns its summary (failed or deployed), never raises for the model's fault."""
    gate = target_gate(str(flow_run.id), target_uri, limit)
    with gate:
        show(source, None)
        try:
            summary = govern_one(source, target, registry, atlas_url, environment, namespace, config, False,
                                 approval=approval)
        except StepFailed as exc:
            summary = report.failed_summary(source, exc.step, str(exc.cause), exc.summary)
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the batch
            summary = report.failed_summary(source, "unexpected", f"{exc.__class__.__name__}: {exc}")
    show(source, summary)
    return summary


@flow(name="deploy-models", log_prints=False, validate_parameters=True,
      task_runner=ThreadPoolTaskRunner(max_workers=MAX_THREADS))
def deploy_models(sources: list[str], target: str | None = None, registry: str | None = None,
                  atlas_url: str | None = None, environment: str | None = None, namespace: str | None = None,
                  config: str | None = None, per_target_limit: int = 2, progress: bool = False,
                  approval_timeout: int = DEFAULT_APPROVAL_TIMEOUT) -> list[dict]:
    """Deploy every source; return one summary per source, in the order given.

    A production batch asks for one approval, for all its models, before any of them deploys."""
    if per_target_limit < 1:
        raise ValueError("per_target_limit must be at least 1")
    settings = resolve_run(target, registry, atlas_url, environment, namespace, config)  # bad names fail here
    show = _progress_printer(len(sources), progress and sys.stderr is not None)
    approval = None
    if settings.approval_required:
        approval = await_approval(f"a batch of {len(sources)} models to {settings.target_uri.split('?')[0]}",
                                  approval_timeout)
    # the run takes the target's Prefect slot once for all its models (after any approval, never while a
    # person decides); each model's deploy reuses it and is still serialised by the target's lock
    with target_slot(get_target(settings.target_uri), get_run_logger().info, run_id=str(flow_run.id)):
        futures = [deploy_one.submit(src, target, registry, atlas_url, environment, namespace, config,
                                     settings.target_uri, per_target_limit, show, approval) for src in sources]
        summaries = [f.result() for f in futures]
    create_markdown_artifact(markdown=report.batch_markdown(summaries), key="deploy-batch",
                             description=f"modelgov batch deploy of {len(sources)} models")
    return summaries


__all__ = ["deploy_models"]
