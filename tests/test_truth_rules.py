"""The comparison rules between Atlas and the target, and the per-target deploy lock, without servers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from governance.deploy.governed import plan_reconcile
from governance.errors import TargetError
from governance.targets import get_target
from governance.targets.base import ServedModel
from governance.targets.lock import target_lock


def row(qn: str, version: str, status: str, name: str = "m") -> dict:
    return {"qualifiedName": qn, "modelName": name, "modelVersion": version, "status": status}


def served(*versions: str) -> list[ServedModel]:
    return [ServedModel(name="m", version=v, target_version=v) for v in versions]


def test_records_whose_version_left_service_are_retired_and_served_ones_kept():
    records = [row("new", "2.0", "deployed"), row("old", "1.0", "deployed")]  # newest first
    assert plan_reconcile(records, served("2.0")) == (["old"], [])
    assert plan_reconcile(records, served("1.0", "2.0")) == ([], [])  # keep_previous / canary: both serve
    assert plan_reconcile(records, served()) == (["new", "old"], [])


def test_one_deployed_record_per_served_version_the_kept_one_wins():
    records = [row("b", "1.0", "deployed"), row("a", "1.0", "deployed")]
    assert plan_reconcile(records, served("1.0")) == (["a"], [])
    assert plan_reconcile(records, served("1.0"), keep="a") == (["b"], [])


def test_stale_intents_are_settled_from_what_serves():
    records = [row("dead", "3.0", "deploying"), row("live", "2.0", "deploying"), row("mine", "4.0", "deploying")]
    retire, settle = plan_reconcile(records, served("2.0", "4.0"), keep="mine")
    assert retire == [] and settle == [("dead", False), ("live", True)]  # "mine" is the run itself
    covered = [row("stale", "2.0", "deploying"), row("rec", "2.0", "deployed")]
    assert plan_reconcile(covered, served("2.0")) == ([], [("stale", False)])  # already recorded deployed


def test_the_lock_serialises_one_target_logs_the_wait_and_leaves_other_targets_free(tmp_path: Path):
    a, b = get_target(f"mlserver://h:1?repository={tmp_path / 'a'}"), get_target(f"mlserver://h:2?repository={tmp_path / 'b'}")
    assert a.lock_path() != b.lock_path()
    waits: list[str] = []
    order: list[str] = []
    with target_lock(a.lock_path(), "first deploy"):
        with target_lock(b.lock_path(), "other target", timeout_s=1):
            order.append("other target ran while the first held its own lock")

        def second() -> None:
            with target_lock(a.lock_path(), "second deploy", on_wait=waits.append, poll_s=0.05):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["other target ran while the first held its own lock", "first", "second"]
    assert waits[0].startswith(f"waiting for the deploy lock {a.lock_path()}: held by first deploy (pid ")
    assert waits[1].startswith(f"acquired the deploy lock {a.lock_path()} after ")


def test_waiting_too_long_is_an_error_naming_the_holder(tmp_path: Path):
    path = tmp_path / "t.lock"
    waiting = pytest.raises(TargetError, match=r"gave up waiting for the deploy lock .* after 0s: held by a slow "
                                               r"deploy")
    with target_lock(path, "a slow deploy"), waiting, \
            target_lock(path, "impatient", timeout_s=0.2, poll_s=0.05, on_wait=lambda _m: None):
        pass


def test_a_killed_holder_releases_the_lock(tmp_path: Path):
    path = tmp_path / "t.lock"
    code = ("import sys, time; from pathlib import Path; from governance.targets.lock import target_lock\n"
            "with target_lock(Path(sys.argv[1]), 'doomed'):\n    print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    proc.kill()
    proc.wait(timeout=10)
    with target_lock(path, "next", timeout_s=5):
        pass
