"""Audit report of every deployment event in a period, grouped by model and target, from Jinja2 templates.

An event is a deploy (or failed attempt) whose ``deployedTime`` falls in ``[since, until)``, or a stop
whose ``stoppedTime`` does; Atlas selects them with one OR-grouped basic-search filter. Builds (checksums,
registry copy) and their training data (the train process's inputs) are read a page of guids at a time
(``governance.compliance.builds``): the Atlas calls grow with the pages of rows, not with the rows.
HTML is one standalone file: inline CSS and one inline SVG lineage diagram per model, no network fetches.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO

from governance.atlas.client import AtlasClient
from governance.atlas.constants import SENSITIVE_CLASSIFICATION
from governance.compliance.builds import Builds, training_data
from governance.compliance.queries import DEPLOYMENT_FIELDS, Deployment, DeploymentFilter, find_deployments
from governance.compliance.templating import template_environment
from governance.compliance.times import iso, to_millis
from governance.compliance.trace import atlas_ui_link
from governance.safe_output import write_csv

CSV_FIELDS = [*DEPLOYMENT_FIELDS, "executableSha256", "registryUri", "atlasUrl"]
FORMATS = ("html", "md", "csv")
CSV_CHUNK = 150  # rows whose builds are read together while streaming: one bulk page of guids


@dataclass(frozen=True)
class Dataset:
    qualified_name: str
    name: str
    sensitive: str | None
    atlas_url: str


@dataclass(frozen=True)
class Build:
    qualified_name: str
    guid: str | None
    model_version: str
    executable_sha256: str | None
    registry_uri: str | None
    atlas_url: str | None
    datasets: tuple[Dataset, ...] = ()


@dataclass(frozen=True)
class Row:
    """One deployment in the report: the deployment, its build's checksum and links, its events in the period."""

    deployment: Deployment
    build: Build
    atlas_url: str
    events: tuple[str, ...]

    def to_dict(self) -> dict:
        return {**self.deployment.to_dict(), "executableSha256": self.build.executable_sha256,
                "registryUri": self.build.registry_uri, "atlasUrl": self.atlas_url}


@dataclass
class ModelSection:
    name: str
    owners: list[str]
    lobs: list[str]
    builds: list[Build]
    by_target: dict[str, list[Row]]
    diagram: dict = field(default_factory=dict)


@dataclass
class Report:
    since: datetime
    until: datetime
    generated: datetime
    atlas_url: str
    rows: list[Row]
    models: list[ModelSection]

    @property
    def summary(self) -> dict:
        rows = self.rows
        return {
            "deployments": sum(1 for r in rows if "deployed" in r.events),
            "failed": [r for r in rows if r.deployment.failed],
            "stops": sum(1 for r in rows if "stopped" in r.events),
            "models": [m.name for m in self.models],
            "targets": sorted({f"{r.deployment.target_kind}://{r.deployment.target_detail}" for r in rows}),
            "owners": sorted({r.deployment.owner for r in rows if r.deployment.owner}),
            "deployers": sorted({r.deployment.deployed_by for r in rows if r.deployment.deployed_by}),
            "sensitive": sorted({m.name for m in self.models for b in m.builds for d in b.datasets if d.sensitive}),
        }


def _window(attribute: str, since_ms: int, until_ms: int) -> dict:
    return {"condition": "AND", "criterion": [
        {"attributeName": attribute, "operator": ">=", "attributeValue": str(since_ms)},
        {"attributeName": attribute, "operator": "<", "attributeValue": str(until_ms)}]}


def _events(d: Deployment, since_ms: int, until_ms: int) -> tuple[str, ...]:
    events = []
    if d.deployed_ms is not None and since_ms <= d.deployed_ms < until_ms:
        events.append(f"{d.outcome} attempt" if d.failed else "deployed")
    if not d.failed and d.stopped_ms is not None and since_ms <= d.stopped_ms < until_ms:
        events.append("stopped")
    return tuple(events)


def _dataset(data: dict, atlas_url: str) -> Dataset:
    own = [c for c in data.get("classifications") or [] if c.get("typeName") == SENSITIVE_CLASSIFICATION
           and c.get("entityGuid") in (None, data["guid"])]
    sensitive = ((own[0].get("attributes") or {}).get("category") or "sensitive") if own else None
    return Dataset(data["attributes"].get("qualifiedName"), data["attributes"].get("name") or "", sensitive,
                   atlas_ui_link(atlas_url, data["guid"]))


def _build(entity: dict | None, datasets: list[dict], qualified_name: str, atlas_url: str, version: str) -> Build:
    if not entity:
        return Build(qualified_name, None, version, None, None, None)
    attrs = entity.get("attributes") or {}
    return Build(qualified_name, entity["guid"], attrs.get("modelVersion") or version,
                 attrs.get("executableSha256"), attrs.get("registryUri"), atlas_ui_link(atlas_url, entity["guid"]),
                 tuple(sorted((_dataset(d, atlas_url) for d in datasets), key=lambda d: d.qualified_name)))


def _in_period(since_ms: int, until_ms: int) -> DeploymentFilter:
    return DeploymentFilter(extra=({"condition": "OR", "criterion": [_window("deployedTime", since_ms, until_ms),
                                                                     _window("stoppedTime", since_ms, until_ms)]},))


def _csv_order(d: Deployment) -> tuple:
    """The rows' order in every format: by model, then target, then deploy time."""
    return d.model_name, f"{d.target_kind}://{d.target_detail}", d.deployed_ms or 0, d.qualified_name


def stream_csv(client: AtlasClient, since: datetime, until: datetime, atlas_url: str, out: IO[str]) -> int:
    """The CSV report written while it is read, for fleets of tens of thousands of deployments: only the
    search headers (a few hundred bytes a row) are held for the whole period, to put the rows in order;
    builds are read ``CSV_CHUNK`` rows at a time (one bulk call) and let go once their rows are written, so
    memory stays flat and the first rows are out before the last builds are read. The rows, their order and
    the Atlas calls are those of ``render(build_report(...), "csv")`` (training data is not a CSV column, so
    it is not read). Returns the rows written."""
    since_ms, until_ms = to_millis(since), to_millis(until)
    found = sorted((Deployment.from_header(h) for h in client.search_basic(
        _in_period(since_ms, until_ms).search_parameters())), key=_csv_order)
    write_csv(out, _csv_rows(client, found, atlas_url), CSV_FIELDS)
    return len(found)


def _csv_rows(client: AtlasClient, found: list[Deployment], atlas_url: str) -> Iterator[dict]:
    for start in range(0, len(found), CSV_CHUNK):
        chunk, read = found[start:start + CSV_CHUNK], Builds(client)
        read.load((d.build_qualified_name, d.build_guid) for d in chunk)
        for d in chunk:
            entity = read.get(d.build_qualified_name)
            attrs = (entity or {}).get("attributes") or {}
            yield {**replace(d, owner_lob=attrs.get("ownerLob") or None).to_dict(),
                   "executableSha256": attrs.get("executableSha256"), "registryUri": attrs.get("registryUri"),
                   "atlasUrl": atlas_ui_link(atlas_url, d.guid)}


def build_report(client: AtlasClient, since: datetime, until: datetime, atlas_url: str) -> Report:
    """Every deployment with a deploy, failed attempt or stop in ``[since, until)``, with builds and data."""
    since_ms, until_ms = to_millis(since), to_millis(until)
    read = Builds(client)
    found = find_deployments(client, _in_period(since_ms, until_ms), builds=read)
    entities = {d.build_qualified_name: read.get(d.build_qualified_name) for d in found}
    data = training_data(client, {e["guid"]: e for e in entities.values() if e}.values())
    builds: dict[str, Build] = {}
    rows = []
    for d in found:
        if d.build_qualified_name not in builds:
            entity = entities[d.build_qualified_name]
            builds[d.build_qualified_name] = _build(entity, data.get(entity["guid"], []) if entity else [],
                                                    d.build_qualified_name, atlas_url, d.model_version)
        rows.append(Row(d, builds[d.build_qualified_name], atlas_ui_link(atlas_url, d.guid),
                        _events(d, since_ms, until_ms)))
    models = []
    for name in sorted({r.deployment.model_name for r in rows}):
        mine = [r for r in rows if r.deployment.model_name == name]
        by_target: dict[str, list[Row]] = {}
        for r in mine:
            by_target.setdefault(f"{r.deployment.target_kind}://{r.deployment.target_detail}", []).append(r)
        section = ModelSection(
            name=name, owners=sorted({r.deployment.owner for r in mine if r.deployment.owner}),
            lobs=sorted({r.deployment.owner_lob for r in mine if r.deployment.owner_lob}),
            builds=sorted({r.build.qualified_name: r.build for r in mine}.values(), key=lambda b: b.model_version),
            by_target=dict(sorted(by_target.items())))
        section.diagram = lineage_diagram(section)
        models.append(section)
    return Report(since, until, datetime.now(UTC), atlas_url, rows, models)


# -- the drawn lineage: datasets -> builds -> deployments, laid out in three columns ------------------------
NODE_W, NODE_H, GAP, COL_X, PAD = 250, 46, 14, (10, 330, 650), 10


def lineage_diagram(section: ModelSection) -> dict:
    """Boxes and arrows for one model's SVG: training data -> build (version) -> each deployment."""
    datasets: dict[str, Dataset] = {}
    for b in section.builds:
        for d in b.datasets:
            datasets.setdefault(d.qualified_name, d)
    order = {b.qualified_name: i for i, b in enumerate(section.builds)}
    rows = sorted((r for target_rows in section.by_target.values() for r in target_rows),
                  key=lambda r: (order[r.build.qualified_name], r.deployment.deployed_ms or 0))
    columns = [
        [{"key": k, "lines": [d.name.rsplit("/", 1)[-1] or d.qualified_name,
                              f"SENSITIVE: {d.sensitive}" if d.sensitive else "training data"],
          "css": "data sensitive" if d.sensitive else "data", "href": d.atlas_url} for k, d in datasets.items()],
        [{"key": b.qualified_name, "lines": [f"{section.name} {b.model_version}",
                                             f"sha256 {(b.executable_sha256 or '?')[:16]}…"],
          "css": "build", "href": b.atlas_url} for b in section.builds],
        [{"key": r.deployment.guid,
          "lines": [f"{r.deployment.target_kind}://{r.deployment.target_detail}",
                    f"v{r.deployment.model_version} · " + (f"{r.deployment.outcome.upper()} attempt" if r.deployment.failed
                                                            else r.deployment.status or "?")],
          "css": "deployment " + ("failed" if r.deployment.failed else (r.deployment.status or "")),
          "href": r.atlas_url} for r in rows],
    ]
    position = {}
    for col, nodes in enumerate(columns):
        for i, node in enumerate(nodes):
            node["x"], node["y"] = COL_X[col], PAD + i * (NODE_H + GAP)
            position[node["key"]] = node
    edges = []
    for b in section.builds:
        for d in b.datasets:
            edges.append((position[d.qualified_name], position[b.qualified_name]))
    for r in rows:
        edges.append((position[r.build.qualified_name], position[r.deployment.guid]))
    height = PAD * 2 + max(len(c) for c in columns) * (NODE_H + GAP)
    return {"width": COL_X[2] + NODE_W + PAD, "height": height, "node_w": NODE_W, "node_h": NODE_H,
            "nodes": [n for c in columns for n in c],
            "edges": [{"x1": a["x"] + NODE_W, "y1": a["y"] + NODE_H / 2, "x2": b["x"] - 6, "y2": b["y"] + NODE_H / 2}
                      for a, b in edges]}


# -- rendering ---------------------------------------------------------------------------------------------
def render(report: Report, fmt: str) -> str:
    """The report as ``html`` (standalone page), ``md`` or ``csv`` (one row per deployment, same rows)."""
    if fmt == "csv":
        out = io.StringIO()
        write_csv(out, (r.to_dict() for section in report.models for rows in section.by_target.values()
                        for r in rows), CSV_FIELDS)
        return out.getvalue()
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    template = template_environment().get_template(f"report.{fmt}.j2")
    return template.render(report=report, summary=report.summary, period_from=iso(to_millis(report.since)),
                           period_to=iso(to_millis(report.until)), generated=iso(to_millis(report.generated)))
