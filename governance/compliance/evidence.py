"""What an evidence pack holds (``modelgov evidence``): everything an auditor asks about some deployments, copied
out of Atlas and the registry while they still answer, so the pack can be checked without either
(``governance.compliance.pack`` writes and checks it).

For a deployment, or every deployment of a model whose window meets ``[since, until)``:

  EVIDENCE.json                               scope, when and from where it was made, the deployments
  cards/<model>-<version>.{json,md}           the model card of each version (``governance.compliance.card``)
  bom/<model>-<version>-<deployment id>.cdx.json   each deployment's CycloneDX ML-BOM
  history/<model>.{json,csv}                  the model's deployments in the window
  report/audit-report.{md,html}               the audit report of the window, for these models only
  atlas-audit/<typeName>-<guid>.json          Atlas's own audit events of every entity involved (deployments,
                                              their deploy processes, builds, projects, train processes)
  registry/<model>/<version>/MANIFEST.json    the registry manifest, as stored (what model.sig signs)
  registry/<model>/<version>/model.sig        the version's signature, when signed
  registry/<model>/.approvals/<version>/...   the signed approvals kept beside the version
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from governance.atlas.client import AtlasClient
from governance.atlas.constants import DEFAULT_NAMESPACE, DEPLOY_PROCESS_TYPE, TRAIN_PROCESS_TYPE
from governance.compliance.bom import bom
from governance.compliance.card import card
from governance.compliance.card import render as render_card
from governance.compliance.queries import DEPLOYMENT_FIELDS, Deployment
from governance.compliance.report import build_report
from governance.compliance.report import render as render_report
from governance.compliance.timeline import history
from governance.compliance.times import iso, to_millis
from governance.compliance.trace import deployment_of, load_deployment, related_guid
from governance.errors import GovernanceError
from governance.safe_output import write_csv
from governance.staging.metadata import slugify

AUDIT_EVENTS = 1000  # per entity: Atlas's own audit trail of a deployment or build is a handful of events
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class NothingToPack(GovernanceError):
    """The scope names no recorded deployment."""


@dataclass(frozen=True)
class Scope:
    """Which deployments a pack is about: one (``deployment``), or a model's within ``[since, until)``."""

    deployment: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def to_dict(self) -> dict:
        return {"deployment": self.deployment, "model": self.model,
                "since": iso(to_millis(self.since)) if self.since else None,
                "until": iso(to_millis(self.until)) if self.until else None}


def _name(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._") or "_"


def deployments_in(client: AtlasClient, scope: Scope) -> list[dict]:
    """The deployment entities of the scope, oldest first."""
    if scope.deployment:
        return [load_deployment(client, scope.deployment)["entity"]]
    assert scope.model
    since = to_millis(scope.since) if scope.since else None
    until = to_millis(scope.until) if scope.until else None
    rows = [d for d in history(client, slugify(scope.model))
            if (until is None or (d.deployed_ms or 0) < until)
            and (since is None or d.stopped_ms is None or d.stopped_ms >= since)]
    if not rows:
        raise NothingToPack(f"{scope.model}: no deployment recorded in that window")
    by_guid = {e["guid"]: e for e in client.get_active_entities([d.guid for d in rows])}
    return [by_guid[d.guid] for d in rows if d.guid in by_guid]


def collect(client: AtlasClient, atlas_url: str, scope: Scope) -> dict[str, bytes]:
    """Every file of the pack (path -> bytes), read from Atlas and the registries now."""
    entities = deployments_in(client, scope)
    deployments = [deployment_of(e) for e in entities]
    namespace = deployments[0].qualified_name.rsplit("@", 1)[-1] if deployments else DEFAULT_NAMESPACE
    since = scope.since or _moment(min(d.deployed_ms or 0 for d in deployments))
    until = scope.until or _moment(max(_end(d) for d in deployments) + 1)
    files: dict[str, bytes] = {}
    involved: dict[str, str] = {}  # guid -> typeName, for Atlas's audit events
    versions: dict[tuple[str, str], dict] = {}
    for entity, d in zip(entities, deployments, strict=True):
        involved[d.guid] = entity["typeName"]
        base, _, ns = d.qualified_name.rpartition("@")
        process = client.get_entity_by_unique(DEPLOY_PROCESS_TYPE, f"{base}/deploy@{ns}")
        if process:
            involved[process["entity"]["guid"]] = DEPLOY_PROCESS_TYPE
        document = bom(client, d.guid, atlas_url)
        deployment_id = d.qualified_name.rsplit("@", 1)[0].rsplit("/", 1)[-1]
        files[f"bom/{_name(d.model_name)}-{_name(d.model_version)}-{_name(deployment_id)}.cdx.json"] = _json(document)
        key = (d.model_name, d.model_version)
        if key not in versions:
            versions[key] = card(client, d.model_name, d.model_version, atlas_url, namespace)
    for (name, version), model_card in versions.items():
        stem = f"cards/{_name(name)}-{_name(version)}"
        files[f"{stem}.json"] = render_card(model_card, "json").encode()
        files[f"{stem}.md"] = render_card(model_card, "md").encode()
        involved[model_card["model"]["guid"]] = "modelgov_model_build"
        _more_entities(client, model_card, namespace, involved)
        files.update(_registry_files(model_card))
    models = sorted({d.model_name for d in deployments})
    since_ms, until_ms = to_millis(since), to_millis(until)
    for model in models:
        rows = [d for d in history(client, model)
                if (d.deployed_ms or 0) < until_ms and (d.stopped_ms is None or d.stopped_ms >= since_ms)]
        files[f"history/{_name(model)}.json"] = _json([d.to_dict() for d in rows])
        out = io.StringIO()
        write_csv(out, (d.to_dict() for d in rows), DEPLOYMENT_FIELDS)
        files[f"history/{_name(model)}.csv"] = out.getvalue().encode()
    report = build_report(client, since, until, atlas_url)
    report.rows = [r for r in report.rows if r.deployment.model_name in models]
    report.models = [m for m in report.models if m.name in models]
    files["report/audit-report.md"] = render_report(report, "md").encode()
    files["report/audit-report.html"] = render_report(report, "html").encode()
    for guid, type_name in sorted(involved.items()):
        events = sorted(client.audit(guid, count=AUDIT_EVENTS) or [], key=lambda e: e.get("timestamp") or 0)
        files[f"atlas-audit/{_name(type_name)}-{_name(guid)}.json"] = _json(events)
    files["EVIDENCE.json"] = _json({
        "scope": scope.to_dict(), "window": {"since": iso(since_ms), "until": iso(until_ms)},
        "generated": iso(to_millis(datetime.now(UTC))), "atlasUrl": atlas_url,
        "deployments": [{"guid": d.guid, "qualifiedName": d.qualified_name, "model": d.model_name,
                         "version": d.model_version} for d in deployments]})
    return files


def _moment(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _end(d: Deployment) -> int:
    return d.stopped_ms or to_millis(datetime.now(UTC))


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()


def _more_entities(client: AtlasClient, model_card: dict, namespace: str, involved: dict[str, str]) -> None:
    """The build's project and train process (whose audit trails say who wrote the version's record)."""
    build = client.get_entity(model_card["model"]["guid"])["entity"]
    project = related_guid(build, "project")
    if project:
        involved[project] = "ml_project"
    train = client.get_entity_by_unique(TRAIN_PROCESS_TYPE,
                                        model_card["model"]["qualifiedName"].replace("@", "/train@", 1))
    if train:
        involved[train["entity"]["guid"]] = TRAIN_PROCESS_TYPE


def _registry_files(model_card: dict) -> dict[str, bytes]:
    """The version's manifest as stored, its model.sig and its kept approvals, read from its registry."""
    from governance.registries import get_registry
    from governance.registries.base import MANIFEST_NAME, SIGNATURE_FILE

    name, version = model_card["model"]["name"], model_card["model"]["version"]
    location = model_card["bytes"]["registryUri"] or ""
    suffix = f"/{name}/{version}"
    if not location.rstrip("/").endswith(suffix):
        raise GovernanceError(f"{name} {version}: the build records registry copy {location!r}, not "
                              f"<registry>{suffix}; cannot read its manifest")
    registry = get_registry(location.rstrip("/")[:-len(suffix)])
    found = registry.lookup(name, version)
    if found is None or found.manifest_text is None:
        raise GovernanceError(f"{location}: the registry holds no complete version {name} {version}")
    base = f"registry/{_name(name)}"
    out = {f"{base}/{_name(version)}/{MANIFEST_NAME}": found.manifest_text.encode()}
    signature = registry.read_signature(found)
    if signature is not None:
        out[f"{base}/{_name(version)}/{SIGNATURE_FILE}"] = signature
    for uri, data in registry.kept_approvals(found):
        if data:
            out[f"{base}/.approvals/{_name(version)}/{_name(uri.rsplit('/', 1)[-1])}"] = data
    return out
