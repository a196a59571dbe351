"""Two publishers of one version, forced into every interleaving the registry's steps allow.

The slow publisher is paused at one step (before staging, between two files, before its commit) while the
fast one publishes completely; then the slow one resumes. Whatever the order: the committed version is the
fast one's and `modelgov registry verify` passes on it; a loser with different bytes is refused and changed
nothing; a loser with the same bytes gets the committed version back. Runs on real radosgw, moto, the WebHDFS
emulator and a local folder.
"""

from __future__ import annotations

import threading

import pytest

from governance.cli import main
from governance.errors import ImmutableVersionError
from governance.registries import get_registry

PAUSE_POINTS = ["_begin", "_put", "_commit"]
FAST, SLOW = b"fast publisher's model" * 50, b"slow publisher's model" * 50


def _pause_at(registry, method: str, reached: threading.Event, resume: threading.Event) -> None:
    """Make ``registry`` stop at ``method`` (the second file for _put) until ``resume`` is set."""
    original = getattr(registry, method)
    calls = {"n": 0}

    def paused(*args, **kwargs):
        calls["n"] += 1
        if method != "_put" or calls["n"] == 2:
            reached.set()
            assert resume.wait(60), "the test never resumed the slow publisher"
        return original(*args, **kwargs)

    setattr(registry, method, paused)


def _race(backend, make_staged, point: str, slow_model: bytes):
    slow_registry, fast_registry = get_registry(backend.registry.uri), get_registry(backend.registry.uri)
    extra = {"data/a.csv": b"a,b\n1,2\n", "data/b.csv": b"c,d\n3,4\n"}
    slow_staged, fast_staged = make_staged(model=slow_model, extra=extra), make_staged(model=FAST, extra=extra)
    reached, resume = threading.Event(), threading.Event()
    _pause_at(slow_registry, point, reached, resume)
    outcome: dict = {}

    def run_slow():
        try:
            outcome["version"] = slow_registry.publish(slow_staged)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run_slow)
    thread.start()
    assert reached.wait(60), f"the slow publisher never reached {point}"
    committed = fast_registry.publish(fast_staged)
    assert committed.created
    resume.set()
    thread.join(60)
    return committed, outcome


def _assert_committed_is_intact(backend, committed) -> None:
    stored = backend.registry.lookup("iris", "1")
    assert stored is not None and stored.manifest == committed.manifest
    assert b"".join(backend.registry.open_artifact(stored, stored.manifest.executable)) == FAST
    assert main(["registry", "verify", backend.registry.uri, "iris", "1"]) == 0


@pytest.mark.parametrize("point", PAUSE_POINTS)
def test_loser_with_different_bytes_is_refused_and_winner_verifies(backend, make_staged, point, capsys):
    committed, outcome = _race(backend, make_staged, point, SLOW)
    assert isinstance(outcome.get("error"), ImmutableVersionError), outcome
    assert "executable/model.joblib" in str(outcome["error"])
    _assert_committed_is_intact(backend, committed)
    # the loser left nothing behind (it removes only its own attempt), so there is nothing to collect
    assert [lo.uri for lo in backend.registry.gc(older_than=__import__("datetime").timedelta(0))] == []
    _assert_committed_is_intact(backend, committed)


@pytest.mark.parametrize("point", PAUSE_POINTS)
def test_loser_with_identical_bytes_gets_the_committed_version(backend, make_staged, point):
    committed, outcome = _race(backend, make_staged, point, FAST)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["version"].created is False
    assert outcome["version"].manifest == committed.manifest
    _assert_committed_is_intact(backend, committed)
