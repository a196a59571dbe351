"""Install modelgov's typedefs idempotently: create what is missing, PUT what gained optional attributes,
refuse incompatible changes with a clear message, and say when the server lacks Atlas's ML base types."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from dataclasses import dataclass, field

import atlas_types
from governance.atlas.client import AtlasClient
from governance.errors import AtlasConflict, AtlasError

CATEGORIES = ("enumDefs", "structDefs", "classificationDefs", "entityDefs", "relationshipDefs")
ML_BASE_TYPES = ("ml_project", "ml_model_build", "ml_model_deployment", "ml_model_train_build_process",
                 "ml_model_deploy_process")


@dataclass
class InstallReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("created", self.created), ("updated", self.updated), ("unchanged", self.unchanged)) if names]
        return "; ".join(parts) or "nothing to do"


class TypedefIncompatible(AtlasError):
    """Our typedefs cannot be applied to what the server has without a breaking change."""


def _empty() -> dict:
    return {c: [] for c in CATEGORIES}


def _diff_attributes(ours: dict, theirs: dict, problems: list[str]) -> list[dict]:
    """New attributes to add; incompatible differences go to ``problems``."""
    theirs_by_name = {a["name"]: a for a in theirs.get("attributeDefs") or []}
    added = []
    for attr in ours.get("attributeDefs") or []:
        existing = theirs_by_name.get(attr["name"])
        if existing is None:
            if not attr.get("isOptional", False):
                problems.append(f"{ours['name']}.{attr['name']}: Atlas cannot add a mandatory attribute to an "
                                "existing type; declare it isOptional: true")
            added.append(attr)
        elif existing.get("typeName") != attr.get("typeName"):
            problems.append(f"{ours['name']}.{attr['name']}: server has type {existing.get('typeName')}, ours is "
                            f"{attr.get('typeName')}; Atlas does not support changing an attribute's type")
    return added


def _diff_enum(ours: dict, theirs: dict) -> list[dict]:
    have = {e["value"] for e in theirs.get("elementDefs") or []}
    return [e for e in ours.get("elementDefs") or [] if e["value"] not in have]


def _diff_relationship(ours: dict, theirs: dict, problems: list[str]) -> None:
    for end in ("endDef1", "endDef2"):
        mine, server = ours[end], theirs.get(end) or {}
        if (mine["type"], mine["name"]) != (server.get("type"), server.get("name")):
            problems.append(f"{ours['name']}.{end}: server has {server.get('type')}.{server.get('name')}, ours is "
                            f"{mine['type']}.{mine['name']}; relationship ends cannot change")
    if ours.get("relationshipCategory") != theirs.get("relationshipCategory"):
        problems.append(f"{ours['name']}: relationship category cannot change "
                        f"({theirs.get('relationshipCategory')} -> {ours.get('relationshipCategory')})")


def install_types(client: AtlasClient, typedefs: dict | None = None, attempts: int = 3) -> InstallReport:
    """Bring the server's modelgov types up to date. Safe to run any number of times, also concurrently:
    when another process creates a type between our read and our create (HTTP 409, as the first runs on
    several workers do against a fresh Atlas), we read again and install only what is still missing."""
    typedefs = typedefs or atlas_types.load()
    for attempt in range(1, attempts + 1):
        try:
            return _install_once(client, typedefs)
        except AtlasConflict:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


SENTINEL_TYPE = "modelgov_model_deployment"
_verified: set[tuple[str, str]] = set()  # (Atlas URL, digest of our typedefs) already checked by this process
_verified_lock = threading.Lock()


def ensure_types(client: AtlasClient) -> None:
    """``install_types`` once per process and Atlas: a batch of 100 deploys checks the types once, not 100
    times; later checks only confirm with one GET that the server still has them (an Atlas restarted on an
    empty store at the same URL gets them installed again)."""
    typedefs = atlas_types.load()
    key = (client.settings.url, hashlib.sha256(json.dumps(typedefs, sort_keys=True).encode()).hexdigest())
    with _verified_lock:
        known = key in _verified
    # a restarted Atlas with a fresh store can answer at the same URL: one GET confirms the types are still there
    if known and client.get_typedef(SENTINEL_TYPE) is not None:
        return
    install_types(client, typedefs)
    with _verified_lock:
        _verified.add(key)


def _server_defs(client: AtlasClient, service_type: str, names: list[str]) -> dict[str, dict | None]:
    """The server's defs for ``names``: one filtered search by serviceType, then a GET by name for any the
    search did not return (a server that ignores the filter, or a def stored without our serviceType), so
    the answer never depends on the filter being honoured."""
    found = {d["name"]: d for lst in client.search_typedefs(servicetype=service_type).values()
             if isinstance(lst, list) for d in lst if isinstance(d, dict) and "name" in d}
    return {name: found[name] if name in found else client.get_typedef(name) for name in names}


def _install_once(client: AtlasClient, typedefs: dict) -> InstallReport:
    base = _server_defs(client, "ml", list(ML_BASE_TYPES))
    missing_base = [name for name in ML_BASE_TYPES if base[name] is None]
    if missing_base:
        raise TypedefIncompatible(
            f"Atlas at {client.settings.url} lacks Atlas's built-in ML model types ({', '.join(missing_base)}); "
            "they ship in addons/models/4000-MachineLearning/4010-ml_model.json (Atlas 2.1 and later)")
    report = InstallReport()
    to_create, to_update = _empty(), _empty()
    problems: list[str] = []
    server = _server_defs(client, "modelgov", [t["name"] for c in CATEGORIES for t in typedefs.get(c) or []])
    for category in CATEGORIES:
        for ours in typedefs.get(category) or []:
            theirs = server[ours["name"]]
            if theirs is None:
                to_create[category].append(ours)
                report.created.append(ours["name"])
                continue
            if category == "relationshipDefs":
                _diff_relationship(ours, theirs, problems)
                report.unchanged.append(ours["name"])
                continue
            key = "elementDefs" if category == "enumDefs" else "attributeDefs"
            added = _diff_enum(ours, theirs) if category == "enumDefs" else _diff_attributes(ours, theirs, problems)
            if added:
                # PUT replaces the def: keep everything the server has, append what is new
                merged = copy.deepcopy(theirs)
                merged[key] = list(theirs.get(key) or []) + added
                to_update[category].append(merged)
                report.updated.append(ours["name"])
            else:
                report.unchanged.append(ours["name"])
    if problems:
        raise TypedefIncompatible("incompatible typedef changes, nothing was changed:\n  " + "\n  ".join(problems))
    if any(to_create.values()):
        client.create_typedefs(to_create)
    if any(to_update.values()):
        client.update_typedefs(to_update)
    return report
