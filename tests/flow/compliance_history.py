"""A realistic deployment history, built once through the real Prefect flow, for the compliance tests.

Three models, two owners, several versions, two real MLServer targets (A: production, B: staging):

  1 fraud-scorer 1.0    -> A  by jane.ops   (superseded by step 3)
  2 churn-predictor 2.0 -> B  by raj.ops
  3 fraud-scorer 1.1    -> A  by raj.ops    (marks step 1 stopped)
  4 churn-predictor 2.1 -> B  by jane.ops   FAILED (the executable is not a model)
  5 iris-species 1.0    -> A  by jane.ops   (training data classified sensitive: pii)
  6 fraud-scorer 1.1    -> B  by jane.ops
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flows.deploy_model import deploy_model
from governance.errors import StepFailed
from tests.conftest import EXAMPLE, write_metadata

ANA, BOB = "Ana Müller", "Bob Stone"
MODELS = {"fraud-scorer": (ANA, "risk"), "churn-predictor": (BOB, "marketing"), "iris-species": (ANA, "retail")}


@dataclass
class Step:
    name: str
    version: str
    target: str          # "A" or "B"
    deployed_by: str
    summary: dict
    failed: bool = False

    @property
    def guid(self) -> str:
        return self.summary["atlas"]["deployment"]["guid"]

    @property
    def qualified_name(self) -> str:
        return self.summary["atlas"]["deployment"]["qualifiedName"]


@dataclass
class History:
    atlas_url: str
    registry_dir: Path
    targets: dict[str, str]                 # "A"/"B" -> target URI
    details: dict[str, str]                 # "A"/"B" -> host:port
    steps: list[Step] = field(default_factory=list)

    def step(self, number: int) -> Step:
        return self.steps[number - 1]


def stage(workdir: Path, name: str, version: str, *, broken: bool = False, sensitive: str | None = None) -> Path:
    repo = workdir / f"staged-{name}-{version}"
    if repo.exists():
        return repo
    shutil.copytree(EXAMPLE, repo)
    owner, lob = MODELS[name]
    extra = {"model_training_data_sensitive": sensitive} if sensitive else {}
    write_metadata(repo, model_name=name, model_version=version, model_owner=owner, model_owner_lob=lob,
                   model_description=f"{name} (compliance test model)", **extra)
    if broken:
        (repo / "executable" / "model.joblib").write_bytes(b"this is not a model")
    return repo


def build_history(workdir: Path, atlas_url: str, target_a: str, target_b: str, detail_a: str,
                  detail_b: str) -> History:
    history = History(atlas_url=atlas_url, registry_dir=workdir / "registry", targets={"A": target_a, "B": target_b},
                      details={"A": detail_a, "B": detail_b})
    plan = [("fraud-scorer", "1.0", "A", "jane.ops", {}), ("churn-predictor", "2.0", "B", "raj.ops", {}),
            ("fraud-scorer", "1.1", "A", "raj.ops", {}), ("churn-predictor", "2.1", "B", "jane.ops", {"broken": True}),
            ("iris-species", "1.0", "A", "jane.ops", {"sensitive": "pii"}),
            ("fraud-scorer", "1.1", "B", "jane.ops", {})]
    with pytest.MonkeyPatch.context() as mp:
        for name, version, target, who, options in plan:
            mp.setenv("MODELGOV_DEPLOYED_BY", who)
            source = stage(workdir, name, version, **options)
            environment = "production" if target == "A" else "staging"
            try:
                summary = deploy_model(source=str(source), target=history.targets[target],
                                       registry=f"file://{history.registry_dir}", atlas_url=atlas_url,
                                       environment=environment)
                failed = False
            except StepFailed as exc:
                assert options.get("broken"), f"{name} {version} should have deployed: {exc}"
                summary, failed = exc.summary, True
            history.steps.append(Step(name, version, target, who, summary, failed))
    return history
