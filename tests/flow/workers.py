"""Helpers for tests on the shared Prefect server: real process workers and waiting for flow runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from testbed.service import stop_process
from tests.conftest import ROOT


@contextlib.contextmanager
def process_workers(api_url: str, pool: str, names: list[str], logdir: Path, env: dict | None = None,
                    limit: int = 2) -> Iterator[dict[str, Path]]:
    """``prefect worker start --pool POOL --name N`` for each name, as an operator runs them; yields log paths."""
    worker_env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_WORKER_QUERY_SECONDS": "1",
                  "PREFECT_WORKER_PREFETCH_SECONDS": "5", "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin",
                  **(env or {})}
    procs, logs = [], {}
    try:
        for name in names:
            logs[name] = logdir / f"worker-{name}.log"
            with logs[name].open("wb") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--name", name,
                     "--limit", str(limit), "--type", "process"], cwd=ROOT, env=worker_env, stdout=log,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
        yield logs
    finally:
        for proc in procs:
            stop_process(proc, grace=15)


def wait_for_workers(pool: str, names: list[str], timeout: float = 180) -> None:
    """Block until every named worker has polled the pool, so no run is handed out while one is still starting."""
    from prefect import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            online = {w.name for w in client.read_workers_for_work_pool(pool)}
            if set(names) <= online:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"workers {sorted(set(names) - online)} never polled {pool} in {timeout:.0f}s")
            time.sleep(0.5)


def wait_for_runs(run_ids: list, timeout: float = 600, final: bool = True) -> list:
    """Poll the API until every run is final (or paused, when ``final`` is False); return the flow runs."""
    from prefect import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run_id) for run_id in run_ids]
            done = [r for r in runs if r.state and (r.state.is_final() or (not final and r.state.is_paused()))]
            if len(done) == len(runs):
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"runs not finished after {timeout:.0f}s: "
                                     f"{[(str(r.id), r.state.name if r.state else None) for r in runs]}")
            time.sleep(1)


def which_worker(run_id, logs: dict[str, Path]) -> str | None:
    """The worker whose log shows it submitted this run (each worker logs the run ids it picks up)."""
    for name, path in logs.items():
        if str(run_id) in path.read_text(errors="replace"):
            return name
    return None


def artifacts_of(run_id) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
