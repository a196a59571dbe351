"""The flow's per-target Prefect global concurrency limit, on a real Prefect API: strict, one slot per target."""

from __future__ import annotations

import pytest

from flows.target_limits import limit_name, target_slot
from governance.targets import get_target

pytestmark = pytest.mark.slow


def test_one_strict_slot_per_target_other_targets_free(prefect_api, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.delenv("MODELGOV_PREFECT_TARGET_LIMIT", raising=False)
    target = get_target("kserve://models?context=limits-a")
    other = get_target("kserve://models?context=limits-b")
    assert limit_name(target) != limit_name(other) and "/" not in limit_name(target)
    logs: list[str] = []
    with target_slot(target, logs.append):
        # a second deploy to the same target waits for the slot
        with pytest.raises(TimeoutError), concurrency(limit_name(target), occupy=1, strict=True, timeout_seconds=2):
            pass
        with target_slot(other, logs.append):  # another target is not held up
            pass
    with concurrency(limit_name(target), occupy=1, strict=True, timeout_seconds=10):  # released on exit
        pass
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name(limit_name(target)).limit == 1
    assert logs[0].startswith(f"taking the Prefect concurrency slot {limit_name(target)} for kserve limits-a/models")


def test_the_limit_is_off_without_a_prefect_server_or_when_disabled(monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    logs: list[str] = []
    with target_slot(get_target("kserve://models?context=x"), logs.append):
        pass
    assert logs == []


def test_a_run_reuses_the_slot_it_holds_and_other_runs_still_wait(prefect_api, monkeypatch):
    """A batch holds the target's slot once; its models' deploys reuse it (without reuse, a strict limit of 1
    would make them wait for their own run). Another run still waits for it."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    monkeypatch.delenv("MODELGOV_PREFECT_TARGET_LIMIT", raising=False)
    target = get_target("kserve://models?context=limits-reuse")
    logs: list[str] = []
    with target_slot(target, logs.append, run_id="run-1"):
        with target_slot(target, logs.append, timeout_s=2, run_id="run-1"), \
                target_slot(target, logs.append, timeout_s=2, run_id="run-1"):
            pass
        with pytest.raises(TimeoutError), target_slot(target, logs.append, timeout_s=2, run_id="run-2"):
            pass
    assert sum(line.startswith("taking the Prefect concurrency slot") for line in logs) == 2  # run-1 once, run-2
    with target_slot(target, logs.append, timeout_s=10, run_id="run-2"):  # run-1 released it
        pass
