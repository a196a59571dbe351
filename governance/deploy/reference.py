"""The Atlas record is the reference: a model version names one set of bytes, in every registry, for good.

The build ``<name>/<version>@ns`` is written once, by the first deploy of that version. Everything that later
publishes, deploys, rolls back or reconciles that name and version, from any registry, is compared with it
first and refused on any difference, before anything is written:
- the content digest (``Manifest.content_digest``: every file's sha256, the executable, the metadata, the
  examples) and the executable's sha256 must be the ones recorded; identical content in another registry is a
  replica, recorded as that deploy's input location, never as a rewrite of the build;
- the identifier (the slug of ``model.name``) belongs to one spelling per namespace: ``Rental Pricing`` and
  ``rental-pricing`` are the same identifier, so the second spelling is refused, naming the first and its owner;
- two version strings of one model that the targets would see as the same number (``1.2`` and ``1.2.0``) are
  refused.
Builds recorded before content digests existed are compared by their recorded checksums and owner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from governance.atlas.client import AtlasClient, related_guids
from governance.atlas.constants import BUILD_TYPE, PROJECT_TYPE
from governance.errors import ModelIdentityTaken, RecordMismatch
from governance.registries.base import Manifest
from governance.staging.metadata import ModelMetadata


@dataclass(frozen=True)
class RecordedBuild:
    """What Atlas recorded for one model name and version when it was first deployed."""

    qualified_name: str
    guid: str
    model_version: str
    owner: str | None
    registry_uri: str | None
    executable_sha256: str | None
    content_digest: str | None
    checksums: Mapping[str, str] = field(default_factory=dict)
    project_guid: str = ""

    @classmethod
    def of(cls, entity: dict) -> RecordedBuild:
        attrs = entity.get("attributes") or {}
        project = (entity.get("relationshipAttributes") or {}).get("project") or {}
        return cls(project_guid=project.get("guid") or "" if isinstance(project, dict) else "",
                   qualified_name=attrs.get("qualifiedName") or "", guid=entity.get("guid") or "",
                   model_version=str(attrs.get("modelVersion") or ""), owner=attrs.get("owner"),
                   registry_uri=attrs.get("registryUri"), executable_sha256=attrs.get("executableSha256"),
                   content_digest=attrs.get("contentDigest"), checksums=dict(attrs.get("artifactChecksums") or {}))

    @classmethod
    def written(cls, manifest: Manifest, location: str, qualified_name: str, guid: str, project_guid: str = ""
                ) -> RecordedBuild:
        """The build a deploy just wrote from ``manifest`` (what later writes of the same run refer to)."""
        return cls(project_guid=project_guid, qualified_name=qualified_name, guid=guid, model_version=manifest.model_version,
                   owner=(manifest.metadata or {}).get("owner"), registry_uri=location,
                   executable_sha256=_executable_sha256(manifest), content_digest=manifest.content_digest, checksums={f.path: f.sha256 for f in manifest.files})

    def differences(self, manifest: Manifest) -> list[str]:
        """How ``manifest`` differs from this record (empty: the same version, here or as a replica)."""
        out: list[str] = []
        ours = {f.path: f.sha256 for f in manifest.files}
        for path in sorted(set(ours) | set(self.checksums)):
            if path not in self.checksums:
                out.append(f"{path} is not in the recorded version")
            elif path not in ours:
                out.append(f"{path} is missing (recorded sha256 {self.checksums[path]})")
            elif ours[path] != self.checksums[path]:
                out.append(f"{path} has sha256 {ours[path]}, recorded {self.checksums[path]}")
        executable = _executable_sha256(manifest)
        if self.executable_sha256 and executable != self.executable_sha256 and \
                not any(d.startswith(f"{manifest.executable} ") for d in out):
            out.append(f"executable {manifest.executable} has sha256 {executable}, recorded {self.executable_sha256}")
        owner = (manifest.metadata or {}).get("owner")
        if owner is not None and self.owner is not None and owner != self.owner:
            out.append(f"owner is {owner!r}, recorded {self.owner!r}")
        if self.content_digest and manifest.content_digest != self.content_digest and not out:
            out.append("the manifest's metadata, examples or training-data versions differ from the recorded ones")
        return out


def recorded_build(client: AtlasClient, namespace: str, name: str, version: str) -> RecordedBuild | None:
    """The build Atlas recorded for ``name`` ``version`` in ``namespace`` (a consistent read), or None."""
    found = _by_unique(client, BUILD_TYPE, f"{name}/{version}@{namespace}")
    return RecordedBuild.of(found) if found else None


@dataclass(frozen=True)
class ModelEntities:
    """A model's project and its active builds, from one consistent read (``read_model``): what the reference
    check and the model's deployment history both start from, so a deploy reads them once, not once each."""

    project: dict | None
    builds: tuple[dict, ...] = ()
    referred: Mapping[str, dict] = field(default_factory=dict, repr=False)  # what else the read carried

    def deployments(self, client: AtlasClient) -> list[dict]:
        """The active entities at the builds' ``deployments`` ends: those the read carried (a real Atlas maps
        COMPOSITION children recursively) and the others in bulk, paged, none when there are none."""
        return related_entities(client, self.builds, "deployments", self.referred)

    def build(self, qualified_name: str) -> dict | None:
        return next((b for b in self.builds if (b.get("attributes") or {}).get("qualifiedName") == qualified_name),
                    None)


def read_model(client: AtlasClient, namespace: str, name: str) -> ModelEntities:
    """The project ``<name>@ns`` and its builds in one ``GET .../uniqueAttribute/type/ml_project``: a build is
    owned by its project (COMPOSITION ``ml_project_model_build``; Atlas deletes the builds with their project),
    so Atlas returns the builds in full as the project's referred entities. Builds a server leaves out of
    ``referredEntities`` are read in bulk. No active project: the model was never recorded (no build either)."""
    found = client.get_entity_by_unique(PROJECT_TYPE, f"{name}@{namespace}")
    project = (found or {}).get("entity") or {}
    if not project or project.get("status", "ACTIVE") != "ACTIVE":
        return ModelEntities(None)
    referred = (found or {}).get("referredEntities") or {}
    return ModelEntities(project, tuple(related_entities(client, [project], "builds", referred)), referred)


def read_models(client: AtlasClient, namespace: str, names: Iterable[str]) -> dict[str, ModelEntities]:
    """``read_model`` for many models at once (a batch): their projects in bulk by unique name
    (``AtlasClient.get_entities_by_unique``), builds the answers did not carry in bulk by guid. Every name asked
    for has an answer; a model never recorded has no project."""
    names = list(dict.fromkeys(names))
    found = client.get_entities_by_unique(PROJECT_TYPE, [f"{n}@{namespace}" for n in names])
    referred = found.get("referredEntities") or {}
    projects = {(p.get("attributes") or {}).get("qualifiedName"): p for p in found.get("entities") or []
                if p.get("status", "ACTIVE") == "ACTIVE"}
    listed = [p for p in (projects.get(f"{n}@{namespace}") for n in names) if p]
    builds = {b.get("guid"): b for b in related_entities(client, listed, "builds", referred)}
    out = {}
    for name in names:
        project = projects.get(f"{name}@{namespace}")
        if project is None:
            out[name] = ModelEntities(None)
            continue
        mine = tuple(builds[g] for g in related_guids(project, "builds") if g in builds)
        out[name] = ModelEntities(project, mine, referred)
    return out


def related_entities(client: AtlasClient, entities: list[dict] | tuple[dict, ...], relationship: str,
                     referred: Mapping[str, dict]) -> list[dict]:
    """The active entities at the ``relationship`` ends of ``entities``: from ``referred`` where an answer
    carried them, the others in bulk (``GET /v2/entity/bulk``, paged; no call when all were carried)."""
    guids = list(dict.fromkeys(g for e in entities for g in related_guids(e, relationship)))
    missing = [g for g in guids if g not in referred]
    read = {e.get("guid"): e for e in client.get_active_entities(missing)} if missing else {}
    out = [referred.get(g) or read.get(g) for g in guids]
    return [e for e in out if e and e.get("status", "ACTIVE") == "ACTIVE"]


def check_against_record(client: AtlasClient, namespace: str, manifest: Manifest, location: str,
                         model: ModelEntities | None = None) -> RecordedBuild | None:
    """Refuse ``manifest`` (at ``location``) unless it is exactly the version Atlas recorded for its name and
    version, or a new version whose identifier and version number no other spelling or version string holds.
    Returns the recorded build (None: this version was never recorded, the deploy will write it). ``model``:
    the model's entities when the caller already read them (``read_model``), else they are read here."""
    name, version = manifest.model_name, manifest.model_version
    model = model if model is not None else read_model(client, namespace, name)
    project = model.project
    found = model.build(f"{name}/{version}@{namespace}")
    build = None
    if found is not None:
        build = RecordedBuild.of(found)
        if not build.project_guid and project:
            build = replace(build, project_guid=project.get("guid") or "")
    meta = _metadata(manifest)
    if project and meta is not None:
        _check_spelling(project, meta, namespace)
    if build is not None:
        problems = build.differences(manifest)
        if problems:
            raise RecordMismatch(
                f"{location}: {name} {version} is not the version Atlas recorded (build {build.qualified_name}, "
                f"first registered at {build.registry_uri or 'an unrecorded location'}): content digest "
                f"{manifest.content_digest} here, recorded {build.content_digest or '(not recorded)'}; "
                f"executable sha256 {_executable_sha256(manifest) or '(none)'} "
                f"here, recorded {build.executable_sha256}; differs in: {'; '.join(problems)}. A model version "
                f"names one set of bytes: publish these bytes as a new model.version", recorded=build)
        return build
    if project and meta is not None:
        _check_version_number(model.builds, meta, location)
    return None


def _check_spelling(project: dict, meta: ModelMetadata, namespace: str) -> None:
    attrs = project.get("attributes") or {}
    taken = attrs.get("name")
    if taken is not None and taken != meta.display_name:
        raise ModelIdentityTaken(
            f"model.name {meta.display_name!r} maps to the identifier {meta.name!r}, which Atlas namespace "
            f"{namespace} already holds for the model {taken!r} (owner {attrs.get('owner') or 'unknown'}); "
            f"write model.name exactly as {taken!r} for a new version of that model, or choose another name")


def _check_version_number(builds: tuple[dict, ...], meta: ModelMetadata, location: str) -> None:
    """Targets order versions as one integer (``ModelMetadata.version_number``): two spellings of one number
    would be one version on the target and two in the record."""
    for entity in builds:
        attrs = entity.get("attributes") or {}
        other = str(attrs.get("modelVersion") or "")
        if other and other != meta.version and attrs.get("version") == meta.version_number:
            raise ModelIdentityTaken(
                f"{location}: model.version {meta.version!r} of {meta.name} is the same version number "
                f"({meta.version_number}) as the recorded version {other!r} (owner {attrs.get('owner')}); "
                f"targets would serve both as one version: choose another model.version")


def _metadata(manifest: Manifest) -> ModelMetadata | None:
    if manifest.metadata is None:
        return None
    try:
        return ModelMetadata.from_dict(manifest.metadata)
    except (KeyError, TypeError):
        return None


def _executable_sha256(manifest: Manifest) -> str | None:
    """The executable's sha256 as the manifest lists it; None when a (forged) manifest lists no such entry."""
    return next((f.sha256 for f in manifest.files if f.path == manifest.executable), None)


def _by_unique(client: AtlasClient, type_name: str, qualified_name: str) -> dict | None:
    """The ACTIVE entity with this qualifiedName, or None."""
    found = client.get_entity_by_unique(type_name, qualified_name)
    entity = (found or {}).get("entity") or {}
    return entity if entity and entity.get("status", "ACTIVE") == "ACTIVE" else None
