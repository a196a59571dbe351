"""``models:/NAME/VERSION`` and ``models:/NAME@ALIAS``: a staged repo built from an MLflow model registry.

Owners who already register models in MLflow do not re-stage them by hand: the model version's artifacts
(MLmodel and model files) go under ``executable/``, a README is written from the descriptions, and the
metadata comes from MLflow, so the result goes through the same validation, registry, deploy and Atlas
record as any staged repo:

- name, version and description from the model version (the registered model's description otherwise);
- every other ``model.*`` key from tags of the same name (``model.owner``, ``model.owner.lob``,
  ``model.type``, ...), the model version's tags first, then the registered model's; ``modelgov.yaml``
  may name other tags (``mlflow: {tags: {model.owner: team}}``);
- framework from the MLmodel flavors; the source run's ``mlflow.source.git.commit`` as the commit;
- ``model.training.data`` from the run's logged datasets, each with its MLflow digest, plus any
  ``model.training.data`` tag; the model version URI and run id as ``model.mlflow.*`` keys;
- ``examples/request.json`` (the V2 smoke request) from the input example the run logged.

Missing required metadata is a ValidationError naming the MLflow tag to set. The generated files are a
pure function of the model version, so staging one version twice (by number or by alias) gives identical
bytes, which the immutable registry accepts as the same version.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from governance.errors import Problem, StagingError, ValidationError
from governance.staging.limits import IntakeLimits
from governance.staging.metadata import NAME_PATTERN
from governance.staging.mlflow_client import MLflowClient, ModelVersion, RegisteredModel, Run
from governance.staging.repo import EXAMPLE_REQUEST, MLFLOW_MODEL_FILE, FetchedSource

SCHEME = "models:"
SOURCE_PATTERN = re.compile(r"^models:/(?P<name>[^/@\s]+)(?:/(?P<version>[1-9]\d*)|@(?P<alias>[A-Za-z0-9_-]+))$")
TAGGED_KEYS = ("model.type", "model.owner", "model.owner.lob")
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_REPO_TAG = "mlflow.source.git.repoURL"
V2_DATATYPES = {bool: "BOOL", int: "INT64", float: "FP64", str: "BYTES"}


@dataclass(frozen=True)
class ModelReference:
    name: str
    version: str | None = None
    alias: str | None = None


def is_mlflow_source(source: str) -> bool:
    return source.startswith(SCHEME)


def parse_source(source: str) -> ModelReference:
    match = SOURCE_PATTERN.match(source)
    if not match:
        raise StagingError(f"{source}: an MLflow model is models:/NAME/VERSION or models:/NAME@ALIAS "
                           "(stages such as /Production are deprecated in MLflow; use an alias)")
    return ModelReference(match["name"], match["version"], match["alias"])


def tag_names() -> dict[str, str]:
    """metadata key -> MLflow tag, from the ``mlflow.tags`` section of modelgov.yaml (same name by default)."""
    from governance.config import load_config

    return dict(load_config().mlflow_tags)


def fetch_mlflow(source: str, workdir: Path | None = None, *, client: MLflowClient | None = None,
                 limits: IntakeLimits | None = None):
    """Resolve the model version, build the staged repo in a new folder; FetchedSource with commit = git tag.
    The artifacts are held to the intake limits (``max_archive_files``, ``max_extracted_bytes``) while they
    download."""
    limits = limits or IntakeLimits.load()
    ref = parse_source(source)
    own_client = client is None
    client = client or MLflowClient.from_env()
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="modelgov-mlflow-", dir=workdir))
    try:
        version = (client.get_model_version(ref.name, ref.version) if ref.version
                   else client.get_model_version_by_alias(ref.name, ref.alias or ""))
        registered = client.get_registered_model(version.name)
        run = client.get_run(version.run_id) if version.run_id else None
        metadata = map_metadata(version, registered, run, tag_names())
        repo = work / "repo"
        executable = repo / "executable"
        executable.mkdir(parents=True)
        client.download_artifacts(client.get_download_uri(version.name, version.version), executable,
                                  max_files=limits.max_archive_files, max_bytes=limits.max_extracted_bytes)
        write_staged_repo(repo, version, registered, metadata)
        commit = run.tags.get(GIT_COMMIT_TAG) if run else None
        return FetchedSource(repo, source, commit or None, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        if own_client:
            client.close()


def model_uri(version: ModelVersion) -> str:
    return f"models:/{version.name}/{version.version}"


def map_metadata(version: ModelVersion, registered: RegisteredModel, run: Run | None,
                 tags: dict[str, str]) -> dict[str, str]:
    """Our metadata keys from MLflow's; every missing required key is a Problem naming the tag to set."""
    where = model_uri(version)

    def tag(key: str) -> str:
        name = tags.get(key, key)
        return (version.tags.get(name) or registered.tags.get(name) or "").strip()

    problems: list[Problem] = []
    out: dict[str, str] = {"model.name": tag("model.name") or version.name, "model.version": version.version}
    if not NAME_PATTERN.match(out["model.name"]):
        problems.append(Problem(where, f"model.name {out['model.name']!r} must be lowercase letters, digits, '.', "
                                       f"'_' or '-': set the MLflow tag {tags.get('model.name', 'model.name')!r} "
                                       f"on registered model {version.name} to such a name"))
    for key in TAGGED_KEYS:
        value = tag(key)
        if not value:
            problems.append(Problem(where, f"{key} is missing: set the MLflow tag {tags.get(key, key)!r} on model "
                                           f"version {version.name} {version.version} or on registered model "
                                           f"{version.name}"))
        out[key] = value
    description = tag("model.description") or version.description.strip() or registered.description.strip()
    if not description:
        problems.append(Problem(where, "model.description is missing: describe model version "
                                       f"{version.name} {version.version} (or registered model {version.name}) "
                                       f"in MLflow, or set the MLflow tag {tags.get('model.description', 'model.description')!r}"))
    out["model.description"] = " ".join(description.split())
    if problems:
        raise ValidationError(problems)

    for source in (registered.tags, version.tags):  # the version's own tags win
        for key, value in sorted(source.items()):
            if key.startswith("model.") and key not in out and value.strip():
                out[key] = " ".join(value.split())
    for key in sorted(tags):  # configured tag names for optional keys too
        if key not in out and tag(key):
            out[key] = " ".join(tag(key).split())

    data = [d.strip() for d in out.get("model.training.data", "").split(",") if d.strip()]
    for dataset in sorted(run.datasets if run else (), key=lambda d: (d.name, d.digest)):
        entry = dataset_entry(dataset.name, dataset.digest, dataset.source)
        if entry not in data:
            data.append(entry)
    if data:
        out["model.training.data"] = ", ".join(data)
    out["model.mlflow.model.uri"] = model_uri(version)
    if version.run_id:
        out["model.mlflow.run.id"] = version.run_id
    if run and run.tags.get(GIT_REPO_TAG):
        out["model.mlflow.git.repo"] = run.tags[GIT_REPO_TAG]
    return out


def dataset_entry(name: str, digest: str, source: str) -> str:
    """A ``model.training.data`` entry for an MLflow dataset: its source URI (when it has one) with its digest."""
    uri = ""
    try:
        described = json.loads(source) if source else {}
    except ValueError:
        described = {}
    if isinstance(described, dict):
        for key in ("uri", "url", "path", "location"):
            if isinstance(described.get(key), str) and described[key]:
                uri = described[key]
                break
    if uri.startswith("/"):
        uri = f"file://{uri}"
    if not urlparse(uri).scheme or any(c.isspace() for c in uri):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "dataset"
        uri = f"mlflow-dataset://{safe}"
    return f"{uri.split('#', 1)[0]}#digest={digest}" if digest else uri


def write_staged_repo(repo: Path, version: ModelVersion, registered: RegisteredModel,
                      metadata: dict[str, str]) -> None:
    """metadata.txt, README.md and examples/request.json beside the downloaded executable/ folder."""
    mlmodel_path = repo / "executable" / MLFLOW_MODEL_FILE
    if not mlmodel_path.is_file():
        raise StagingError(f"{model_uri(version)}: the model's artifacts have no MLmodel file; modelgov takes "
                           "models in MLflow's format")
    try:
        mlmodel = yaml.safe_load(mlmodel_path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise StagingError(f"{model_uri(version)}: MLmodel is not readable YAML ({exc})") from exc
    flavors = [f for f in (mlmodel.get("flavors") or {}) if f != "python_function"]
    if "model.framework" not in metadata:
        metadata["model.framework"] = flavors[0] if flavors else "python_function"
    lines = [f"{key} = {_escape(value)}" for key, value in metadata.items()]
    (repo / "metadata.txt").write_text("# generated by modelgov from " + model_uri(version) + "\n"
                                       + "\n".join(lines) + "\n", encoding="utf-8")
    readme = [f"# {version.name} {version.version}", "", version.description.strip() or metadata["model.description"]]
    if registered.description.strip() and registered.description.strip() != version.description.strip():
        readme += ["", "## Registered model", "", registered.description.strip()]
    readme += ["", f"Staged by modelgov from the MLflow model version `{model_uri(version)}`"
               + (f" (run `{version.run_id}`)." if version.run_id else ".")]
    (repo / "README.md").write_text("\n".join(readme) + "\n", encoding="utf-8")
    request = v2_request_from_input_example(repo / "executable", mlmodel)
    if request is not None:
        (repo / EXAMPLE_REQUEST).parent.mkdir(exist_ok=True)
        (repo / EXAMPLE_REQUEST).write_text(json.dumps(request, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _escape(value: str) -> str:
    """A value for a Java properties line: one line, backslashes escaped, no leading blank."""
    return value.replace("\\", "\\\\").replace("\n", " ").strip()


def v2_request_from_input_example(model_dir: Path, mlmodel: dict) -> dict | None:
    """The logged input example as an Open Inference (V2) request, or None when there is none we can map.

    A DataFrame example (split orient) becomes one input per column, as MLServer's pandas codec expects."""
    info = mlmodel.get("saved_input_example_info") or {}
    path = model_dir / str(info.get("artifact_path") or "input_example.json")
    if not info or not path.is_file():
        return None
    try:
        example: Any = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if info.get("type") == "dataframe" and isinstance(example, dict) and "columns" in example:
        rows = example.get("data") or []
        inputs = []
        for i, column in enumerate(example["columns"]):
            values = [row[i] for row in rows]
            datatype = _datatype(values)
            if datatype is None:
                return None
            inputs.append({"name": str(column), "shape": [len(values), 1], "datatype": datatype, "data": values})
        return {"parameters": {"content_type": "pd"}, "inputs": inputs}
    if info.get("type") == "ndarray":
        array = example.get("inputs") if isinstance(example, dict) else example
        if isinstance(array, list) and array and all(isinstance(r, list) for r in array):
            flat = [v for row in array for v in row]
            datatype = _datatype(flat)
            if datatype and len({len(r) for r in array}) == 1:
                return {"inputs": [{"name": "input-0", "shape": [len(array), len(array[0])], "datatype": datatype,
                                    "data": flat}]}
    return None


def _datatype(values: list) -> str | None:
    kinds = {type(v) for v in values}
    if kinds == {int, float}:
        return "FP64"
    return V2_DATATYPES.get(kinds.pop()) if len(kinds) == 1 else None
