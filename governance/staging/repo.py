"""StagedRepo: a validated staged model repository as one frozen value handed to every later step."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.checksums import ArtifactFile
from governance.staging.data_versions import DataVersion
from governance.staging.metadata import ModelMetadata

EXAMPLE_REQUEST = "examples/request.json"
EXAMPLE_RESPONSE = "examples/response.json"
MLFLOW_MODEL_FILE = "MLmodel"  # an executable/ folder holding this file is one model in MLflow's format


@dataclass(frozen=True)
class FetchedSource:
    """A staged repo on local disk; ``workdir`` (if any) is owned by us and removed by ``cleanup``."""

    root: Path
    source: str
    commit: str | None
    workdir: Path | None = None

    def cleanup(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass(frozen=True)
class StagedRepo:
    """Everything known about the staged repo after validation; files carry their sha256 from intake."""

    root: Path
    source: str
    commit: str | None
    metadata: ModelMetadata
    metadata_file: str
    executable: str
    files: tuple[ArtifactFile, ...]
    example_request: Any | None = None
    example_response: Any | None = None
    data_versions: tuple[DataVersion, ...] = ()  # one per model.training.data entry, in order

    def file(self, path: str) -> ArtifactFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    @property
    def executable_file(self) -> ArtifactFile:
        return self.file(self.executable)
