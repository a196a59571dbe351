"""The exact version of each training dataset, read from its ``model.training.data`` entry.

"Trained on what" must name the data version, not just a table or a folder, so two builds trained on two
snapshots of one table show two different datasets in lineage. An entry may carry its version as:

  iceberg://CATALOG/DB.TABLE@SNAPSHOT_ID       an Iceberg table snapshot (kind ``iceberg_snapshot``)
  s3://BUCKET/KEY?versionId=ID                 a versioned S3 object (kind ``s3_version_id``)
  URI#sha256=HEX                               a file or HDFS path with its content hash (kind ``sha256``)
  URI#digest=DIGEST                            an MLflow dataset with its digest (kind ``mlflow_digest``)

Local files (``file://`` or absolute paths) are hashed at validation, but only under the staged repo or a
configured data root (``data_roots``, ``MODELGOV_DATA_ROOTS``); any other local path is refused. A stated
sha256 that differs from the file is a validation problem. Files inside the staged repo are versioned by the registry
(their sha256 is in the manifest), so they carry no separate version here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlparse, urlunparse

from governance.checksums import hash_file
from governance.errors import Problem

ICEBERG = re.compile(r"^iceberg://(?P<catalog>[^/@\s]+)/(?P<table>[^/@\s]+\.[^/@\s]+)(@(?P<snapshot>[^@\s]*))?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
KINDS = ("iceberg_snapshot", "s3_version_id", "sha256", "mlflow_digest")


@dataclass(frozen=True)
class DataVersion:
    """One training-data entry: where the data lives and, when known, which exact version was used."""

    entry: str                 # as written in model.training.data
    location: str              # the entry without its version (the table, object or path)
    version: str | None = None
    kind: str | None = None    # one of KINDS when version is set

    @property
    def versioned_uri(self) -> str:
        """The location with its version, in the entry syntax above: one name per exact data version."""
        if self.version is None:
            return self.location
        if self.kind == "iceberg_snapshot":
            return f"{self.location}@{self.version}"
        if self.kind == "s3_version_id":
            return f"{self.location}?{urlencode({'versionId': self.version})}"
        return f"{self.location}#{'sha256' if self.kind == 'sha256' else 'digest'}={self.version}"

    def to_dict(self) -> dict:
        return {"entry": self.entry, "location": self.location, "version": self.version, "kind": self.kind}


def parse_entry(entry: str) -> tuple[DataVersion | None, str | None]:
    """The entry's location and stated version, or a problem message."""
    if entry.startswith("iceberg:"):
        match = ICEBERG.match(entry)
        if not match:
            return None, (f"model.training.data entry {entry!r}: an Iceberg table is "
                          "iceberg://CATALOG/DB.TABLE@SNAPSHOT_ID")
        location = f"iceberg://{match['catalog']}/{match['table']}"
        snapshot = match["snapshot"]
        if snapshot is None:
            return DataVersion(entry, location), None
        if not re.fullmatch(r"-?\d+", snapshot):
            return None, f"model.training.data entry {entry!r}: the Iceberg snapshot id must be a number"
        return DataVersion(entry, location, snapshot, "iceberg_snapshot"), None
    base, _, fragment = entry.partition("#")
    if fragment:
        key, _, value = fragment.partition("=")
        if key == "sha256":
            if not SHA256.match(value):
                return None, f"model.training.data entry {entry!r}: #sha256= needs 64 lowercase hex digits"
            return DataVersion(entry, base, value, "sha256"), None
        if key == "digest":
            if not value:
                return None, f"model.training.data entry {entry!r}: #digest= is empty"
            return DataVersion(entry, base, value, "mlflow_digest"), None
        return None, f"model.training.data entry {entry!r}: unknown version marker #{key} (use #sha256= or #digest=)"
    parsed = urlparse(entry)
    if parsed.scheme in ("s3", "s3a") and parsed.query:
        query = parse_qs(parsed.query)
        unknown = set(query) - {"versionId"}
        if unknown or len(query.get("versionId", [])) != 1 or not query["versionId"][0]:
            return None, (f"model.training.data entry {entry!r}: the only query an S3 entry takes is one "
                          "?versionId=ID")
        location = urlunparse(parsed._replace(query=""))
        return DataVersion(entry, location, query["versionId"][0], "s3_version_id"), None
    return DataVersion(entry, entry), None


def _local_file(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if not parsed.scheme and location.startswith("/"):
        return Path(location)
    return None


def _under(path: Path, roots: tuple[Path, ...]) -> bool:
    """Whether ``path``, with every symbolic link resolved, lies inside one of ``roots`` (also resolved)."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return False
    return any(real.is_relative_to(root.resolve()) for root in roots)


def resolve(entries: tuple[str, ...], filename: str, *,
            readable_roots: tuple[Path, ...] = ()) -> tuple[list[DataVersion], list[Problem]]:
    """Every entry's data version; local files are hashed (and a stated sha256 checked against them).

    A local file is read only when it lies (symbolic links resolved) under one of ``readable_roots`` (the
    staged repo and the configured data roots); any other local path is a problem, so a staged repo cannot
    make the deploy host hash, or confirm the hash of, an arbitrary file it can read."""
    from governance.staging.metadata import is_repo_relative

    versions: list[DataVersion] = []
    problems: list[Problem] = []
    for entry in entries:
        if is_repo_relative(entry):
            versions.append(DataVersion(entry, entry))
            continue
        parsed, problem = parse_entry(entry)
        if problem:
            problems.append(Problem(filename, problem))
            continue
        assert parsed is not None
        local = _local_file(parsed.location)
        if local is not None and parsed.kind in (None, "sha256"):
            if not _under(local, readable_roots):
                problems.append(Problem(filename, f"model.training.data entry {entry!r}: {local} is outside the "
                                                  "staged repo and every configured data root (data_roots in "
                                                  "modelgov.yaml or MODELGOV_DATA_ROOTS); refusing to read it"))
                continue
            if local.is_file():
                digest, _ = hash_file(local)
                if parsed.version and parsed.version != digest:
                    problems.append(Problem(filename, f"model.training.data entry {entry!r}: {local} has sha256 "
                                                      f"{digest}, not the one stated"))
                    continue
                parsed = DataVersion(entry, parsed.location, digest, "sha256")
            elif parsed.version is None:
                problems.append(Problem(filename, f"model.training.data entry {entry!r}: {local} is not a "
                                                  "readable file here, so its sha256 cannot be recorded (add "
                                                  "#sha256=HEX, or validate where the file is)"))
                continue
        versions.append(parsed)
    return versions, problems
