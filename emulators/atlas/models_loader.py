"""Loads the vendored Atlas model files and applies their patches in Atlas's bootstrap order."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .typesystem import TypeRegistry, normalize_attribute

MODELS_DIR = Path(__file__).resolve().parent / "models"


def load_models(registry: TypeRegistry, models_dir: Path = MODELS_DIR) -> None:
    """Per area folder (sorted): create every type of every file (sorted), then apply patches/*.json."""
    for area in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        for f in sorted(area.glob("*.json")):
            registry.create(json.loads(f.read_text()), user="admin", allow_existing=True)
        patches_dir = area / "patches"
        if patches_dir.is_dir():
            for f in sorted(patches_dir.glob("*.json")):
                for patch in json.loads(f.read_text()).get("patches", []):
                    apply_patch(registry, patch)


def _version_applies(current: str, apply_to: str) -> bool:
    return current == apply_to or current.startswith(apply_to + ".")


def apply_patch(registry: TypeRegistry, patch: dict[str, Any]) -> bool:
    """Apply one typedef patch if its type exists and typeVersion matches applyToVersion; returns applied."""
    existing = registry.get(patch.get("typeName", ""))
    if existing is None or not _version_applies(existing.get("typeVersion", "1.0"), patch.get("applyToVersion", "")):
        return False
    d = copy.deepcopy(existing)
    action = patch.get("action")
    params = patch.get("params") or {}
    attrs = d.get("attributeDefs")
    if action == "ADD_ATTRIBUTE":
        names = {a["name"] for a in attrs}
        attrs.extend(normalize_attribute(a) for a in patch.get("attributeDefs", []) if a["name"] not in names)
    elif action == "UPDATE_ATTRIBUTE":
        updates = {a["name"]: normalize_attribute(a) for a in patch.get("attributeDefs", [])}
        d["attributeDefs"] = [updates.get(a["name"], a) for a in attrs]
    elif action == "UPDATE_ATTRIBUTE_METADATA":
        for a in attrs or []:
            if a["name"] == patch.get("attributeName"):
                a.update(params)
    elif action == "SET_SERVICE_TYPE":
        d["serviceType"] = patch.get("serviceType")
    elif action == "ADD_SUPER_TYPES":
        d["superTypes"] = list(dict.fromkeys([*d.get("superTypes", []), *patch.get("superTypes", [])]))
    elif action == "UPDATE_ENUMDEF":
        values = {e["value"] for e in d.get("elementDefs", [])}
        d["elementDefs"].extend(e for e in patch.get("elementDefs", []) if e["value"] not in values)
    elif action == "UPDATE_TYPEDEF_OPTIONS":
        d["options"] = {**(d.get("options") or {}), **(patch.get("typeDefOptions") or {})}
    elif action == "REMOVE_LEGACY_REF_ATTRIBUTES":
        for key in ("endDef1", "endDef2"):
            end = d[key]
            if end.get("isLegacyAttribute"):
                end["isLegacyAttribute"] = False
                holder = copy.deepcopy(registry.get(end["type"]))
                if holder is not None:
                    holder["attributeDefs"] = [a for a in holder["attributeDefs"] if a["name"] != end["name"]]
                    registry.replace_def(holder)
        if params.get("relationshipLabel"):
            d["relationshipLabel"] = params["relationshipLabel"]
        if params.get("relationshipCategory"):
            d["relationshipCategory"] = params["relationshipCategory"]
    else:
        return False
    d["typeVersion"] = patch.get("updateToVersion", d.get("typeVersion"))
    d["version"] = int(d.get("version", 1)) + 1
    registry.replace_def(d)
    return True
