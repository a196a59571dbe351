"""The model inventory SR 11-7 asks for (``modelgov inventory``): one row per model version at a moment.

A version (an Atlas build registered at or before the moment T) is listed when it is

* ``in use``: a successful deployment of it serves at T (``deployedTime <= T < stoppedTime``, or not stopped);
* ``retired``: none serves at T, but one stopped within the last N days before T (``--retired-within``);
* ``never deployed``: it was registered, and no deploy of it ever succeeded by T (failed or refused attempts,
  or none at all);

versions retired longer ago are left out. Builds and deployments come from two basic searches (all builds,
all deployments that started by T); which row a version gets is computed here, from the recorded times in
epoch milliseconds, as ``history --at`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from governance.atlas.client import AtlasClient
from governance.atlas.constants import BUILD_TYPE, DEFAULT_NAMESPACE
from governance.compliance.queries import Deployment, DeploymentFilter, find_deployments
from governance.compliance.times import iso, to_millis
from governance.compliance.trace import atlas_ui_link

IN_USE, RETIRED, NEVER_DEPLOYED = "in use", "retired", "never deployed"
DEFAULT_RETIRED_WITHIN_DAYS = 90
# the columns, in this order: what SR 11-7 inventories hold (owner, purpose, validation, risk), then the trail
FIELDS = ["model", "version", "displayName", "status", "owner", "ownerLob", "purpose", "intendedUse",
          "limitations", "riskTier", "validationStatus", "validatedBy", "validationDate", "modelType",
          "framework", "registeredTime", "firstDeployedTime", "retiredTime", "servingOn", "environments",
          "executableSha256", "registryUri", "atlasUrl"]
TIME_FIELDS = ("registeredTime", "firstDeployedTime", "retiredTime")
DATE_FIELDS = ("validationDate",)
_BUILD_ATTRIBUTES = ["modelVersion", "owner", "ownerLob", "description", "intendedUse", "limitations", "riskTier",
                     "validationStatus", "validatedBy", "validationDate", "modelType", "framework",
                     "registeredTime", "executableSha256", "registryUri", "name"]


@dataclass(frozen=True)
class InventoryRow:
    """One model version; ``values`` holds every column of ``FIELDS``, times as aware UTC datetimes and the
    validation date as a date (the JSON and CSV forms write them as ISO 8601, the XLSX form as dates)."""

    values: dict

    def to_dict(self) -> dict:
        """JSON/CSV form: times as ISO 8601 with milliseconds and offset, the date as YYYY-MM-DD."""
        out = dict(self.values)
        for key in TIME_FIELDS:
            out[key] = iso(to_millis(out[key])) if out[key] else None
        for key in DATE_FIELDS:
            out[key] = out[key].isoformat() if out[key] else None
        return out


def inventory(client: AtlasClient, atlas_url: str, at: datetime | None = None,
              retired_within_days: int = DEFAULT_RETIRED_WITHIN_DAYS,
              namespace: str = DEFAULT_NAMESPACE) -> list[InventoryRow]:
    """The inventory of ``namespace`` at ``at`` (default: now), ordered by model and version number."""
    moment = at or datetime.now(UTC)
    moment_ms = to_millis(moment)
    since_ms = to_millis(moment - timedelta(days=retired_within_days))
    started = find_deployments(client, DeploymentFilter(
        until=moment.replace(microsecond=moment.microsecond // 1000 * 1000) + timedelta(milliseconds=1)))
    by_build: dict[str, list[Deployment]] = {}
    for d in started:
        by_build.setdefault(d.build_qualified_name, []).append(d)
    rows = []
    for header in client.search_basic({"typeName": BUILD_TYPE, "excludeDeletedEntities": True,
                                       "attributes": _BUILD_ATTRIBUTES}):
        attrs = header.get("attributes") or {}
        if not (attrs.get("qualifiedName") or "").endswith(f"@{namespace}"):
            continue  # another namespace's model (one Atlas may hold several)
        registered = _millis(attrs.get("registeredTime"))
        if registered is not None and registered > moment_ms:
            continue  # not registered yet at that moment
        mine = by_build.get(attrs.get("qualifiedName") or "", [])
        succeeded = [d for d in mine if d.outcome == "succeeded" and d.deployed_ms is not None]
        serving = [d for d in succeeded if d.serving_at(moment_ms)]
        stops = [d.stopped_ms for d in succeeded if d.stopped_ms is not None and d.stopped_ms <= moment_ms]
        if serving:
            status, retired = IN_USE, None
        elif not succeeded:
            status, retired = NEVER_DEPLOYED, None
        elif stops and max(stops) > since_ms:
            status, retired = RETIRED, max(stops)
        else:
            continue  # retired longer ago than the window
        row = _row(header, attrs, status, registered, succeeded, serving, retired, atlas_url)
        rows.append(((row.values["model"], _version_key(row.values["version"])), row))
    return [row for _, row in sorted(rows, key=lambda pair: pair[0])]


def _row(header: dict, attrs: dict, status: str, registered: int | None, succeeded: list[Deployment],
         serving: list[Deployment], retired: int | None, atlas_url: str) -> InventoryRow:
    qualified_name = attrs.get("qualifiedName") or ""
    model, _, rest = qualified_name.partition("/")
    version = attrs.get("modelVersion") or rest.rsplit("@", 1)[0]
    name = attrs.get("name") or ""
    validated = _millis(attrs.get("validationDate"))
    return InventoryRow({
        "model": model, "version": version,
        "displayName": name.removesuffix(f" v{version}") or model, "status": status,
        "owner": attrs.get("owner"), "ownerLob": attrs.get("ownerLob"), "purpose": attrs.get("description"),
        "intendedUse": attrs.get("intendedUse"), "limitations": attrs.get("limitations"),
        "riskTier": attrs.get("riskTier"), "validationStatus": attrs.get("validationStatus"),
        "validatedBy": attrs.get("validatedBy"),
        "validationDate": _datetime(validated).date() if validated is not None else None,
        "modelType": attrs.get("modelType"), "framework": attrs.get("framework"),
        "registeredTime": _datetime(registered),
        "firstDeployedTime": _datetime(min((d.deployed_ms for d in succeeded), default=None)),
        "retiredTime": _datetime(retired),
        "servingOn": ", ".join(sorted({f"{d.target_kind}://{d.target_detail}" for d in serving})) or None,
        "environments": ", ".join(sorted({d.environment for d in serving if d.environment})) or None,
        "executableSha256": attrs.get("executableSha256"), "registryUri": attrs.get("registryUri"),
        "atlasUrl": atlas_ui_link(atlas_url, header["guid"]),
    })


def _millis(value: object) -> int | None:
    """A recorded date in epoch millis; Atlas stores an unset date as 0, taken as none."""
    return None if value in (None, "", 0) else int(value)  # type: ignore[arg-type]


def _datetime(millis: int | None) -> datetime | None:
    return None if millis is None else datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (0,)
