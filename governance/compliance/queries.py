"""Find recorded deployments in Atlas: the filters a compliance reader asks for, as one basic search.

Atlas does the filtering it can express (``POST /v2/search/basic`` with ``entityFilters`` on the
deployment type, the environment classification as ``classification``), paged with limit/offset by
``AtlasClient.search_basic``. Computed here, client-side:

* line of business: ``ownerLob`` lives on the model build, not on the deployment (Atlas 2.4 basic search
  cannot filter across a relationship), so every row's ``ownerLob`` is read from its build (the search asks
  for the ``build`` relationship; the builds come a page of guids at a time, ``governance.compliance.builds``)
  and the ``--lob`` filter is applied to that;
* the final order (newest first for search, oldest first for history) and ``--limit``, applied after
  the client-side filters so a limit never hides a match.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from governance.atlas.client import AtlasClient
from governance.atlas.constants import DEPLOYMENT_TYPE, ENVIRONMENT_CLASSIFICATIONS
from governance.compliance.builds import Builds
from governance.compliance.times import iso, to_millis

# the JSON and CSV columns of a deployment, in this order
DEPLOYMENT_FIELDS = ["guid", "qualifiedName", "modelName", "modelVersion", "targetKind", "targetDetail",
                     "environment", "status", "outcome", "failureReason", "deployedTime", "stoppedTime",
                     "deployedBy", "owner", "ownerLob", "modelEndpointURL"]
_SEARCH_ATTRIBUTES = ["modelName", "modelVersion", "targetKind", "targetDetail", "status", "outcome",
                      "failureReason", "deployedTime", "stoppedTime", "deployedBy", "owner", "modelEndpointURL",
                      "build"]  # a relationship: its guid, so that the builds are read by guid in bulk
_ENVIRONMENT_OF = {v: k for k, v in ENVIRONMENT_CLASSIFICATIONS.items()}


@dataclass(frozen=True)
class Deployment:
    """One recorded deployment (or failed attempt), as read from Atlas; times in epoch millis."""

    guid: str
    qualified_name: str
    model_name: str
    model_version: str
    target_kind: str | None
    target_detail: str | None
    environment: str | None
    status: str | None
    outcome: str | None
    failure_reason: str | None
    deployed_ms: int | None
    stopped_ms: int | None
    deployed_by: str | None
    owner: str | None
    owner_lob: str | None
    endpoint_url: str | None
    build_guid: str | None = None  # the guid of the build relationship, when the search header carries it

    @property
    def build_qualified_name(self) -> str:
        """``<name>/<version>@ns``: the build this deployment was made from (the qualifiedName scheme)."""
        namespace = self.qualified_name.rsplit("@", 1)[-1]
        return f"{self.model_name}/{self.model_version}@{namespace}"

    @property
    def failed(self) -> bool:
        """An attempt that put nothing into service: failed, or refused at approval (``rejected``)."""
        return self.outcome in ("failed", "rejected")

    def serving_at(self, moment_ms: int) -> bool:
        """Served at that moment: a successful deploy with deployedTime <= T < stoppedTime (or not stopped)."""
        return (self.outcome == "succeeded" and self.deployed_ms is not None and self.deployed_ms <= moment_ms
                and (self.stopped_ms is None or moment_ms < self.stopped_ms))

    def to_dict(self) -> dict:
        """The JSON/CSV form: Atlas attribute names, times as ISO 8601 with offset."""
        return {"guid": self.guid, "qualifiedName": self.qualified_name, "modelName": self.model_name,
                "modelVersion": self.model_version, "targetKind": self.target_kind,
                "targetDetail": self.target_detail, "environment": self.environment, "status": self.status,
                "outcome": self.outcome, "failureReason": self.failure_reason,
                "deployedTime": iso(self.deployed_ms), "stoppedTime": iso(self.stopped_ms),
                "deployedBy": self.deployed_by, "owner": self.owner, "ownerLob": self.owner_lob,
                "modelEndpointURL": self.endpoint_url}

    @classmethod
    def from_header(cls, header: dict) -> Deployment:
        attrs = header.get("attributes") or {}
        environments = sorted(_ENVIRONMENT_OF[c] for c in header.get("classificationNames") or []
                              if c in _ENVIRONMENT_OF)

        def text(key: str) -> str | None:
            value = attrs.get(key)
            return None if value in (None, "") else str(value)

        def millis(key: str) -> int | None:
            value = attrs.get(key)
            return None if value in (None, "", 0) else int(value)

        build = attrs.get("build")
        return cls(guid=header["guid"], qualified_name=attrs.get("qualifiedName") or "",
                   model_name=text("modelName") or "", model_version=text("modelVersion") or "",
                   target_kind=text("targetKind"), target_detail=text("targetDetail"),
                   environment=",".join(environments) or None, status=text("status"), outcome=text("outcome"),
                   failure_reason=text("failureReason"), deployed_ms=millis("deployedTime"),
                   stopped_ms=millis("stoppedTime"), deployed_by=text("deployedBy"), owner=text("owner"),
                   owner_lob=None, endpoint_url=text("modelEndpointURL"),
                   build_guid=build.get("guid") if isinstance(build, dict) else None)


@dataclass(frozen=True)
class TargetFilter:
    """A target as people name it: an exact ``targetDetail`` (host:port, cluster/namespace) or a bare host."""

    detail: str | None = None
    host: str | None = None

    @classmethod
    def parse(cls, text: str) -> TargetFilter:
        return cls(detail=text) if (":" in text or "/" in text) else cls(host=text)

    def criterion(self) -> dict:
        if self.detail:
            return _eq("targetDetail", self.detail)
        return {"condition": "OR", "criterion": [_eq("targetDetail", self.host),
                                                 {"attributeName": "targetDetail", "operator": "startsWith",
                                                  "attributeValue": f"{self.host}:"}]}


@dataclass(frozen=True)
class DeploymentFilter:
    """What to look for; every field is optional. ``since`` is inclusive, ``until`` exclusive (deployedTime)."""

    name: str | None = None
    version: str | None = None
    owner: str | None = None
    lob: str | None = None
    target: TargetFilter | None = None
    status: str | None = None
    outcome: str | None = None
    environment: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    extra: tuple[dict, ...] = field(default=())  # further Atlas criteria (e.g. the report's time window)

    def search_parameters(self) -> dict:
        """The SearchParameters body for Atlas: everything Atlas basic search can filter on."""
        criteria = [*self.extra]
        for attribute, value in (("modelName", self.name), ("modelVersion", self.version), ("owner", self.owner),
                                 ("status", self.status), ("outcome", self.outcome)):
            if value:
                criteria.append(_eq(attribute, value))
        if self.target:
            criteria.append(self.target.criterion())
        if self.since:
            criteria.append({"attributeName": "deployedTime", "operator": ">=",
                             "attributeValue": str(to_millis(self.since))})
        if self.until:
            criteria.append({"attributeName": "deployedTime", "operator": "<",
                             "attributeValue": str(to_millis(self.until))})
        params: dict = {"typeName": DEPLOYMENT_TYPE, "excludeDeletedEntities": True,
                        "attributes": _SEARCH_ATTRIBUTES, "sortBy": "deployedTime", "sortOrder": "ASCENDING"}
        if self.environment:
            params["classification"] = ENVIRONMENT_CLASSIFICATIONS[self.environment]
        if len(criteria) == 1:
            params["entityFilters"] = criteria[0]
        elif criteria:
            params["entityFilters"] = {"condition": "AND", "criterion": criteria}
        return params


def _eq(attribute: str, value: str) -> dict:
    return {"attributeName": attribute, "operator": "=", "attributeValue": value}


def find_deployments(client: AtlasClient, wanted: DeploymentFilter, *, newest_first: bool = False,
                     limit: int | None = None, builds: Builds | None = None) -> list[Deployment]:
    """Deployments matching ``wanted``, each with its build's line of business. ``builds``: where to keep
    the builds read on the way, for a caller that needs more of them (the report)."""
    found = [Deployment.from_header(h) for h in client.search_basic(wanted.search_parameters())]
    builds = Builds(client) if builds is None else builds
    builds.load((d.build_qualified_name, d.build_guid) for d in found)
    found = [_with_lob(d, builds.get(d.build_qualified_name)) for d in found]
    if wanted.lob:
        found = [d for d in found if d.owner_lob == wanted.lob]
    found.sort(key=lambda d: (d.deployed_ms or 0, d.qualified_name), reverse=newest_first)
    return found[:limit] if limit is not None else found


def _with_lob(deployment: Deployment, build: dict | None) -> Deployment:
    values = asdict(deployment)
    values["owner_lob"] = ((build or {}).get("attributes") or {}).get("ownerLob") or None
    return Deployment(**values)
