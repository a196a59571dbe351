"""Shared fixtures: example staged repos, a real MLServer, the Atlas emulator."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["tests.service_fixtures", "tests.hdfs_fixtures", "tests.real_atlas"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "staging_template" / "example"
MLSERVER_BIN = Path(os.environ.get("MODELGOV_MLSERVER", ROOT / ".venv-mlserver" / "bin" / "mlserver"))


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory, monkeypatch):
    """Each test keeps modelgov's local state (the Atlas outbox) in its own folder, never ~/.modelgov."""
    monkeypatch.setenv("MODELGOV_STATE_DIR", str(tmp_path_factory.mktemp("modelgov-state")))


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    """A private copy of the working example staged repo (trained by `make example`)."""
    if not (EXAMPLE / "executable" / "model.joblib").is_file():
        pytest.fail("the example model is missing: run `make example` (make test does it)")
    dest = tmp_path / "staged"
    shutil.copytree(EXAMPLE, dest)
    return dest


def write_metadata(repo: Path, **overrides: str | None) -> None:
    """Rewrite metadata.txt with the example's keys, changed or removed (None) as given."""
    keys = {"model.name": "iris-classifier", "model.version": "1.0", "model.type": "logistic regression",
            "model.owner": "Ana Müller", "model.owner.lob": "retail-analytics",
            "model.description": "classifies iris flowers", "model.framework": "sklearn",
            "model.training.data": "data/iris.csv"}
    for key, value in overrides.items():
        keys[key.replace("_", ".")] = value
    lines = [f"{k} = {v}" for k, v in keys.items() if v is not None]
    (repo / "metadata.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def atlas_emulator(monkeypatch):
    """A fresh emulator; after the test, no model version it recorded may have been rewritten (issue 20)."""
    from emulators.atlas import AtlasEmulator
    from tests.record_invariant import assert_no_build_rewritten

    with AtlasEmulator(host="127.0.0.1", port=0) as emulator:
        monkeypatch.setenv("ATLAS_USERNAME", "admin")
        monkeypatch.setenv("ATLAS_PASSWORD", "admin")
        yield emulator
        assert_no_build_rewritten(emulator.url)


@pytest.fixture
def atlas(atlas_emulator):
    return atlas_emulator


@pytest.fixture(scope="session")
def constant_model(tmp_path_factory) -> bytes:
    """A valid sklearn model, trained with the serving env, that answers 1 for everything (other bytes than
    the example's, which answers [0, 2] to its request)."""
    import subprocess

    out = tmp_path_factory.mktemp("constant") / "model.joblib"
    code = ("import joblib, sys; from sklearn.datasets import load_iris; from sklearn.dummy import DummyClassifier;"
            "X, y = load_iris(return_X_y=True); m = DummyClassifier(strategy='constant', constant=1).fit(X, y);"
            "joblib.dump(m, sys.argv[1])")
    subprocess.run([str(MLSERVER_BIN.parent / "python"), "-c", code, str(out)], check=True, timeout=120)
    return out.read_bytes()


@pytest.fixture(scope="session")
def mlserver(tmp_path_factory):
    """One real MLServer process for the session (its own venv), serving a temp model repository."""
    from governance.targets.mlserver_process import LocalMLServer

    if not MLSERVER_BIN.exists():
        pytest.fail(f"MLServer is missing at {MLSERVER_BIN}: run `make serving-env` (make test does it)")
    repo = tmp_path_factory.mktemp("mlserver") / "models"
    server = LocalMLServer(repo, executable=MLSERVER_BIN)
    server.start()
    yield server
    server.stop()
