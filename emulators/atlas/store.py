"""Entity store: upsert, relationships, classifications (with propagation), labels, soft delete, audit.

Semantics follow AtlasEntityStoreV2 / EntityGraphMapper as described in CONTRACT.md §3.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import time
import uuid
from typing import Any

from .errors import (
    AtlasError,
    classification_not_found,
    entity_type_missing,
    guid_not_found,
    invalid_parameters,
    invalid_params,
    java_str,
    referenced_not_found,
    unique_not_found,
)
from .typesystem import RelAttr, TypeRegistry, parse_type

HEADER_ATTRS = ("name", "description", "owner", "createTime")
LABEL_RE = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af]+$")
_tmp_counter = itertools.count(int(time.time_ns() // 1000))


def is_assigned(guid: str | None) -> bool:
    return bool(guid) and not str(guid).startswith("-")


def new_temp_guid() -> str:
    return f"-{next(_tmp_counter)}"



PRIMITIVE_DEFAULTS: dict[str, Any] = {"byte": 0, "short": 0, "int": 0, "long": 0, "float": 0, "double": 0,
                                      "biginteger": 0, "bigdecimal": 0, "date": 0, "boolean": False}


def primitive_defaults(info: Any) -> dict[str, Any]:
    """What Atlas stores for the primitive attributes a create leaves out (EntityGraphMapper.mapAttribute):
    the attribute's defaultValue, else the type's default (0, false, the epoch for dates); strings stay null."""
    out: dict[str, Any] = {}
    for name, (adef, _) in info.attributes.items():
        base = str(adef.get("typeName", "")).lower()
        if base not in PRIMITIVE_DEFAULTS:
            continue
        default = adef.get("defaultValue")
        if default is None:
            out[name] = PRIMITIVE_DEFAULTS[base]
        elif base == "boolean":
            out[name] = str(default).lower() == "true"
        else:
            try:
                out[name] = int(default) if base not in ("float", "double", "bigdecimal") else float(default)
            except ValueError:
                out[name] = PRIMITIVE_DEFAULTS[base]
    return out

class EntityStore:
    """In-memory graph of entities and relationships; callers hold the emulator lock."""

    def __init__(self, registry: TypeRegistry) -> None:
        self.reg = registry
        self.entities: dict[str, dict[str, Any]] = {}
        self.relationships: dict[str, dict[str, Any]] = {}
        self.audit: dict[str, list[dict[str, Any]]] = {}
        self._rels_by_entity: dict[str, set[str]] = {}
        self._clock = 0
        self._prop_cache: tuple[int, dict[str, list[dict[str, Any]]]] | None = None
        self.mutations = 0

    # ----- persistence ---------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"entities": self.entities, "relationships": self.relationships, "audit": self.audit,
                "clock": self._clock}

    def load_state(self, state: dict[str, Any]) -> None:
        self.entities = state.get("entities", {})
        self.relationships = state.get("relationships", {})
        self.audit = state.get("audit", {})
        self._clock = state.get("clock", 0)
        self._rels_by_entity = {}
        for r in self.relationships.values():
            self._index_rel(r)
        self._touch()

    # ----- time / bookkeeping --------------------------------------------------------------------
    def _now(self) -> int:
        """Strictly increasing epoch millis so updateTime and audit ordering are deterministic."""
        self._clock = max(self._clock + 1, int(time.time() * 1000))
        return self._clock

    def _touch(self) -> None:
        self.mutations += 1
        self._prop_cache = None

    def _index_rel(self, r: dict[str, Any]) -> None:
        self._rels_by_entity.setdefault(r["end1"], set()).add(r["guid"])
        self._rels_by_entity.setdefault(r["end2"], set()).add(r["guid"])

    def _audit(self, guid: str, action: str, details: str, user: str) -> None:
        ts = self._now()
        events = self.audit.setdefault(guid, [])
        events.append({"entityId": guid, "timestamp": ts, "user": user, "action": action, "details": details,
                       "eventKey": f"{guid}:{ts}", "entity": None, "type": "ENTITY_AUDIT_V2"})

    # ----- lookup --------------------------------------------------------------------------------
    def get_record(self, guid: str) -> dict[str, Any]:
        rec = self.entities.get(guid)
        if rec is None:
            raise guid_not_found(guid)
        return rec

    def find_by_unique(self, type_name: str, attrs: dict[str, Any]) -> str | None:
        """Active entity of type_name or a subtype whose unique attribute(s) match (per-type uniqueness)."""
        types = self.reg.with_subtypes(type_name)
        info = self.reg.entity(type_name)
        keys = [(k, v) for k, v in attrs.items() if v is not None and k in info.attributes
                and info.attributes[k][0].get("isUnique")]
        if not keys:
            return None
        for guid, rec in self.entities.items():
            if rec["status"] != "ACTIVE" or rec["typeName"] not in types:
                continue
            for k, v in keys:
                if rec["attributes"].get(k) == v:
                    return guid
        return None

    def find_exact(self, type_name: str, attrs: dict[str, Any]) -> str | None:
        """Unique-attribute URL lookup: all given attr: values must match."""
        types = self.reg.with_subtypes(type_name)
        for guid, rec in self.entities.items():
            if rec["status"] == "ACTIVE" and rec["typeName"] in types and all(
                rec["attributes"].get(k) == v for k, v in attrs.items()
            ):
                return guid
        return None

    def rels_of(self, guid: str, active_only: bool = True) -> list[dict[str, Any]]:
        out = [self.relationships[g] for g in self._rels_by_entity.get(guid, ())]
        return [r for r in out if not active_only or r["status"] == "ACTIVE"]

    def related(self, guid: str, ra: RelAttr, active_only: bool = True) -> list[dict[str, Any]]:
        """Relationships in which guid sits on ra's end of ra's relationship type."""
        key = "end1" if ra.end == 1 else "end2"
        return [r for r in self.rels_of(guid, active_only) if r["typeName"] == ra.rel_type and r[key] == guid]

    # ----- rendering -----------------------------------------------------------------------------
    def display_text(self, rec: dict[str, Any]) -> str | None:
        d = self.reg.get(rec["typeName"]) or {}
        opt = (d.get("options") or {}).get("displayTextAttribute")
        for key in ([opt] if opt else []) + ["name", "displayName", "qualifiedName"]:
            if rec["attributes"].get(key) is not None:
                return str(rec["attributes"][key])
        return None

    def unique_attributes(self, rec: dict[str, Any]) -> dict[str, Any]:
        info = self.reg.entity(rec["typeName"])
        return {k: rec["attributes"].get(k) for k in info.unique_attrs()}

    def object_id(self, guid: str) -> dict[str, Any]:
        rec = self.entities[guid]
        return {"guid": guid, "typeName": rec["typeName"], "uniqueAttributes": self.unique_attributes(rec)}

    def related_object_id(self, rel: dict[str, Any], other: str) -> dict[str, Any]:
        rec = self.entities[other]
        out = self.object_id(other)
        out.update({"entityStatus": rec["status"], "displayText": self.display_text(rec),
                    "relationshipType": rel["typeName"], "relationshipGuid": rel["guid"],
                    "relationshipStatus": rel["status"],
                    "relationshipAttributes": {"typeName": rel["typeName"], "attributes": rel.get("attributes", {})}})
        return out

    def classifications_of(self, guid: str) -> list[dict[str, Any]]:
        rec = self.entities[guid]
        return [copy.deepcopy(c) for c in rec.get("classifications", [])] + self.propagated(guid)

    def classification_names(self, guid: str) -> list[str]:
        return list(dict.fromkeys(c["typeName"] for c in self.classifications_of(guid)))

    def header(self, guid: str, extra_attrs: list[str] | None = None, with_classifications: bool = True
               ) -> dict[str, Any]:
        """AtlasEntityHeader: unique attrs + name/description/owner/createTime ("" when unset)."""
        rec = self.entities[guid]
        info = self.reg.entity(rec["typeName"])
        attrs: dict[str, Any] = {}
        for k in [*info.unique_attrs(), *[h for h in HEADER_ATTRS if h in info.attributes]]:
            v = rec["attributes"].get(k)
            attrs[k] = "" if v is None else v
        for k in extra_attrs or []:
            if k in info.attributes:
                attrs[k] = rec["attributes"].get(k)
            elif k in info.rel_attrs:
                attrs[k] = self._rel_value(guid, k, info.rel_attrs[k], plain=True)
        out: dict[str, Any] = {"typeName": rec["typeName"], "attributes": attrs, "guid": guid,
                               "status": rec["status"], "displayText": self.display_text(rec)}
        out["classificationNames"] = self.classification_names(guid)
        if with_classifications:
            out["classifications"] = self.classifications_of(guid)
        out.update({"meaningNames": [], "meanings": [], "isIncomplete": False, "labels": list(rec.get("labels", []))})
        return out

    def _rel_value(self, guid: str, name: str, options: list[RelAttr], plain: bool) -> Any:
        """A soft-deleted relationship stays in the entity's arrays (EntityGraphRetriever maps every edge of
        the label, relationshipStatus DELETED); a single-valued attribute shows the active one."""
        ra = options[0]
        values, active = [], []
        for opt in options:
            for r in self.related(guid, opt, active_only=False):
                other = r["end2"] if opt.end == 1 else r["end1"]
                value = self.object_id(other) if plain else self.related_object_id(r, other)
                values.append(value)
                if r["status"] == "ACTIVE":
                    active.append(value)
        if ra.cardinality == "SINGLE":
            return (active or values or [None])[-1]
        return values

    def entity_json(self, guid: str, ignore_relationships: bool = False) -> dict[str, Any]:
        """AtlasEntity as returned by GET: all type attributes (null when unset) plus relationshipAttributes."""
        rec = self.entities[guid]
        info = self.reg.entity(rec["typeName"])
        attrs = {k: rec["attributes"].get(k) for k in info.attributes}
        for name, opts in info.rel_attrs.items():
            if name in info.attributes and any(o.is_legacy for o in opts):
                attrs[name] = self._rel_value(guid, name, opts, plain=True)
        out: dict[str, Any] = {"typeName": rec["typeName"], "attributes": attrs, "guid": guid,
                               "isIncomplete": False, "provenanceType": 0, "status": rec["status"],
                               "createdBy": rec["createdBy"], "updatedBy": rec["updatedBy"],
                               "createTime": rec["createTime"], "updateTime": rec["updateTime"],
                               "version": rec["version"]}
        if not ignore_relationships:
            out["relationshipAttributes"] = {
                name: self._rel_value(guid, name, opts, plain=False) for name, opts in info.rel_attrs.items()
            }
        classes = self.classifications_of(guid)
        if classes:
            out["classifications"] = classes
        if rec.get("labels"):
            out["labels"] = list(rec["labels"])
        if rec.get("customAttributes"):
            out["customAttributes"] = dict(rec["customAttributes"])
        out["proxy"] = False
        return out

    def entity_with_ext(self, guid: str, min_ext: bool = False, ignore_rel: bool = False) -> dict[str, Any]:
        """AtlasEntityWithExtInfo: owned (COMPOSITION container) children go into referredEntities."""
        out = self.entities_with_ext([guid], min_ext, ignore_rel)
        return {"entity": out["entities"][0], "referredEntities": out["referredEntities"]}

    def entities_with_ext(self, guids: list[str], min_ext: bool = False, ignore_rel: bool = False
                          ) -> dict[str, Any]:
        """AtlasEntitiesWithExtInfo as EntityGraphRetriever.toAtlasEntitiesWithExtInfo builds it: one map of
        the entities mapped so far, by guid, shared by the listed entities and their owned children. So with
        minExtInfo an entity listed after its container comes back in the minimal form it was first mapped
        in, without relationshipAttributes (as Atlas 2.1 answers); compact() then leaves out of
        referredEntities what is listed. Without minExtInfo an owned child is mapped in full, and so are its
        own owned children (``mapVertexToAtlasEntity`` recurses: a project brings its builds and their
        deployments, as Atlas 2.1 answers)."""
        mapped: dict[str, Any] = {}
        for guid in guids:
            if guid not in mapped:
                mapped[guid] = self.entity_json(guid, ignore_rel)
            queue = [guid]
            while queue:
                parent = queue.pop(0)
                info = self.reg.entity(self.entities[parent]["typeName"])
                for opts in info.rel_attrs.values():
                    for opt in opts:
                        if opt.category == "COMPOSITION" and opt.is_container:
                            for r in self.related(parent, opt):
                                child = r["end2"] if opt.end == 1 else r["end1"]
                                if child in mapped:
                                    continue
                                if min_ext:
                                    mapped[child] = self.header(child)
                                else:
                                    mapped[child] = self.entity_json(child, ignore_rel)
                                    queue.append(child)
        return {"entities": [mapped[g] for g in guids],
                "referredEntities": {g: e for g, e in mapped.items() if g not in guids}}

    # ----- upsert --------------------------------------------------------------------------------
    def create_or_update(self, entities: list[dict[str, Any]], referred: dict[str, Any] | None, user: str,
                         partial: bool = False) -> dict[str, Any]:
        """POST /entity, /entity/bulk (and partial updates): discovery, resolution, validation, mapping."""
        req: dict[str, dict[str, Any]] = {}
        order: list[str] = []
        for key, raw in [(None, e) for e in entities] + list((referred or {}).items()):
            if not isinstance(raw, dict):
                raise AtlasError(400, "ATLAS-400-00-01A", "invalid parameters: entity is not an object")
            e = copy.deepcopy(raw)
            if not self.reg.is_entity(e.get("typeName")):
                raise entity_type_missing(str(e.get("typeName")))
            guid = str(e.get("guid") or key or new_temp_guid())
            e["guid"] = guid
            e.setdefault("attributes", {})
            e["attributes"] = e["attributes"] or {}
            e["relationshipAttributes"] = e.get("relationshipAttributes") or {}
            if guid not in req:
                order.append(guid)
            req[guid] = e
        # resolve each request entity to an existing one (guid, then unique attributes)
        resolved: dict[str, str] = {}
        existing: set[str] = set()
        for guid, e in req.items():
            found = guid if is_assigned(guid) and guid in self.entities else None
            if found is None:
                found = self.find_by_unique(e["typeName"], e["attributes"])
            if found is None and is_assigned(guid):
                raise referenced_not_found(guid)
            if found is not None:
                resolved[guid] = found
                existing.add(guid)
        for guid in order:
            if guid not in resolved:
                resolved[guid] = str(uuid.uuid4())
        # split attributes and resolve references (404 -00A before validation, as in Atlas)
        plans = []
        for guid in order:
            e = req[guid]
            info = self.reg.entity(e["typeName"])
            plain, rels = self._compact(e, info)
            rel_targets = {name: self._resolve_rel(val, info.rel_attrs[name], req, resolved)
                           for name, val in rels.items()}
            plans.append((guid, e, info, plain, rels, rel_targets))
        messages: list[str] = []
        normalized: dict[str, dict[str, Any]] = {}
        for guid, e, _info, plain, rels, _ in plans:
            check_mandatory = not partial
            normalized[guid] = self._validate(e["typeName"], plain, rels, messages, check_mandatory)
            if messages:
                raise invalid_params(messages)
        for _guid, e, _i, _p, _r, _t in plans:
            for lab in e.get("labels") or []:
                self._check_label(lab)
        return self._apply(plans, normalized, resolved, existing, user, partial)

    def _compact(self, e: dict[str, Any], info: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Move relationship attributes given in `attributes` to relationshipAttributes (ES compactAttributes)."""
        plain: dict[str, Any] = {}
        rels: dict[str, Any] = {}
        for k, v in e["attributes"].items():
            if k in info.rel_attrs and (k not in info.attributes or isinstance(v, dict | list)):
                rels[k] = v
            elif k in info.attributes:
                plain[k] = v
        for k, v in e["relationshipAttributes"].items():
            if k in info.rel_attrs:
                rels[k] = v
        return plain, rels

    def _resolve_ref(self, ref: Any, req: dict[str, Any], resolved: dict[str, str]) -> str:
        if isinstance(ref, str):
            ref = {"guid": ref}
        if not isinstance(ref, dict):
            raise AtlasError(400, "ATLAS-400-00-021", f"Invalid object id {java_str(ref)}")
        guid = ref.get("guid")
        if guid:
            guid = str(guid)
            if guid in resolved:
                return resolved[guid]
            if is_assigned(guid) and guid in self.entities:
                return guid
            raise referenced_not_found(guid)
        type_name, uniq = ref.get("typeName"), ref.get("uniqueAttributes")
        if type_name and uniq:
            if not self.reg.is_entity(type_name):
                raise entity_type_missing(type_name)
            found = self.find_by_unique(type_name, uniq)
            if found:
                return found
            raise referenced_not_found(
                f"AtlasObjectId{{guid='null', typeName='{type_name}', uniqueAttributes={{"
                + ", ".join(f"{k}:{v}" for k, v in uniq.items()) + "}}"
            )
        raise AtlasError(400, "ATLAS-400-00-021", f"Invalid object id {java_str(ref)}")

    def _resolve_rel(self, value: Any, options: list[RelAttr], req: dict[str, Any], resolved: dict[str, str]
                     ) -> list[tuple[RelAttr, str, dict[str, Any]]]:
        refs = value if isinstance(value, list) else ([] if value is None else [value])
        out = []
        for ref in refs:
            ra = options[0]
            if isinstance(ref, dict) and ref.get("relationshipType"):
                ra = next((o for o in options if o.rel_type == ref["relationshipType"]), ra)
            target = self._resolve_ref(ref, req, resolved)
            rel_attrs = (ref.get("relationshipAttributes") or {}) if isinstance(ref, dict) else {}
            out.append((ra, target, rel_attrs.get("attributes", rel_attrs) if isinstance(rel_attrs, dict) else {}))
        return out

    def _validate(self, type_name: str, plain: dict[str, Any], rels: dict[str, Any], messages: list[str],
                  check_mandatory: bool) -> dict[str, Any]:
        """AtlasEntityType.validateValue order: supertypes, then relationship attributes, then own attributes."""
        out: dict[str, Any] = {}
        seen: set[str] = set()

        def visit(tname: str) -> None:
            if tname in seen:
                return
            seen.add(tname)
            d = self.reg.get(tname) or {}
            for st in d.get("superTypes", []):
                visit(st)
            info = self.reg.entity(tname)
            if check_mandatory:
                for name, opts in info.rel_attrs.items():
                    if opts[0].is_optional or opts[0].rel_type not in self._rel_types_declared_on(tname):
                        continue
                    if rels.get(name) in (None, []) and plain.get(name) is None:
                        messages.append(f"{type_name}.{name}: mandatory attribute value missing in type {tname}")
            for a in d.get("attributeDefs", []):
                name = a["name"]
                if name in rels and name not in plain:
                    continue
                if name in plain and plain[name] is not None:
                    out[name] = self.reg.check_value(a["typeName"], plain[name], f"{type_name}.{name}", messages)
                elif name in plain:
                    out[name] = None
                    if check_mandatory and not a.get("isOptional"):
                        messages.append(f"{type_name}.{name}: mandatory attribute value missing in type {tname}")
                elif check_mandatory and not a.get("isOptional"):
                    messages.append(f"{type_name}.{name}: mandatory attribute value missing in type {tname}")

        visit(type_name)
        return out

    def _rel_types_declared_on(self, tname: str) -> set[str]:
        out = set()
        for d in self.reg.defs.values():
            if d["category"] == "RELATIONSHIP" and tname in (d["endDef1"]["type"], d["endDef2"]["type"]):
                out.add(d["name"])
        return out

    def _apply(self, plans: list[Any], normalized: dict[str, dict[str, Any]], resolved: dict[str, str],
               existing: set[str], user: str, partial: bool) -> dict[str, Any]:
        created: list[str] = []
        updated: list[str] = []
        rel_updated: list[str] = []
        now = self._now()
        for guid, e, _info, _plain, _rels, _targets in plans:
            sguid = resolved[guid]
            if guid in existing or sguid in created or sguid in updated:
                continue
            self.entities[sguid] = {
                "guid": sguid, "typeName": e["typeName"], "attributes": {}, "status": "ACTIVE",
                "createdBy": user, "updatedBy": user, "createTime": now, "updateTime": now, "version": 0,
                "classifications": [], "labels": list(e.get("labels") or []),
                "customAttributes": dict(e.get("customAttributes") or {}),
            }
            for c in e.get("classifications") or []:
                self.entities[sguid]["classifications"].append(self._norm_classification(c, sguid))
            created.append(sguid)
        for guid, e, _info, _plain, _rels, targets in plans:
            sguid = resolved[guid]
            rec = self.entities[sguid]
            changed = False
            new_attrs = dict(rec["attributes"])
            new_attrs.update(normalized[guid])
            if sguid in created:
                new_attrs = {**primitive_defaults(_info), **new_attrs}
            if new_attrs != rec["attributes"]:
                rec["attributes"] = new_attrs
                changed = True
            if "customAttributes" in e and sguid not in created and e["customAttributes"] != rec["customAttributes"]:
                rec["customAttributes"] = dict(e["customAttributes"] or {})
                changed = True
            for _name, entries in targets.items():
                changed |= self._set_relationships(sguid, entries, user, rel_updated, created)
            if sguid in created:
                continue
            if changed and sguid not in updated:
                rec["updatedBy"], rec["updateTime"] = user, self._now()
                rec["version"] += 1
                updated.append(sguid)
        for g in rel_updated:
            if g not in created and g not in updated:
                self.entities[g]["updateTime"] = self._now()
        resp: dict[str, Any] = {}
        mutated: dict[str, list[dict[str, Any]]] = {}
        if created:
            mutated["CREATE"] = [self.header(g) for g in created]
        upd_key = "PARTIAL_UPDATE" if partial else "UPDATE"
        upd_list = [self.header(g) for g in updated]
        upd_list += [self.header(g, with_classifications=False) for g in dict.fromkeys(rel_updated)
                     if g not in created and g not in updated]
        if upd_list:
            if partial:
                mutated["PARTIAL_UPDATE"] = [h for h in upd_list if h["guid"] in updated]
                rest = [h for h in upd_list if h["guid"] not in updated]
                if rest:
                    mutated["UPDATE"] = rest
            else:
                mutated[upd_key] = upd_list
        if mutated:
            resp["mutatedEntities"] = mutated
        if partial and mutated.get("PARTIAL_UPDATE"):
            resp["partialUpdatedEntities"] = mutated["PARTIAL_UPDATE"]
        resp["guidAssignments"] = {g: s for g, s in resolved.items() if g != s}
        for g in created:
            self._audit(g, "ENTITY_CREATE", "Created: " + json.dumps(self.entity_json(g)), user)
        for g in updated + [x for x in dict.fromkeys(rel_updated) if x not in created and x not in updated]:
            self._audit(g, "ENTITY_UPDATE", "Updated: " + json.dumps(self.entity_json(g)), user)
        if created or updated or rel_updated:
            self._touch()
        return resp

    def _set_relationships(self, guid: str, entries: list[tuple[RelAttr, str, dict[str, Any]]], user: str,
                           rel_updated: list[str], created: list[str]) -> bool:
        """Make guid's relationships for one attribute equal to entries; returns whether anything changed."""
        changed = False
        by_type: dict[str, list[tuple[RelAttr, str, dict[str, Any]]]] = {}
        for ent in entries:
            by_type.setdefault(ent[0].rel_type, []).append(ent)
        if not entries:
            return False
        for _rel_type, ents in by_type.items():
            ra = ents[0][0]
            if ra.cardinality == "SINGLE":
                ents = ents[-1:]
            wanted = {t for _, t, _ in ents}
            current = self.related(guid, ra)
            other_key = "end2" if ra.end == 1 else "end1"
            for r in current:
                if r[other_key] not in wanted:
                    r["status"], r["updateTime"] = "DELETED", self._now()
                    rel_updated.append(r[other_key])
                    changed = True
            have = {r[other_key] for r in current}
            for _, target, rattrs in ents:
                if target in have:
                    continue
                end1, end2 = (guid, target) if ra.end == 1 else (target, guid)
                self._new_relationship(ra.rel_type, end1, end2, rattrs, user)
                have.add(target)
                changed = True
                if target not in created:
                    rel_updated.append(target)
        return changed

    def _new_relationship(self, rel_type: str, end1: str, end2: str, attrs: dict[str, Any], user: str
                          ) -> dict[str, Any]:
        d = self.reg.get(rel_type) or {}
        ts = self._now()
        r = {"guid": str(uuid.uuid4()), "typeName": rel_type, "end1": end1, "end2": end2, "status": "ACTIVE",
             "attributes": dict(attrs or {}), "label": d.get("relationshipLabel") or f"r:{rel_type}",
             "propagateTags": d.get("propagateTags", "NONE"), "createdBy": user, "updatedBy": user,
             "createTime": ts, "updateTime": ts, "version": 0}
        self.relationships[r["guid"]] = r
        self._index_rel(r)
        return r

    # ----- partial updates -----------------------------------------------------------------------
    def update_attribute_by_guid(self, guid: str, attr: str, value: Any, user: str) -> dict[str, Any]:
        rec = self.get_record(guid)
        info = self.reg.entity(rec["typeName"])
        if attr not in info.attributes and attr not in info.rel_attrs:
            raise AtlasError(400, "ATLAS-400-00-023", f"Attribute {attr} not found for type {rec['typeName']}")
        tname = info.attributes[attr][0]["typeName"] if attr in info.attributes else info.rel_attrs[attr][0].type_name
        base, args = parse_type(tname)
        cat = self.reg.category(base) if not args else None
        if args or cat in ("STRUCT", "CLASSIFICATION"):
            raise AtlasError(400, "ATLAS-400-00-027", f"{rec['typeName']}.{attr}: attribute update not supported")
        entity = {"guid": guid, "typeName": rec["typeName"], "attributes": {attr: value}}
        return self.create_or_update([entity], None, user, partial=True)

    # ----- delete --------------------------------------------------------------------------------
    def delete(self, guids: list[str], user: str) -> dict[str, Any]:
        """Soft delete with COMPOSITION cascade; unknown or already-deleted guids are skipped."""
        to_delete: list[str] = []

        def collect(g: str) -> None:
            rec = self.entities.get(g)
            if rec is None or rec["status"] != "ACTIVE" or g in to_delete:
                return
            to_delete.append(g)
            info = self.reg.entity(rec["typeName"])
            for opts in info.rel_attrs.values():
                for opt in opts:
                    if opt.category == "COMPOSITION" and opt.is_container:
                        for r in self.related(g, opt):
                            collect(r["end2"] if opt.end == 1 else r["end1"])

        for g in guids:
            collect(g)
        if not to_delete:
            return {}
        # Atlas records the headers before it deletes (DeleteHandlerV1.deleteEntities): status ACTIVE
        deleted_headers = [self.header(g) for g in to_delete]
        touched: list[str] = []
        for g in to_delete:
            for r in self.rels_of(g):
                r["status"], r["updateTime"] = "DELETED", self._now()
                other = r["end2"] if r["end1"] == g else r["end1"]
                if other not in to_delete and other not in touched:
                    touched.append(other)
            rec = self.entities[g]
            rec["status"], rec["updatedBy"], rec["updateTime"] = "DELETED", user, self._now()
            rec["version"] += 1
        for g in touched:
            self.entities[g]["updateTime"] = self._now()
        mutated: dict[str, Any] = {"DELETE": deleted_headers}
        if touched:
            mutated["UPDATE"] = [self.header(g, with_classifications=False) for g in touched]
        for g in to_delete:
            self._audit(g, "ENTITY_DELETE", "Deleted entity", user)  # EntityAuditListenerV2.onEntitiesDeleted
        self._touch()
        return {"mutatedEntities": mutated}

    # ----- classifications -----------------------------------------------------------------------
    def _norm_classification(self, c: dict[str, Any], guid: str) -> dict[str, Any]:
        name = c.get("typeName")
        if not self.reg.is_classification(name):
            raise classification_not_found(str(name))
        rec = self.entities.get(guid)
        d = self.reg.get(name)
        allowed = (d or {}).get("entityTypes") or []
        if rec and allowed and not any(self.reg.is_a(rec["typeName"], t) for t in allowed):
            raise AtlasError(400, "ATLAS-400-00-055",
                             f"Entity type {rec['typeName']} is not allowed in classification {name}")
        messages: list[str] = []
        attrs = c.get("attributes") or {}
        out_attrs = {}
        for aname, (adef, declaring) in self.reg.info[name].attributes.items():
            v = attrs.get(aname)
            if v is None:
                if not adef.get("isOptional"):
                    messages.append(f"{name}.{aname}: mandatory attribute value missing in type {declaring}")
                out_attrs[aname] = None
                continue
            out_attrs[aname] = self.reg.check_value(adef["typeName"], v, f"{name}.{aname}", messages)
        if messages:
            raise invalid_params(messages)
        propagate = c.get("propagate")
        return {"typeName": name, "attributes": out_attrs, "entityGuid": guid, "entityStatus": "ACTIVE",
                "propagate": True if propagate is None else bool(propagate),
                "removePropagationsOnEntityDelete": bool(c.get("removePropagationsOnEntityDelete", False)),
                "validityPeriods": c.get("validityPeriods") or []}

    def add_classifications(self, guid: str, classes: list[dict[str, Any]], user: str) -> None:
        rec = self.get_record(guid)
        if not isinstance(classes, list) or not classes:
            raise invalid_parameters("no classifications to add")
        new = []
        for c in classes:
            name = c.get("typeName") if isinstance(c, dict) else None
            if not self.reg.is_classification(name):
                raise classification_not_found(str(name))
            if any(x["typeName"] == name for x in rec["classifications"]) or any(x["typeName"] == name for x in new):
                raise invalid_parameters(f"entity {guid} is already associated with classification {name}")
            new.append(self._norm_classification(c, guid))
        rec["classifications"].extend(new)
        for c in new:
            self._audit(guid, "CLASSIFICATION_ADD", "Added classification: " + json.dumps(c), user)
        self._touch()

    def update_classifications(self, guid: str, classes: list[dict[str, Any]], user: str) -> None:
        rec = self.get_record(guid)
        for c in classes:
            name = c.get("typeName")
            idx = next((i for i, x in enumerate(rec["classifications"]) if x["typeName"] == name), None)
            if idx is None:
                raise AtlasError(400, "ATLAS-400-00-035", f"classification {name} not associated with entity {guid}")
            merged = {**rec["classifications"][idx], **c}
            merged["attributes"] = {**rec["classifications"][idx]["attributes"], **(c.get("attributes") or {})}
            rec["classifications"][idx] = self._norm_classification(merged, guid)
            self._audit(guid, "CLASSIFICATION_UPDATE", "Updated classification: " + json.dumps(merged), user)
        self._touch()

    def delete_classification(self, guid: str, name: str, user: str) -> None:
        rec = self.get_record(guid)
        if not self.reg.is_classification(name):
            raise classification_not_found(name)
        before = len(rec["classifications"])
        rec["classifications"] = [c for c in rec["classifications"] if c["typeName"] != name]
        if len(rec["classifications"]) == before:
            raise AtlasError(400, "ATLAS-400-00-035", f"classification {name} not associated with entity {guid}")
        self._audit(guid, "CLASSIFICATION_DELETE", "Deleted classification: " + name, user)
        self._touch()

    def get_classification(self, guid: str, name: str) -> dict[str, Any]:
        self.get_record(guid)
        for c in self.classifications_of(guid):
            if c["typeName"] == name:
                return c
        raise classification_not_found(name)

    def propagated(self, guid: str) -> list[dict[str, Any]]:
        """Classifications reaching guid along relationships according to each relationship's propagateTags."""
        if self._prop_cache is None or self._prop_cache[0] != self.mutations:
            self._prop_cache = (self.mutations, self._compute_propagation())
        return copy.deepcopy(self._prop_cache[1].get(guid, []))

    def _compute_propagation(self) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = {}
        for src, rec in self.entities.items():
            if rec["status"] != "ACTIVE":
                continue
            for c in rec.get("classifications", []):
                if not c.get("propagate"):
                    continue
                seen = {src}
                queue = [src]
                while queue:
                    node = queue.pop(0)
                    for r in self.rels_of(node):
                        tags = r.get("propagateTags", "NONE")
                        nxt = None
                        if r["end1"] == node and tags in ("ONE_TO_TWO", "BOTH"):
                            nxt = r["end2"]
                        elif r["end2"] == node and tags in ("TWO_TO_ONE", "BOTH"):
                            nxt = r["end1"]
                        if nxt and nxt not in seen and self.entities[nxt]["status"] == "ACTIVE":
                            seen.add(nxt)
                            queue.append(nxt)
                            result.setdefault(nxt, []).append({**copy.deepcopy(c), "entityGuid": src})
        return result

    # ----- labels --------------------------------------------------------------------------------
    @staticmethod
    def _check_label(label: Any) -> None:
        if not isinstance(label, str) or len(label) > 50:
            raise AtlasError(400, "ATLAS-400-00-08F", f"label {label} exceeds max length 50")
        if not LABEL_RE.match(label):
            raise AtlasError(400, "ATLAS-400-00-090", f"label {label} has invalid characters")

    def labels(self, guid: str, labels: list[str], mode: str, user: str) -> None:
        """mode: set (POST), add (PUT), remove (DELETE)."""
        rec = self.get_record(guid)
        labels = labels or []
        for lab in labels:
            self._check_label(lab)
        current = list(rec.get("labels", []))
        if mode == "set":
            new = list(dict.fromkeys(labels))
        elif mode == "add":
            new = list(dict.fromkeys(current + labels))
        else:
            new = [x for x in current if x not in labels]
        added, removed = [x for x in new if x not in current], [x for x in current if x not in new]
        rec["labels"] = new
        if added:
            self._audit(guid, "LABEL_ADD", "Added labels: " + " ".join(added), user)
        if removed:
            self._audit(guid, "LABEL_DELETE", "Deleted labels: " + " ".join(removed), user)
        self._touch()

    # ----- relationships API ---------------------------------------------------------------------
    def create_relationship(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        rel_type = body.get("typeName")
        d = self.reg.get(rel_type or "")
        if d is None or d["category"] != "RELATIONSHIP":
            raise AtlasError(400, "ATLAS-400-00-028", f"Type RELATIONSHIP with name {rel_type} does not exist")
        ends = []
        for key in ("end1", "end2"):
            ref = body.get(key) or {}
            if ref.get("guid"):
                g = ref["guid"]
                if g not in self.entities:
                    raise guid_not_found(g)
            else:
                g = self.find_exact(ref.get("typeName", ""), ref.get("uniqueAttributes") or {}) if \
                    self.reg.is_entity(ref.get("typeName")) else None
                if g is None:
                    raise unique_not_found(str(ref.get("typeName")), ref.get("uniqueAttributes") or {})
            ends.append(g)
        # AtlasRelationshipStoreV2.validateRelationship: the ends may be given either way round (and are
        # stored as given); 036 only when neither orientation fits the relationshipDef
        t1, t2 = (self.entities[g]["typeName"] for g in ends)
        def1, def2 = d["endDef1"]["type"], d["endDef2"]["type"]
        if not ((self.reg.is_a(t1, def1) and self.reg.is_a(t2, def2))
                or (self.reg.is_a(t1, def2) and self.reg.is_a(t2, def1))):
            raise AtlasError(400, "ATLAS-400-00-036",
                             f"invalid relationshipDef: {rel_type}: end type 1: {def2}, end type 2: {t1}")
        for r in self.rels_of(ends[0]):
            if r["typeName"] == rel_type and r["end1"] == ends[0] and r["end2"] == ends[1]:
                raise AtlasError(409, "ATLAS-409-00-004",
                                 f"relationship {rel_type} already exists between entities {ends[0]} and {ends[1]}")
        r = self._new_relationship(rel_type, ends[0], ends[1], body.get("attributes") or {}, user)
        if body.get("propagateTags"):
            r["propagateTags"] = body["propagateTags"]
        self._touch()
        return self.relationship_json(r["guid"])

    def relationship_json(self, guid: str) -> dict[str, Any]:
        r = self.relationships.get(guid)
        if r is None:
            raise AtlasError(404, "ATLAS-404-00-00B", f"Given relationship guid {guid} is invalid/not found")
        return {"typeName": r["typeName"], "attributes": r.get("attributes", {}), "guid": guid,
                "homeId": None, "provenanceType": 0, "end1": self.object_id(r["end1"]),
                "end2": self.object_id(r["end2"]), "label": r["label"], "propagateTags": r["propagateTags"],
                "status": r["status"], "createdBy": r["createdBy"], "updatedBy": r["updatedBy"],
                "createTime": r["createTime"], "updateTime": r["updateTime"], "version": r["version"]}

    def delete_relationship(self, guid: str) -> None:
        r = self.relationships.get(guid)
        if r is None:
            raise AtlasError(404, "ATLAS-404-00-00B", f"Given relationship guid {guid} is invalid/not found")
        if r["status"] == "DELETED":
            raise AtlasError(404, "ATLAS-404-00-00B", f"Given relationship guid {guid} is already deleted")
        r["status"], r["updateTime"] = "DELETED", self._now()
        self._touch()

    # ----- audit ---------------------------------------------------------------------------------
    def audit_events(self, guid: str, count: int, newest_first: bool, action: str | None) -> list[dict[str, Any]]:
        if guid not in self.audit and guid not in self.entities:
            raise guid_not_found(guid)
        events = [e for e in self.audit.get(guid, []) if not action or e["action"] == action]
        events = sorted(events, key=lambda e: e["timestamp"], reverse=newest_first)
        return events[: max(count, 0)] if count > 0 else events

    def types_in_use(self) -> set[str]:
        used = {r["typeName"] for r in self.entities.values()}
        used |= {r["typeName"] for r in self.relationships.values()}
        for rec in self.entities.values():
            used |= {c["typeName"] for c in rec.get("classifications", [])}
        return used
