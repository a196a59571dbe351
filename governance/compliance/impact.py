"""The blast radius of a training dataset (``modelgov impact``): every model version trained on it and every
deployment of those versions, past and present, with its window and whether it serves now.

Read along Atlas lineage from the dataset, never from a scan of the deployments: the dataset entity's
``inputToProcesses`` -> the train process (``modelgov_train_build_process``) -> its ``outputs`` (the builds)
-> each build's ``deployments`` relationship. Every hop is a read by guid (``GET /v2/entity/bulk``, a page of
guids a call, every build's deployments together), a consistent read, so a deployment made a second ago is
already in the answer; the calls grow with pages of records, not with records.

A dataset reference is what ``model.training.data`` takes (``governance.staging.data_versions``): with its
version (``iceberg://cat/db.tbl@SNAPSHOT``, ``s3://b/k?versionId=V``, ``PATH#sha256=HEX``, ``URI#digest=D``)
it names one dataset version; without one (``iceberg://cat/db.tbl``, ``/data/train.csv``) every recorded
version of that location; a bare version (a file's sha256, an MLflow dataset digest, an S3 version id) every
dataset recorded with that version. "Serves now" is asked of the target itself where a deployment is recorded
as serving (``served(name)``): ``yes``, ``no``, or ``unknown`` when the target cannot be asked; a deployment
recorded stopped or failed is ``no`` from the record. Spark scoring runs that read the dataset (``modelgov
score``: dataset -> ``modelgov_scoring_run``) are ``scored`` rows: the run's model version, deployment and time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from governance.atlas.client import AtlasClient, related_guids
from governance.atlas.constants import (
    BUILD_TYPE,
    DATASET_TYPE,
    DEFAULT_NAMESPACE,
    SCORING_RUN_TYPE,
    TRAIN_PROCESS_TYPE,
)
from governance.compliance.queries import Deployment
from governance.compliance.times import iso, to_millis
from governance.compliance.trace import deployment_of
from governance.errors import ConfigError, GovernanceError
from governance.staging.data_versions import parse_entry

# the JSON and CSV columns of an impact row, in this order
FIELDS = ["kind", "dataset", "dataLocation", "dataVersion", "dataVersionKind", "model", "modelVersion", "build",
          "deployment", "target", "environment", "owner", "status", "outcome", "deployedTime", "stoppedTime",
          "servesNow", "scoringRun", "scoredFrom", "scoredUntil"]
# kind: "deployment" (a deployment of a version trained on the data), "registered" (a version trained on it,
# never deployed), "scored" (a Spark scoring run that read the data: modelgov score)
# Atlas types an unversioned training-data entry is recorded as (``governance.deploy.entities.add_location``)
_UNVERSIONED_TYPES = (DATASET_TYPE, "fs_path", "hdfs_path", "aws_s3_v2_object")
_BARE_VERSION = re.compile(r"^[A-Za-z0-9._-]+$")

Asker = Callable[[Deployment, str | None], str]


class NoSuchDataset(GovernanceError):
    """Atlas records no training dataset by that reference."""


@dataclass(frozen=True)
class ImpactRow:
    """One deployment of a model version trained on the dataset (or the version alone, never deployed)."""

    values: dict

    def to_dict(self) -> dict:
        return dict(self.values)


def find_datasets(client: AtlasClient, reference: str, namespace: str = DEFAULT_NAMESPACE) -> list[dict]:
    """The dataset entities (full, with relationships) a reference names; NoSuchDataset when there is none."""
    text = reference.strip()
    if not text:
        raise ConfigError("DATASET is empty: give a training-data reference (a path, URI or version)")
    suffix = f"@{namespace}"
    guids: list[str] = []
    if "://" not in text and not text.startswith("/"):
        if not _BARE_VERSION.match(text):
            raise ConfigError(f"{reference!r}: not a dataset URI, absolute path or version")
        guids += _search(client, "dataVersion", text)  # a sha256, an MLflow digest, an S3 version id
    else:
        parsed, problem = parse_entry(text)
        if problem or parsed is None:
            raise ConfigError(problem or f"{reference!r}: not a training-data reference")
        if parsed.version is not None:
            body = client.get_entity_by_unique(DATASET_TYPE, parsed.versioned_uri + suffix)
            guids += [body["entity"]["guid"]] if body else []
        else:
            for location in _spellings(parsed.location):
                guids += _search(client, "location", location)  # every version of it
                for type_name in _UNVERSIONED_TYPES:
                    body = client.get_entity_by_unique(type_name, location + suffix)
                    guids += [body["entity"]["guid"]] if body else []
    unique = list(dict.fromkeys(guids))
    found = [e for e in client.get_active_entities(unique)
             if (e.get("attributes") or {}).get("qualifiedName", "").endswith(suffix)]
    if not found:
        raise NoSuchDataset(f"{reference}: Atlas records no training dataset by that reference "
                            f"(namespace {namespace})")
    return sorted(found, key=lambda e: e["attributes"]["qualifiedName"])


def _spellings(location: str) -> list[str]:
    """A local file as written (``/data/x.csv``) and as a file URI (``file:///data/x.csv``): either may be
    in metadata.txt, and people paste either."""
    if location.startswith("/"):
        return [location, f"file://{location}"]
    if location.startswith("file:///"):
        return [location, location[len("file://"):]]
    return [location]


def _search(client: AtlasClient, attribute: str, value: str) -> list[str]:
    params = {"typeName": DATASET_TYPE, "excludeDeletedEntities": True, "attributes": [attribute],
              "entityFilters": {"attributeName": attribute, "operator": "eq", "attributeValue": value}}
    return [h["guid"] for h in client.search_basic(params)]


def impact(client: AtlasClient, reference: str, *, namespace: str = DEFAULT_NAMESPACE,
           at: datetime | None = None, ask: Asker | None = None) -> list[ImpactRow]:
    """Every model version trained on the dataset(s) ``reference`` names, and each of its deployments.

    With ``at``, only deployments in service at that moment (``deployedTime <= at < stoppedTime``). ``ask``
    answers "serves now" for a deployment recorded as serving (default: ask its target)."""
    ask = ask or TargetAsker()
    moment = to_millis(at) if at else None
    rows: list[tuple[tuple, dict]] = []
    for dataset in find_datasets(client, reference, namespace):
        da = dataset.get("attributes") or {}
        data = {"dataset": da.get("qualifiedName"), "dataLocation": da.get("location") or da.get("path")
                or da.get("uri"), "dataVersion": da.get("dataVersion"), "dataVersionKind": da.get("dataVersionKind")}
        processes = _active(client, related_guids(dataset, "inputToProcesses"))
        rows += [(key, {**data, **values}) for key, values in _scored(processes, data["dataset"], moment)]
        trained = [p for p in processes if p.get("typeName") == TRAIN_PROCESS_TYPE]
        builds = [b for b in _active(client, list(dict.fromkeys(g for p in trained for g in related_guids(p, "outputs"))))
                  if b.get("typeName") == BUILD_TYPE]
        del processes, trained
        # every build's deployments in one paged bulk read, not one read per build (issue 23)
        recorded = {e["guid"]: e for e in _active(
            client, list(dict.fromkeys(g for b in builds for g in related_guids(b, "deployments"))))}
        for build in builds:
            ba = build.get("attributes") or {}
            model = {"model": (ba.get("qualifiedName") or "").split("/", 1)[0], "modelVersion": ba.get("modelVersion"),
                     "build": ba.get("qualifiedName")}
            deployments = [(deployment_of(e), (e.get("attributes") or {}).get("targetUri")) for e in
                           (recorded[g] for g in related_guids(build, "deployments") if g in recorded)]
            if moment is not None:
                deployments = [(d, uri) for d, uri in deployments if d.serving_at(moment)]
            elif not deployments:  # trained on it, registered, never deployed
                rows.append(((data["dataset"], model["build"], 0, ""),
                             {**data, **model, "kind": "registered", "owner": ba.get("owner")}))
            for d, uri in deployments:
                rows.append(((data["dataset"], model["build"], d.deployed_ms or 0, d.qualified_name),
                             {**data, **model, **_deployment(d, uri, ba.get("owner"), ask)}))
    return [ImpactRow({f: values.get(f) for f in FIELDS}) for _, values in sorted(rows, key=lambda r: r[0])]


def _active(client: AtlasClient, guids: list[str]) -> list[dict]:
    """The ACTIVE entities of ``guids``, without their referred entities (``minExtInfo``): an impact over
    ten thousand deployments holds only the entities it reads."""
    return [e for e in client.get_entities_paged(guids, min_ext_info=True) if e.get("status", "ACTIVE") == "ACTIVE"]


def _scored(processes: list[dict], dataset: str, moment: int | None) -> list[tuple[tuple, dict]]:
    """The Spark scoring runs (``modelgov_scoring_run``) that read the dataset: which model version, through
    which deployment, when (with ``moment``: only a run under way then)."""
    out = []
    for run in (p for p in processes if p.get("typeName") == SCORING_RUN_TYPE):
        a = run.get("attributes") or {}
        start, end = a.get("startTime") or 0, a.get("endTime") or None
        if moment is not None and not (start <= moment and (end is None or moment < end)):
            continue
        name, version = a.get("modelName"), a.get("modelVersion")
        namespace = (a.get("qualifiedName") or "").rsplit("@", 1)[-1]
        out.append(((dataset, f"{name}/{version}@{namespace}", start, a.get("qualifiedName") or ""),
                    {"kind": "scored", "model": name, "modelVersion": version, "build": f"{name}/{version}@{namespace}",
                     "deployment": a.get("deploymentName"), "target": f"spark://{a.get('targetDetail')}",
                     "outcome": a.get("outcome"), "scoringRun": a.get("qualifiedName"), "scoredFrom": iso(start),
                     "scoredUntil": iso(end)}))
    return out


def _deployment(d: Deployment, uri: str | None, build_owner: str | None, ask: Asker) -> dict:
    serving = d.status == "deployed" and d.outcome == "succeeded"
    return {"kind": "deployment", "deployment": d.qualified_name, "target": f"{d.target_kind}://{d.target_detail}",
            "environment": d.environment, "owner": d.owner or build_owner, "status": d.status, "outcome": d.outcome,
            "deployedTime": iso(d.deployed_ms), "stoppedTime": iso(d.stopped_ms),
            "servesNow": ask(d, uri) if serving else "no"}


class TargetAsker:
    """Asks each target once what it serves of a model (``served(name)``); ``unknown`` when it cannot be
    asked (down, no targetUri recorded, a scheme not installed here)."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], set[str] | None] = {}

    def __call__(self, d: Deployment, uri: str | None) -> str:
        from governance.targets import get_target

        if not uri:
            return "unknown"
        key = (uri, d.model_name)
        if key not in self._answers:
            try:
                self._answers[key] = {m.version for m in get_target(uri).served(d.model_name)
                                      if m.name == d.model_name}
            except GovernanceError:
                self._answers[key] = None
        served = self._answers[key]
        if served is None:
            return "unknown"
        return "yes" if d.model_version in served else "no"
