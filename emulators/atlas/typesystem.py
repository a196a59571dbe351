"""Typedef registry: stores Atlas typedefs, validates create/update/delete and resolves inheritance.

Resolution mirrors AtlasTypeRegistry: supertypes give attributes to subtypes, relationship defs add
relationship attributes to their end types (COMPOSITION child ends become mandatory).
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import AtlasError, bad_request, java_str, type_guid_not_found, type_not_found

CATEGORY_LISTS = {
    "enumDefs": "ENUM",
    "structDefs": "STRUCT",
    "classificationDefs": "CLASSIFICATION",
    "entityDefs": "ENTITY",
    "relationshipDefs": "RELATIONSHIP",
    "businessMetadataDefs": "BUSINESS_METADATA",
}
LIST_FOR_CATEGORY = {v: k for k, v in CATEGORY_LISTS.items()}
INT_TYPES = {"byte", "short", "int", "long", "biginteger"}
FLOAT_TYPES = {"float", "double", "bigdecimal"}
PRIMITIVES = INT_TYPES | FLOAT_TYPES | {"boolean", "string", "date", "object"}
NAME_RE = re.compile(r"^(__)?[a-zA-Z][a-zA-Z0-9_ ]*$")
RESERVED_NAMES = {"description", "version", "options", "name", "servicetype"}
FILTER_TYPE_ALIASES = {
    "entity": "ENTITY", "class": "ENTITY", "classification": "CLASSIFICATION", "trait": "CLASSIFICATION",
    "struct": "STRUCT", "enum": "ENUM", "relationship": "RELATIONSHIP", "business_metadata": "BUSINESS_METADATA",
}


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_type(type_name: str) -> tuple[str, list[str]]:
    """Split 'array<T>' / 'map<K,V>' into ('array', [T]) / ('map', [K, V]); plain names give (name, [])."""
    t = type_name.strip()
    if t.startswith("array<") and t.endswith(">"):
        return "array", [t[6:-1].strip()]
    if t.startswith("map<") and t.endswith(">"):
        inner = t[4:-1]
        depth = 0
        for i, ch in enumerate(inner):
            depth += ch == "<"
            depth -= ch == ">"
            if ch == "," and depth == 0:
                return "map", [inner[:i].strip(), inner[i + 1:].strip()]
    return t, []


@dataclass
class RelAttr:
    """A relationship attribute contributed to an entity type by one end of a relationshipDef."""

    name: str
    rel_type: str
    end: int
    other_type: str
    cardinality: str
    is_optional: bool
    is_legacy: bool
    is_container: bool
    category: str

    @property
    def type_name(self) -> str:
        return f"array<{self.other_type}>" if self.cardinality in ("SET", "LIST") else self.other_type

    def as_def(self) -> dict[str, Any]:
        single = self.cardinality == "SINGLE"
        return {
            "name": self.name, "typeName": self.type_name, "isOptional": self.is_optional,
            "cardinality": self.cardinality, "valuesMinCount": 0 if self.is_optional else 1,
            "valuesMaxCount": 1 if single else 2147483647, "isUnique": False, "isIndexable": False,
            "includeInNotification": False, "searchWeight": -1, "constraints": [],
            "relationshipTypeName": self.rel_type, "isLegacyAttribute": self.is_legacy,
        }


@dataclass
class TypeInfo:
    """Resolved view of a struct/entity/classification type."""

    name: str
    category: str
    all_supers: list[str] = field(default_factory=list)
    all_subs: set[str] = field(default_factory=set)
    attributes: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    rel_attrs: dict[str, list[RelAttr]] = field(default_factory=dict)

    def unique_attrs(self) -> list[str]:
        return [n for n, (a, _) in self.attributes.items() if a.get("isUnique")]


def normalize_attribute(attr: dict[str, Any]) -> dict[str, Any]:
    """Fill AtlasAttributeDef defaults and compute valuesMinCount/valuesMaxCount like the graph store does."""
    a = dict(attr)
    a.setdefault("cardinality", "SINGLE")
    a["isOptional"] = bool(a.get("isOptional", False))
    for key in ("isUnique", "isIndexable", "includeInNotification"):
        a[key] = bool(a.get(key) or False)
    a.setdefault("searchWeight", -1)
    a.setdefault("constraints", a.get("constraints") or [])
    if a.get("constraints") is None:
        a["constraints"] = []
    single = a["cardinality"] == "SINGLE"
    given_min = a.get("valuesMinCount", -1) or -1
    given_max = a.get("valuesMaxCount", -1) or -1
    a["valuesMinCount"] = 0 if a["isOptional"] else (1 if single else max(1, given_min))
    a["valuesMaxCount"] = 1 if single else (given_max if given_max >= 2 else 2147483647)
    return a


class TypeRegistry:
    """All typedefs by name plus their resolved form; mutations are validated on a copy and committed whole."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self.info: dict[str, TypeInfo] = {}

    # ----- persistence -------------------------------------------------------------------------
    def to_state(self) -> list[dict[str, Any]]:
        return list(self.defs.values())

    def load_state(self, defs: list[dict[str, Any]]) -> None:
        self.defs = {d["name"]: d for d in defs}
        self.info = self._resolve(self.defs)

    # ----- lookup --------------------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any] | None:
        return self.defs.get(name)

    def category(self, name: str) -> str | None:
        d = self.defs.get(name)
        return d["category"] if d else None

    def is_entity(self, name: str | None) -> bool:
        return bool(name) and self.category(name) == "ENTITY"

    def is_classification(self, name: str | None) -> bool:
        return bool(name) and self.category(name) == "CLASSIFICATION"

    def entity(self, name: str) -> TypeInfo:
        return self.info[name]

    def is_a(self, name: str, ancestor: str) -> bool:
        info = self.info.get(name)
        return bool(info) and (name == ancestor or ancestor in info.all_supers)

    def with_subtypes(self, name: str) -> set[str]:
        info = self.info.get(name)
        return {name} | (info.all_subs if info else set())

    def get_by_name(self, name: str, category: str | None = None) -> dict[str, Any]:
        if not name:
            raise AtlasError(400, "ATLAS-400-00-014", "Type with name  does not exist")
        if name in PRIMITIVES or parse_type(name)[1]:
            raise AtlasError(400, "ATLAS-400-00-024", f"{name} is a System-type")
        d = self.defs.get(name)
        if d is None or (category and d["category"] != category):
            raise type_not_found(name)
        return self.render(d)

    def get_by_guid(self, guid: str, category: str | None = None) -> dict[str, Any]:
        for d in self.defs.values():
            if d.get("guid") == guid and (category is None or d["category"] == category):
                return self.render(d)
        raise type_guid_not_found(guid)

    def render(self, d: dict[str, Any]) -> dict[str, Any]:
        """Output form: stored def plus server-computed subTypes and relationshipAttributeDefs."""
        out = copy.deepcopy(d)
        if d["category"] in ("ENTITY", "CLASSIFICATION"):
            out["subTypes"] = sorted(
                n for n, o in self.defs.items() if o["category"] == d["category"] and d["name"] in o.get("superTypes", [])
            )
        if d["category"] == "ENTITY":
            info = self.info.get(d["name"])
            rels = []
            if info:
                for lst in info.rel_attrs.values():
                    rels.extend(r.as_def() for r in lst)
            out["relationshipAttributeDefs"] = rels
            out["businessAttributeDefs"] = {}
        return out

    def search(self, params: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        """GET /types/typedefs filters (SearchFilter / FilterUtil semantics)."""
        p = dict(params)
        if str(p.get("excludeInternalTypesAndReferences", "")).lower() == "true":
            p.setdefault("notname", "__internal")
            p.setdefault("notsupertype", "__internal")
        result: dict[str, list[dict[str, Any]]] = {k: [] for k in CATEGORY_LISTS}
        for d in self.defs.values():
            if self._matches(d, p):
                result[LIST_FOR_CATEGORY[d["category"]]].append(self.render(d))
        return result

    def _matches(self, d: dict[str, Any], p: dict[str, str]) -> bool:
        if "type" in p and FILTER_TYPE_ALIASES.get(p["type"].lower()) != d["category"]:
            return False
        if "name" in p and d["name"] != p["name"]:
            return False
        if "notname" in p and d["name"] == p["notname"]:
            return False
        if "servicetype" in p and d.get("serviceType") != p["servicetype"]:
            return False
        if "notservicetype" in p and d.get("serviceType") == p["notservicetype"]:
            return False
        supers = self.info[d["name"]].all_supers if d["name"] in self.info else []
        if "supertype" in p and (d["category"] not in ("ENTITY", "CLASSIFICATION") or p["supertype"] not in supers):
            return False
        return not ("notsupertype" in p and p["notsupertype"] in supers)

    # ----- mutation ------------------------------------------------------------------------------
    def create(self, types_def: dict[str, Any], user: str = "admin", allow_existing: bool = False) -> dict[str, Any]:
        """POST /types/typedefs: only new types; any existing name fails the whole request with 409."""
        new_defs = dict(self.defs)
        created: list[dict[str, Any]] = []
        for list_name, category in CATEGORY_LISTS.items():
            for raw in types_def.get(list_name) or []:
                name = raw.get("name") or ""
                self._check_name(name)
                if name in new_defs:
                    if allow_existing:
                        continue
                    raise AtlasError(409, "ATLAS-409-00-001", f"Given type {name} already exists")
                d = self._normalize_def(raw, category, user)
                new_defs[name] = d
                created.append(d)
        info = self._resolve(new_defs)
        self.defs, self.info = new_defs, info
        return self._as_types_def(created)

    def update(self, types_def: dict[str, Any], user: str = "admin") -> dict[str, Any]:
        """PUT /types/typedefs: optional attributes may be added; removal/type changes/mandatory adds fail."""
        new_defs = dict(self.defs)
        updated: list[dict[str, Any]] = []
        for list_name, category in CATEGORY_LISTS.items():
            for raw in types_def.get(list_name) or []:
                old = None
                if raw.get("guid"):
                    old = next((d for d in new_defs.values() if d.get("guid") == raw["guid"]), None)
                if old is None:
                    old = new_defs.get(raw.get("name") or "")
                if old is None:
                    raise type_not_found(raw.get("name") or raw.get("guid") or "")
                d = self._normalize_def(raw, category, user)
                self._check_update(old, d)
                d["guid"] = old["guid"]
                d["createdBy"], d["createTime"] = old.get("createdBy", user), old.get("createTime", now_ms())
                d["version"] = int(old.get("version", 1)) + 1
                d["updateTime"] = max(now_ms(), int(old.get("updateTime", 0)) + 1)
                new_defs[d["name"]] = d
                updated.append(d)
        info = self._resolve(new_defs)
        self.defs, self.info = new_defs, info
        return self._as_types_def(updated)

    def delete(self, names: list[str], in_use: set[str]) -> None:
        """DELETE typedefs by name; a type still used by entities or other types is 409."""
        for name in names:
            if name not in self.defs:
                raise type_not_found(name)
        remaining = {n: d for n, d in self.defs.items() if n not in names}
        for name in names:
            if name in in_use:
                raise AtlasError(409, "ATLAS-409-00-002", f"Given type {name} has references")
            for other in remaining.values():
                if other["category"] == "RELATIONSHIP" and name in (
                    other["endDef1"].get("type"), other["endDef2"].get("type")
                ):
                    raise AtlasError(409, "ATLAS-409-00-005", f"Given type {name} has associated relationshipDefs")
        info = self._resolve(remaining)
        self.defs, self.info = remaining, info

    def replace_def(self, d: dict[str, Any]) -> None:
        """Used by model patches: swap a stored def and re-resolve."""
        new_defs = dict(self.defs)
        new_defs[d["name"]] = d
        self.info = self._resolve(new_defs)
        self.defs = new_defs

    # ----- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _check_name(name: str) -> None:
        if not NAME_RE.match(name or ""):
            raise AtlasError(400, "ATLAS-400-00-019", f"{name}: invalid name for type")
        if name.lower() in RESERVED_NAMES:
            raise AtlasError(400, "ATLAS-400-00-102", f"{name}: invalid name. Names cannot be reserved keywords")

    @staticmethod
    def _as_types_def(defs: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: [] for k in CATEGORY_LISTS}
        for d in defs:
            out[LIST_FOR_CATEGORY[d["category"]]].append(copy.deepcopy(d))
        return out

    def _normalize_def(self, raw: dict[str, Any], category: str, user: str) -> dict[str, Any]:
        d = copy.deepcopy(raw)
        for key in ("subTypes", "relationshipAttributeDefs", "businessAttributeDefs"):
            d.pop(key, None)
        d["category"] = category
        d["guid"] = d.get("guid") or str(uuid.uuid4())
        d["createdBy"] = d["updatedBy"] = user
        ts = now_ms()
        d["createTime"] = d["updateTime"] = ts
        d["version"] = 1
        d["description"] = d.get("description") or d["name"]
        d["typeVersion"] = d.get("typeVersion") or "1.0"
        if category in ("STRUCT", "ENTITY", "CLASSIFICATION", "RELATIONSHIP", "BUSINESS_METADATA"):
            d["attributeDefs"] = [normalize_attribute(a) for a in d.get("attributeDefs") or []]
        if category in ("ENTITY", "CLASSIFICATION"):
            d["superTypes"] = list(dict.fromkeys(d.get("superTypes") or []))
        if category == "CLASSIFICATION":
            d["entityTypes"] = list(dict.fromkeys(d.get("entityTypes") or []))
        if category == "ENUM":
            elems = []
            for i, e in enumerate(d.get("elementDefs") or []):
                e = dict(e)
                e.setdefault("ordinal", i)
                elems.append(e)
            d["elementDefs"] = elems
        if category == "RELATIONSHIP":
            d.setdefault("relationshipCategory", "ASSOCIATION")
            d.setdefault("propagateTags", "NONE")
            for key in ("endDef1", "endDef2"):
                end = dict(d.get(key) or {})
                end.setdefault("cardinality", "SINGLE")
                end["isContainer"] = bool(end.get("isContainer", False))
                end["isLegacyAttribute"] = bool(end.get("isLegacyAttribute", False))
                end.setdefault("description", "")
                d[key] = end
        return d

    @staticmethod
    def _check_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        if old["category"] != new["category"]:
            raise bad_request(f"{new['name']}: type category can not be changed")
        if new["category"] not in ("STRUCT", "ENTITY", "CLASSIFICATION", "BUSINESS_METADATA"):
            return
        old_attrs = {a["name"]: a for a in old.get("attributeDefs", [])}
        new_attrs = {a["name"]: a for a in new.get("attributeDefs", [])}
        for name in old_attrs:
            if name not in new_attrs:
                raise AtlasError(
                    400, "ATLAS-400-00-00D", f"{new['name']}.{name} : attribute delete not supported"
                )
        for name, a in new_attrs.items():
            if name not in old_attrs:
                if not a.get("isOptional"):
                    raise AtlasError(400, "ATLAS-400-00-00C", f"{new['name']}.{name} : can not add mandatory attribute")
            elif a["typeName"] != old_attrs[name]["typeName"]:
                raise bad_request(f"Data type update for attribute is not supported: {new['name']}.{name}")
        if new["category"] in ("ENTITY", "CLASSIFICATION"):
            removed = set(old.get("superTypes", [])) - set(new.get("superTypes", []))
            if removed:
                raise AtlasError(400, "ATLAS-400-00-00E", f"{new['name']}: superTypes can not be removed: {sorted(removed)}")

    def _type_exists(self, defs: dict[str, dict[str, Any]], type_name: str) -> bool:
        base, args = parse_type(type_name)
        if args:
            return all(self._type_exists(defs, a) for a in args)
        return base in PRIMITIVES or base in defs

    def _resolve(self, defs: dict[str, dict[str, Any]]) -> dict[str, TypeInfo]:
        """Validate references and compute inheritance and relationship attributes; raises AtlasError."""

        def missing(name: str) -> AtlasError:
            return bad_request(f"Given typename {name} was invalid")

        info: dict[str, TypeInfo] = {}
        for d in defs.values():
            if d["category"] in ("STRUCT", "ENTITY", "CLASSIFICATION", "BUSINESS_METADATA", "RELATIONSHIP"):
                for a in d.get("attributeDefs", []):
                    if not self._type_exists(defs, a["typeName"]):
                        raise missing(a["typeName"])
            if d["category"] in ("ENTITY", "CLASSIFICATION"):
                for st in d.get("superTypes", []):
                    if st not in defs or defs[st]["category"] != d["category"]:
                        raise missing(st)
            if d["category"] in ("STRUCT", "ENTITY", "CLASSIFICATION"):
                info[d["name"]] = TypeInfo(d["name"], d["category"])

        def supers(name: str, trail: tuple[str, ...]) -> list[str]:
            out: list[str] = []
            for st in defs[name].get("superTypes", []):
                if st in trail:
                    raise AtlasError(400, "ATLAS-400-00-002", f"{name}: cyclic supertypes")
                for s in [st, *supers(st, (*trail, st))]:
                    if s not in out:
                        out.append(s)
            return out

        for name, ti in info.items():
            ti.all_supers = supers(name, (name,)) if ti.category != "STRUCT" else []
            for s in ti.all_supers:
                info[s].all_subs.add(name)
        # attributes: supertypes first (declaration order), then own; redeclaration is 09E
        for name, ti in info.items():
            for s in reversed(ti.all_supers):
                for a in defs[s].get("attributeDefs", []):
                    ti.attributes.setdefault(a["name"], (a, s))
            for a in defs[name].get("attributeDefs", []):
                if a["name"] in ti.attributes and ti.category == "ENTITY":
                    parent = ti.attributes[a["name"]][1]
                    raise AtlasError(
                        400, "ATLAS-400-00-09E",
                        f"Invalid attribute name: {name}.{a['name']}. Attribute already exists in another parent "
                        f"type: {parent}",
                    )
                ti.attributes[a["name"]] = (a, name)
        for d in defs.values():
            if d["category"] == "CLASSIFICATION":
                for et in d.get("entityTypes", []):
                    if et not in defs or defs[et]["category"] != "ENTITY":
                        raise missing(et)
            if d["category"] != "RELATIONSHIP":
                continue
            e1, e2 = d["endDef1"], d["endDef2"]
            for end in (e1, e2):
                if end.get("type") not in defs or defs[end["type"]]["category"] != "ENTITY":
                    raise missing(str(end.get("type")))
                if end.get("cardinality") == "LIST":
                    raise AtlasError(400, "ATLAS-400-00-03B", f"{d['name']}: LIST cardinality is not supported")
            for idx, end, other in ((1, e1, e2), (2, e2, e1)):
                comp = d["relationshipCategory"] == "COMPOSITION"
                optional = not (comp and not end["isContainer"])
                legacy_attr = info[end["type"]].attributes.get(end["name"])
                if legacy_attr is not None and not comp:
                    optional = legacy_attr[0].get("isOptional", True)
                ra = RelAttr(
                    end["name"], d["name"], idx, other["type"], end["cardinality"], optional,
                    bool(end.get("isLegacyAttribute")), bool(end["isContainer"]), d["relationshipCategory"],
                )
                for t in [end["type"], *sorted(info[end["type"]].all_subs)]:
                    info[t].rel_attrs.setdefault(end["name"], []).append(ra)
        return info

    # ----- values --------------------------------------------------------------------------------
    def check_value(self, type_name: str, value: Any, field_name: str, messages: list[str]) -> Any:
        """Validate/normalise an attribute value like AtlasType.validateValue; appends Atlas messages."""
        base, args = parse_type(type_name)

        def bad() -> None:
            messages.append(f"{field_name}={java_str(value)}: invalid value for type {type_name}")

        if value is None:
            return None
        if base == "array":
            if not isinstance(value, list):
                value = [value]
            return [self.check_value(args[0], v, f"{field_name}", messages) for v in value]
        if base == "map":
            if not isinstance(value, dict):
                bad()
                return value
            return {str(k): self.check_value(args[1], v, field_name, messages) for k, v in value.items()}
        if base == "string":
            if isinstance(value, dict | list):
                bad()
            return value if isinstance(value, str) else java_str(value)
        if base in INT_TYPES:
            if isinstance(value, bool):
                bad()
                return value
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                try:
                    return int(float(value)) if re.fullmatch(r"-?\d+(\.0*)?", value.strip()) else int(value)
                except ValueError:
                    pass
            bad()
            return value
        if base in FLOAT_TYPES:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            try:
                return float(value)
            except (TypeError, ValueError):
                bad()
                return value
        if base == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            bad()
            return value
        if base == "date":
            parsed = parse_date(value)
            if parsed is None:
                bad()
                return value
            return parsed
        if base == "object":
            return value
        d = self.defs.get(base)
        if d is None:
            bad()
            return value
        if d["category"] == "ENUM":
            for e in d.get("elementDefs", []):
                if value == e["value"] or (isinstance(value, int) and not isinstance(value, bool)
                                           and value == e.get("ordinal")):
                    return e["value"]
            bad()
            return value
        if d["category"] == "STRUCT":
            if not isinstance(value, dict):
                bad()
                return value
            attrs = value.get("attributes") if isinstance(value.get("attributes"), dict) else value
            out = {}
            for aname, (adef, declaring) in self.info[base].attributes.items():
                v = attrs.get(aname)
                if v is None:
                    if not adef.get("isOptional"):
                        messages.append(f"{field_name}.{aname}: mandatory attribute value missing in type {declaring}")
                    continue
                out[aname] = self.check_value(adef["typeName"], v, f"{field_name}.{aname}", messages)
            return {"typeName": base, "attributes": out}
        if d["category"] == "ENTITY":
            if not isinstance(value, dict):
                bad()
            return value
        bad()
        return value


def parse_date(value: Any) -> int | None:
    """AtlasDateType: epoch millis (number or numeric string) or ISO 'yyyy-MM-ddTHH:mm:ss.SSSZ' / 'yyyy-MM-dd'."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"-?\d+", s):
            return int(s)
        for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d"):
            try:
                dt = datetime.strptime(s, fmt)
            except ValueError:
                continue
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            return int(dt.timestamp() * 1000)
    return None
