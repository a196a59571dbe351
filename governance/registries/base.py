"""The model registry interface: immutable, checksummed model versions at ``<root>/<name>/<version>/``.

A version is complete only once its manifest (``MANIFEST.json``) exists: the manifest is written last and
is the commit marker. Publishing the same bytes again is a no-op; different bytes for an existing version
are refused and the existing version is left untouched.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

from governance.checksums import ArtifactFile
from governance.errors import ImmutableVersionError, RegistryError
from governance.staging.repo import StagedRepo

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    """The commit record of one registry version: which files, their sha256 and size, and where they came from."""

    model_name: str
    model_version: str
    files: tuple[ArtifactFile, ...]
    executable: str
    source: str
    commit: str | None
    published_at: str  # ISO-8601 UTC
    format: int = MANIFEST_FORMAT
    # self-description (like an OCI image's config): enough to deploy this version again without its staging
    # repo. None in manifests written before versions described themselves.
    metadata: dict | None = field(default=None, compare=False)
    example_request: Any = field(default=None, compare=False)
    example_response: Any = field(default=None, compare=False)
    # the exact training-data versions seen at validation (DataVersion.to_dict), e.g. a local file's sha256
    data_versions: tuple[dict, ...] = field(default=(), compare=False)

    def to_json(self) -> str:
        data = {
            "format": self.format, "model_name": self.model_name, "model_version": self.model_version,
            "executable": self.executable, "source": self.source, "commit": self.commit,
            "published_at": self.published_at, "files": [f.to_dict() for f in self.files],
        }
        if self.metadata is not None:
            data.update(metadata=self.metadata, example_request=self.example_request,
                        example_response=self.example_response)
        if self.data_versions:
            data["data_versions"] = list(self.data_versions)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        return cls(model_name=data["model_name"], model_version=data["model_version"],
                   files=tuple(ArtifactFile.from_dict(f) for f in data["files"]), executable=data["executable"],
                   source=data["source"], commit=data.get("commit"), published_at=data["published_at"],
                   format=int(data.get("format", MANIFEST_FORMAT)), metadata=data.get("metadata"),
                   example_request=data.get("example_request"), example_response=data.get("example_response"),
                   data_versions=tuple(data.get("data_versions") or ()))

    @classmethod
    def parse(cls, text: str, where: str) -> Manifest:
        """A stored manifest; a damaged one is a RegistryError naming where it lives."""
        try:
            return cls.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{where} is not a valid manifest: {exc}") from exc

    @classmethod
    def for_staged(cls, staged: StagedRepo) -> Manifest:
        return cls(model_name=staged.metadata.name, model_version=staged.metadata.version, files=staged.files,
                   executable=staged.executable, source=staged.source, commit=staged.commit,
                   published_at=datetime.now(UTC).isoformat(timespec="seconds"),
                   metadata=staged.metadata.to_dict(), example_request=staged.example_request,
                   example_response=staged.example_response,
                   data_versions=tuple(v.to_dict() for v in staged.data_versions))

    def same_content(self, files: tuple[ArtifactFile, ...]) -> bool:
        return sorted(self.files, key=lambda f: f.path) == sorted(files, key=lambda f: f.path)


@dataclass(frozen=True)
class RegistryVersion:
    """A complete, immutable version in a registry. ``location`` is the URI of the version folder."""

    registry_uri: str
    location: str
    manifest: Manifest
    created: bool = field(default=True, compare=False)  # False when an identical version already existed

    def artifact_uri(self, path: str) -> str:
        return f"{self.location.rstrip('/')}/{path}"

    @property
    def executable_uri(self) -> str:
        return self.artifact_uri(self.manifest.executable)


class Registry(ABC):
    """One registry backend per URI scheme (see ``governance.registries.get_registry``)."""

    scheme: ClassVar[str]

    def __init__(self, uri: str):
        self.uri = uri

    @abstractmethod
    def publish(self, staged: StagedRepo, *, progress: bool = False) -> RegistryVersion:
        """Copy the staged files into ``<root>/<name>/<version>/``, write the manifest last, return the version.

        Raises ImmutableVersionError when the version exists with different bytes, IntegrityError when a
        file's bytes changed since validation. A failure leaves no manifest, so no version that looks complete.
        """

    @abstractmethod
    def lookup(self, name: str, version: str) -> RegistryVersion | None:
        """The complete version, or None when it does not exist or has no manifest (incomplete)."""

    @abstractmethod
    def open_artifact(self, version: RegistryVersion, path: str) -> Iterator[bytes]:
        """Stream one file's bytes from the registry copy."""

    def verify(self, version: RegistryVersion) -> list[str]:
        """Re-read every file of the registry copy; return one message per mismatch (empty when intact)."""
        import hashlib

        problems = []
        for f in version.manifest.files:
            h = hashlib.sha256()
            size = 0
            try:
                for chunk in self.open_artifact(version, f.path):
                    h.update(chunk)
                    size += len(chunk)
            except Exception as exc:  # noqa: BLE001 - reported, not raised: verify lists every problem
                problems.append(f"{version.artifact_uri(f.path)}: cannot be read ({exc})")
                continue
            if size != f.size or h.hexdigest() != f.sha256:
                problems.append(f"{version.artifact_uri(f.path)}: sha256 {h.hexdigest()} size {size}, "
                                f"manifest says sha256 {f.sha256} size {f.size}")
        return problems

    def version_location(self, name: str, version: str) -> str:
        return f"{self.uri.rstrip('/')}/{name}/{version}"

    def existing_version(self, staged: StagedRepo) -> RegistryVersion | None:
        """The complete version with identical content, None when there is none; refuses different content."""
        meta = staged.metadata
        existing = self.lookup(meta.name, meta.version)
        return existing_or_refuse(existing.manifest if existing else None, staged, self.uri,
                                  self.version_location(meta.name, meta.version))


def open_staged(staged: StagedRepo, rel: str) -> BinaryIO:
    """Open one staged file for copying; an unreadable file is a RegistryError naming it."""
    src = staged.root / rel
    try:
        return src.open("rb")
    except OSError as exc:
        raise RegistryError(f"cannot read {src}: {exc.strerror or exc}") from exc


def existing_or_refuse(existing: Manifest | None, staged: StagedRepo, registry_uri: str,
                       location: str) -> RegistryVersion | None:
    """Shared immutability rule: identical bytes -> the existing version; different bytes -> refuse."""
    if existing is None:
        return None
    if existing.same_content(staged.files):
        return RegistryVersion(registry_uri, location, existing, created=False)
    changed = sorted({f.path for f in existing.files} ^ {f.path for f in staged.files}
                     | {f.path for f in staged.files
                        for e in existing.files if e.path == f.path and e.sha256 != f.sha256})
    raise ImmutableVersionError(
        f"{location} already exists with different content (differs in: {', '.join(changed)}); "
        f"registry versions are immutable: bump model.version instead")
