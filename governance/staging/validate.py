"""Validate a fetched staged repo: every problem is reported at once, naming its file and line or key."""

from __future__ import annotations

import json
import os
from pathlib import Path

from governance.checksums import ArtifactFile, hash_file
from governance.errors import Problem, ValidationError
from governance.staging import data_versions
from governance.staging.limits import IntakeLimits, describe_bytes
from governance.staging.metadata import is_repo_relative, parse_metadata
from governance.staging.repo import EXAMPLE_REQUEST, EXAMPLE_RESPONSE, MLFLOW_MODEL_FILE, StagedRepo

METADATA_FILES = ("metadata.txt", "modelMetadata.txt")  # the second is the original framework's name
LEGACY_METADATA = "modelMetadata.txt"  # read like Java's Properties.load(InputStream): ISO-8859-1
METADATA_SIZE_LIMIT = 1024 * 1024  # a metadata file is a few lines; anything bigger is a mistake
IGNORED_DIRS = {".git"}


def _walk_files(root: Path, problems: list[Problem]) -> list[str]:
    """Relative POSIX paths of every regular file; links and special files are problems."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        here = Path(dirpath)
        for name in list(dirnames):
            if (here / name).is_symlink():
                problems.append(Problem((here / name).relative_to(root).as_posix(),
                                        "is a symbolic link; staged repos must hold plain files"))
                dirnames.remove(name)
        for name in sorted(filenames):
            full = here / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                problems.append(Problem(rel, "is a symbolic link; staged repos must hold plain files"))
            elif not full.is_file():
                problems.append(Problem(rel, "is not a regular file"))
            else:
                found.append(rel)
    return found


def _read_metadata(path: Path, rel: str, problems: list[Problem]) -> str | None:
    """The metadata text; too big, unreadable or undecodable is a problem naming the file (and size/byte)."""
    size = path.stat().st_size
    if size > METADATA_SIZE_LIMIT:
        problems.append(Problem(rel, f"is {size} bytes; the limit for a metadata file is {METADATA_SIZE_LIMIT} "
                                     "bytes (1 MiB)"))
        return None
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if rel == LEGACY_METADATA:
            return data.decode("iso-8859-1")  # what the original framework (java.util.Properties) read
        problems.append(Problem(rel, f"is not UTF-8 text (byte {exc.start})"))
        return None


def _small_enough(root: Path, rel: str, limit: int, problems: list[Problem]) -> bool:
    """Examples are copied into the manifest and into one Atlas attribute: one over ``limit`` is a problem."""
    size = (root / rel).stat().st_size
    if size > limit:
        problems.append(Problem(rel, f"is {size} bytes; the limit for an example is {limit} bytes "
                                     f"({describe_bytes(limit)}, max_example_bytes)"))
        return False
    return True


def _load_json(root: Path, rel: str, problems: list[Problem]):
    try:
        return json.loads((root / rel).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problems.append(Problem(rel, "is not UTF-8 text"))
    except json.JSONDecodeError as exc:
        problems.append(Problem(rel, f"is not valid JSON: {exc.msg}", exc.lineno))
    return None


def validate_repo(root: Path, *, source: str | None = None, commit: str | None = None,
                  limits: IntakeLimits | None = None) -> StagedRepo:
    """Check a staged repo folder and return it as a StagedRepo, or raise ValidationError listing every problem.
    ``limits`` (default: ``IntakeLimits.load()``) bound the examples and say where local training data may be
    read from."""
    root = Path(root)
    limits = limits or IntakeLimits.load()
    problems: list[Problem] = []
    if not root.is_dir():
        raise ValidationError([Problem(str(root), "is not a folder")])

    files = _walk_files(root, problems)
    present = [name for name in METADATA_FILES if name in files]
    metadata = None
    versions: list[data_versions.DataVersion] = []
    metadata_file = present[0] if present else METADATA_FILES[0]
    if not present:
        problems.append(Problem("metadata.txt", "is missing (the legacy name modelMetadata.txt is also accepted)"))
    else:
        if len(present) > 1:
            problems.append(Problem(present[1], f"both {present[0]} and {present[1]} exist; keep only metadata.txt"))
        text = _read_metadata(root / metadata_file, metadata_file, problems)
        if text is not None:
            metadata, meta_problems = parse_metadata(text, metadata_file)
            problems.extend(meta_problems)
            for entry in metadata.training_data if metadata else ():
                if is_repo_relative(entry) and entry not in files:
                    problems.append(Problem(metadata_file, f"model.training.data entry {entry!r} is not a file "
                                                           "in the staged repo"))
            if metadata:
                versions, version_problems = data_versions.resolve(
                    metadata.training_data, metadata_file, readable_roots=(root, *map(Path, limits.data_roots)))
                problems.extend(version_problems)

    if "README.md" not in files:
        problems.append(Problem("README.md", "is missing; describe the model and project for its users"))
    elif not (root / "README.md").read_text(encoding="utf-8", errors="replace").strip():
        problems.append(Problem("README.md", "is empty"))

    executables = [f for f in files if f.startswith("executable/") and not Path(f).name.startswith(".")]
    mlflow_model = f"executable/{MLFLOW_MODEL_FILE}"
    if mlflow_model in files:
        # a model in MLflow's format is a folder (MLmodel, model files, environment); MLmodel names it
        executables = [mlflow_model]
    folders = [] if mlflow_model in files else \
        sorted(p.name for p in (root / "executable").iterdir() if p.is_dir() and not p.is_symlink()) \
        if (root / "executable").is_dir() else []
    if not (root / "executable").is_dir():
        problems.append(Problem("executable/", "is missing; put the serialized model there"))
    elif folders:
        for folder in folders:
            problems.append(Problem(f"executable/{folder}/", "is a folder; executable/ must hold exactly one file, "
                                                             "the serialized model (zip a bundle folder into one "
                                                             "file, e.g. an MLeap bundle .zip)"))
    elif len(executables) != 1:
        listing = ", ".join(executables) if executables else "none"
        problems.append(Problem("executable/", f"must hold exactly one serialized model file, found {len(executables)}"
                                               f" ({listing})"))
    else:
        if (root / executables[0]).stat().st_size == 0:
            problems.append(Problem(executables[0], "is empty"))

    example_request = example_response = None
    if EXAMPLE_REQUEST in files and _small_enough(root, EXAMPLE_REQUEST, limits.max_example_bytes, problems):
        example_request = _load_json(root, EXAMPLE_REQUEST, problems)
    if EXAMPLE_RESPONSE in files:
        if _small_enough(root, EXAMPLE_RESPONSE, limits.max_example_bytes, problems):
            example_response = _load_json(root, EXAMPLE_RESPONSE, problems)
        if EXAMPLE_REQUEST not in files:
            problems.append(Problem(EXAMPLE_RESPONSE, f"has no matching {EXAMPLE_REQUEST}"))

    if problems:
        raise ValidationError(problems)

    assert metadata is not None
    artifacts = []
    for rel in files:
        sha, size = hash_file(root / rel)
        artifacts.append(ArtifactFile(rel, sha, size))
    return StagedRepo(
        root=root, source=source or str(root), commit=commit, metadata=metadata, metadata_file=metadata_file,
        executable=executables[0], files=tuple(artifacts), example_request=example_request,
        example_response=example_response, data_versions=tuple(versions),
    )
