"""Lineage (EntityLineageService v2): walks only Process inputs/outputs edges, in data-flow order."""

from __future__ import annotations

from typing import Any

from .errors import AtlasError, guid_not_found
from .store import EntityStore

INPUTS, OUTPUTS = "dataset_process_inputs", "process_dataset_outputs"


def lineage(store: EntityStore, guid: str, direction: str = "BOTH", depth: int = 3) -> dict[str, Any]:
    """AtlasLineageInfo for guid; depth counts dataset->process->dataset hops, 0 means unlimited."""
    rec = store.entities.get(guid)
    if rec is None:
        raise guid_not_found(guid)
    reg = store.reg
    is_process = reg.is_a(rec["typeName"], "Process")
    if not is_process and not reg.is_a(rec["typeName"], "DataSet"):
        raise AtlasError(404, "ATLAS-404-00-011",
                         f"Given instance guid {guid} with type {rec['typeName']} is not a valid lineage entity type.")
    direction = direction.upper()
    if direction not in ("INPUT", "OUTPUT", "BOTH"):
        raise AtlasError(400, "ATLAS-400-00-01A", f"invalid parameters: direction {direction}")
    entity_map: dict[str, Any] = {}
    relations: dict[str, dict[str, str]] = {}
    unlimited = depth <= 0

    def edges(node: str, rel_type: str, node_end: str) -> list[dict[str, Any]]:
        return [r for r in store.rels_of(node) if r["typeName"] == rel_type and r[node_end] == node]

    def add(r: dict[str, Any], frm: str, to: str) -> None:
        relations.setdefault(r["guid"], {"fromEntityId": frm, "toEntityId": to, "relationshipId": r["guid"]})
        for g in (frm, to):
            if g not in entity_map:
                entity_map[g] = store.header(g)

    def walk_dataset(ds: str, remaining: int, upstream: bool, seen: set[str]) -> None:
        if ds in seen or (not unlimited and remaining <= 0):
            return
        seen.add(ds)
        # upstream: processes that output ds; downstream: processes that take ds as input
        rel_type = OUTPUTS if upstream else INPUTS
        for r in edges(ds, rel_type, "end2"):
            proc = r["end1"]
            if upstream:
                add(r, proc, ds)
            else:
                add(r, ds, proc)
            walk_process(proc, remaining, upstream, seen)

    def walk_process(proc: str, remaining: int, upstream: bool, seen: set[str]) -> None:
        key = ("p", proc, upstream)
        if str(key) in seen:
            return
        seen.add(str(key))
        rel_type = INPUTS if upstream else OUTPUTS
        for r in edges(proc, rel_type, "end1"):
            ds = r["end2"]
            if upstream:
                add(r, ds, proc)
            else:
                add(r, proc, ds)
            walk_dataset(ds, remaining - 1, upstream, seen)

    for upstream, wanted in ((True, ("INPUT", "BOTH")), (False, ("OUTPUT", "BOTH"))):
        if direction not in wanted:
            continue
        if is_process:
            walk_process(guid, depth, upstream, set())
        else:
            walk_dataset(guid, depth, upstream, set())
    return {"baseEntityGuid": guid, "lineageDirection": direction, "lineageDepth": depth,
            "guidEntityMap": entity_map, "relations": list(relations.values()), "relationsOnDemand": {}}
