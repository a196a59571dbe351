"""The Release a target deploys: from a just-published staged repo, or from the registry alone.

Rollback and reconcile deploy a version again without its staging repo: a registry version describes
itself (its manifest carries the model's metadata and the example request and expected response), so the
release a target needs is rebuilt from the registry and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from governance.errors import RegistryError
from governance.registries.base import Registry, RegistryVersion
from governance.staging.data_versions import DataVersion
from governance.staging.metadata import ModelMetadata
from governance.staging.repo import StagedRepo
from governance.targets.base import Release


def release_for(staged: StagedRepo, registered: RegistryVersion, registry: Registry) -> Release:
    """The release of a staged repo that was just published as ``registered``."""
    return Release(metadata=staged.metadata, registered=registered, registry=registry,
                   example_request=staged.example_request, example_response=staged.example_response)


def registered_version(registry: Registry, name: str, version: str) -> RegistryVersion:
    """The complete version; a RegistryError naming where it was looked for otherwise."""
    found = registry.lookup(name, version)
    if found is None:
        raise RegistryError(f"{registry.version_location(name, version)}: no complete version (no manifest); "
                            f"only registered versions can be deployed again")
    return found


def metadata_of(version: RegistryVersion) -> ModelMetadata:
    if version.manifest.metadata is None:
        raise RegistryError(f"{version.location}: its manifest predates self-describing versions (no model "
                            f"metadata); deploy it once from its staging repo instead")
    try:
        return ModelMetadata.from_dict(version.manifest.metadata)
    except (KeyError, TypeError) as exc:
        raise RegistryError(f"{version.location}: manifest metadata is incomplete ({exc})") from exc


def release_from_registry(registry: Registry, name: str, version: str) -> Release:
    """What a target needs to serve ``name`` ``version`` again, read from the registry only."""
    registered = registered_version(registry, name, version)
    manifest = registered.manifest
    return Release(metadata=metadata_of(registered), registered=registered, registry=registry,
                   example_request=manifest.example_request, example_response=manifest.example_response)


def staged_view(release: Release) -> StagedRepo:
    """The registry version seen as the validated repo it was published from, for building a deployment record.

    ``root`` points at no local folder: nothing may read staging files through it.
    """
    manifest = release.registered.manifest
    return StagedRepo(root=Path("/nonexistent-registry-only"), source=manifest.source, commit=manifest.commit,
                      metadata=release.metadata, metadata_file="metadata.txt", executable=manifest.executable,
                      files=manifest.files, example_request=release.example_request,
                      example_response=release.example_response,
                      data_versions=tuple(DataVersion(**v) for v in manifest.data_versions))
