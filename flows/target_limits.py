"""One deploy per target across Prefect workers on different hosts: a global concurrency limit per target.

The library's own lock (``governance.targets.lock``) serialises every deploy that shares the lock file (all
processes on a host, and every host that deploys through a shared MLServer repository or MLeap bundle
folder). When runs go through a Prefect server (``PREFECT_API_URL`` set), the flow also holds a slot of a
limit named after the target, created with limit 1 if missing and taken with ``strict=True`` (a missing
limit must not silently serialise nothing). ``MODELGOV_PREFECT_TARGET_LIMIT=off`` turns it off.
The lease is renewed while the run lives; a killed run's slot frees itself after LEASE_SECONDS.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator

from governance.targets import ServingTarget

LEASE_SECONDS = 60.0  # Prefect's minimum; renewed in the background while the run lives
_held: dict[tuple[str, str], int] = {}  # (limit name, flow run id) -> holders in this process
_held_lock = threading.Lock()


def limit_name(target: ServingTarget) -> str:
    """A limit name Prefect accepts (no / % & > <), stable per target."""
    digest = hashlib.sha256(f"{target.kind}://{target.host_detail}".encode()).hexdigest()[:16]
    return f"modelgov-target-{target.kind}-{digest}"


def enabled() -> bool:
    return bool(os.environ.get("PREFECT_API_URL")) and \
        os.environ.get("MODELGOV_PREFECT_TARGET_LIMIT", "on").lower() not in ("off", "0", "false")


@contextlib.contextmanager
def target_slot(target: ServingTarget, log: Callable[[str], None], timeout_s: float = 3600.0,
                run_id: str | None = None) -> Iterator[None]:
    """Hold the target's Prefect concurrency slot for the block (a no-op when disabled).

    With ``run_id``, a slot this flow run already holds is reused: a batch takes it once for all its models
    (each model's deploy is still serialised by the target's lock), instead of two API calls per model and
    its threads polling the server for a slot their own run holds."""
    if not enabled():
        yield
        return
    key = (limit_name(target), run_id or "")
    if run_id and _join(key):
        with _counted(key):
            yield
        return
    with _slot(target, log, timeout_s):
        if not run_id:
            yield
            return
        with _held_lock:
            _held[key] = _held.get(key, 0) + 1
        with _counted(key):
            yield


def _join(key: tuple[str, str]) -> bool:
    """Take part in a slot this run already holds (check and count in one step)."""
    with _held_lock:
        if _held.get(key):
            _held[key] += 1
            return True
    return False


@contextlib.contextmanager
def _counted(key: tuple[str, str]) -> Iterator[None]:
    """Leave the run's slot on exit; the last holder's exit forgets it."""
    try:
        yield
    finally:
        with _held_lock:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]


@contextlib.contextmanager
def _slot(target: ServingTarget, log: Callable[[str], None], timeout_s: float) -> Iterator[None]:
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    name = limit_name(target)
    with get_client(sync_client=True) as client:
        for attempt in range(1, 4):
            try:
                client.upsert_global_concurrency_limit_by_name(name, limit=1)
                break
            except (ObjectAlreadyExists, httpx.HTTPStatusError):
                # concurrent first runs on one target (a batch, several workers) race between the read and
                # the create inside upsert: the loser reads again (found by the batch test)
                if attempt == 3:
                    raise
                time.sleep(0.2 * attempt)
    log(f"taking the Prefect concurrency slot {name} for {target.kind} {target.host_detail} "
        f"(one deploy per target across workers)")
    started = time.monotonic()
    with concurrency(name, occupy=1, strict=True, timeout_seconds=timeout_s, lease_duration=LEASE_SECONDS):
        waited = time.monotonic() - started
        if waited > 1:
            log(f"waited {waited:.1f}s for the Prefect concurrency slot {name}")
        yield
