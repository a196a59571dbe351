"""The binding of a Spark scoring job to one registry version: the single source of what the next run scores with.

A binding folder holds, per model, the registered executable copied in (``<model>/<version>-<sha12>/...``) and
``<model>/binding.json`` naming that copy, its version and sha256. The JSON is replaced atomically (write, fsync,
``os.replace``), and only after a new version's smoke scoring passed, so a scoring run (manual or scheduled) reads
either the old binding or the new one, never a mix, and a failed deploy leaves the old one in place. What the Spark
target says it serves is read back from here and the copy re-hashed: Atlas's ``deployed`` is what the next run uses.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from governance.checksums import hash_file
from governance.durable import fsync_dir, write_synced
from governance.errors import TargetError
from governance.paths import segment_problem

BINDING_FILE = "binding.json"


@dataclass(frozen=True)
class Binding:
    model: str
    version: str
    sha256: str           # of the executable, as the registry manifest lists it
    executable: str       # the copy's path relative to the binding folder
    registry_uri: str     # the registry version folder it was copied from
    framework: str        # sklearn (joblib/pickle) or mlflow-sklearn (the pickled model of an MLflow model)
    bound_at: str         # ISO time the binding was made
    executable_sha256: str = ""  # the manifest's executable (MLflow: MLmodel), which Atlas and reconcile compare

    @property
    def target_version(self) -> str:
        return f"{self.version}-{self.sha256[:12]}"


class BindingStore:
    """The binding folder of one Spark target."""

    def __init__(self, root: Path):
        self.root = root

    def _model_dir(self, model: str) -> Path:
        problem = segment_problem(model)
        if problem:
            raise TargetError(f"model name {model!r} {problem}; refusing to use it as a binding folder")
        return self.root / model

    def read(self, model: str) -> Binding | None:
        path = self._model_dir(model) / BINDING_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Binding(**{k: str(data[k]) for k in Binding.__dataclass_fields__ if k != "executable_sha256"},
                           executable_sha256=str(data.get("executable_sha256") or data["sha256"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TargetError(f"{path} is not a readable binding ({exc}); fix or remove it") from exc

    def all(self) -> list[Binding]:
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and (p / BINDING_FILE).is_file()):
            binding = self.read(folder.name)
            if binding is not None:
                found.append(binding)
        return found

    def copy_dir(self, model: str, version: str, sha256: str) -> Path:
        return self._model_dir(model) / f"{version}-{sha256[:12]}"

    def bind(self, binding: Binding) -> None:
        """Make ``binding`` the one the next run uses: atomically, durably."""
        folder = self._model_dir(binding.model)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{BINDING_FILE}.tmp-{os.getpid()}"
        write_synced(tmp, json.dumps(asdict(binding), indent=2, sort_keys=True).encode())
        os.replace(tmp, folder / BINDING_FILE)
        fsync_dir(folder)

    def unbind(self, model: str) -> None:
        folder = self._model_dir(model)
        (folder / BINDING_FILE).unlink(missing_ok=True)
        fsync_dir(folder) if folder.is_dir() else None

    def installed_sha256(self, binding: Binding) -> str | None:
        """The executable's sha256 as installed: the manifest executable's digest while the bound copy still
        hashes to what was bound, else the copy's own digest (other bytes: drift); None when it is gone."""
        path = self.root / binding.executable
        if not path.is_file():
            return None
        actual = hash_file(path)[0]
        return binding.executable_sha256 if actual == binding.sha256 else actual

    def prune(self, model: str) -> None:
        """Remove copies the binding does not name (older versions, a failed attempt's copy). Folders starting
        with a dot are never copies: ``.runs`` holds the locks of running scoring runs, ``.work`` their extracted
        pipelines; removing them under a running job would make it look killed."""
        folder = self._model_dir(model)
        current = self.read(model)
        keep = Path(current.executable).parts[1] if current else None
        for child in folder.iterdir() if folder.is_dir() else ():
            if child.is_dir() and not child.name.startswith(".") and child.name != keep:
                shutil.rmtree(child, ignore_errors=True)

    def workdir(self, model: str) -> Path:
        """Where a job of ``model`` extracts what it needs while it runs (never pruned)."""
        return self._model_dir(model) / ".work"
