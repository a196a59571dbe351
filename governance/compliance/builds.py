"""The model builds behind a list of deployments, and their training data, read a page at a time.

A compliance answer over N deployments needs each one's build (line of business, checksum, registry copy)
and, for the report, each build's training datasets. Read one by one that is a few Atlas calls per row
(issue 23); here every level is one ``GET /v2/entity/bulk`` per page of guids, each entity read once per
command run however many deployments share it:

* builds: the deployment's ``build`` relationship, asked for in the basic search (``attributes``), gives its
  guid. A deployment whose header lacks it (a server that leaves relationship attributes out of search
  headers) or whose build is not the one its name names is looked up by qualifiedName in OR-filtered basic
  searches, so the answer stays the one a lookup by unique attribute gives: the ACTIVE build of that name.
* training data: the build's ``outputFromProcesses`` of the train-process type, then each train process's
  ``inputs``: the same edges the lineage API walks (Process inputs/outputs), one level per bulk read, for
  all builds at once instead of one lineage call and one entity read per dataset per build.
"""

from __future__ import annotations

from collections.abc import Iterable

from governance.atlas.client import AtlasClient, related_guids
from governance.atlas.constants import BUILD_TYPE, TRAIN_PROCESS_TYPE

OR_CHUNK = 50  # qualifiedName criteria per OR-filtered basic search


def _active(entity: dict) -> bool:
    return entity.get("status", "ACTIVE") == "ACTIVE"


class Builds:
    """Build entities by qualifiedName, read in bulk and kept for the command run."""

    def __init__(self, client: AtlasClient):
        self.client = client
        self._by_name: dict[str, dict | None] = {}

    def load(self, wanted: Iterable[tuple[str, str | None]]) -> None:
        """Read the builds named in ``wanted`` (qualifiedName, guid from the deployment's relationship or
        None) that are not read yet."""
        pending = {name: guid for name, guid in wanted if name not in self._by_name}
        if not pending:
            return
        found = self._read({g for g in pending.values() if g})
        missing = [name for name in pending if name not in found]
        if missing:
            found.update(self._read(self._guids_by_name(missing)))
        for name in pending:
            self._by_name[name] = found.get(name)

    def get(self, qualified_name: str) -> dict | None:
        """The ACTIVE build of that qualifiedName (``load`` it first), or None when Atlas has none."""
        return self._by_name.get(qualified_name)

    def _read(self, guids: set[str]) -> dict[str, dict]:
        entities = self.client.get_entities_paged(sorted(guids), min_ext_info=True)
        return {(e.get("attributes") or {}).get("qualifiedName"): e for e in entities
                if _active(e) and e.get("typeName") == BUILD_TYPE}

    def _guids_by_name(self, names: list[str]) -> set[str]:
        guids: set[str] = set()
        for start in range(0, len(names), OR_CHUNK):
            criteria = [{"attributeName": "qualifiedName", "operator": "=", "attributeValue": n}
                        for n in names[start:start + OR_CHUNK]]
            params = {"typeName": BUILD_TYPE, "excludeDeletedEntities": True,
                      "entityFilters": criteria[0] if len(criteria) == 1 else {"condition": "OR",
                                                                               "criterion": criteria}}
            guids.update(h["guid"] for h in self.client.search_basic(params) if h.get("guid"))
        return guids


def training_data(client: AtlasClient, builds: Iterable[dict]) -> dict[str, list[dict]]:
    """Each build's training datasets (full entities, with classifications), by build guid: the inputs of
    the train processes that output the build, one dataset per input edge as the lineage API lists them."""
    builds = list(builds)
    trains_of = {b["guid"]: [r["guid"] for r in _related(b, "outputFromProcesses")
                             if r.get("typeName") == TRAIN_PROCESS_TYPE] for b in builds}
    trains = {e["guid"]: e for e in client.get_entities_paged(
        (g for guids in trains_of.values() for g in guids), min_ext_info=True)}
    inputs_of = {g: related_guids(e, "inputs") for g, e in trains.items()}
    datasets = {e["guid"]: e for e in client.get_entities_paged(
        (g for guids in inputs_of.values() for g in guids), min_ext_info=True)}
    return {build: [datasets[d] for t in trains_of[build] for d in inputs_of.get(t, []) if d in datasets]
            for build in trains_of}


def _related(entity: dict, relationship: str) -> list[dict]:
    """The ACTIVE related objects (guid and typeName) of one relationship attribute."""
    guids = set(related_guids(entity, relationship))
    related = (entity.get("relationshipAttributes") or {}).get(relationship) or []
    related = [related] if isinstance(related, dict) else related
    return [r for r in related if isinstance(r, dict) and r.get("guid") in guids]
