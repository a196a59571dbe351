"""The ledger: the one writer of deployment records (Atlas behind it, the durable outbox beside it).

Deploys, reconcile, rollback and undeploy call the ledger, never the Atlas client, so that what is recorded,
when, and how an outage is absorbed (the write waits in the outbox) is decided in one place. Retries live in
the Atlas client alone (one layer, under one deadline); the ledger writes each record once.

Reads that decide what to write (which deployments are ``deployed`` or ``deploying`` on a target) go
through unique-attribute lookups and relationships when the model is known (project -> builds ->
deployments), because Atlas indexes basic search asynchronously: a search right after a write need not see
it. Without a model name the ledger falls back to a basic search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import (
    DEFAULT_NAMESPACE,
    DEPLOYMENT_TYPE,
    iso_from_millis,
    millis,
)
from governance.atlas.typedefs import ensure_types
from governance.deploy.outbox import Outbox, OutboxEntry
from governance.deploy.payload import AtlasRecord, apply_deployment, deployment_payload, pending_record
from governance.deploy.record import DeploymentRecord
from governance.deploy.reference import (
    ModelEntities,
    RecordedBuild,
    check_against_record,
    read_model,
    read_models,
    recorded_build,
)
from governance.errors import AtlasError, AtlasNotFound, AtlasRecordPending, AtlasUnavailable, RecordMismatch
from governance.registries.base import Manifest

ROW_COLUMNS = ("qualifiedName", "modelName", "modelVersion", "status", "outcome", "failureReason", "targetKind",
               "targetDetail", "modelEndpointURL", "serializedObjectUri", "deployedBy", "orchestratorRunId",
               "owner")
log = logging.getLogger(__name__)


def _unavailable(exc: AtlasError) -> bool:
    """Atlas down, refusing connections, past its deadline or failing on its side (5xx): worth keeping."""
    return isinstance(exc, AtlasUnavailable) or exc.status is None or exc.status >= 500


@dataclass(frozen=True)
class Settlement:
    """A change the ledger made to an existing deployment record, for reports and logs."""

    qualified_name: str
    status: str
    outcome: str | None = None
    reason: str | None = None


def deployment_row(entity: dict) -> dict:
    """A deployment entity (or search header) as a flat dict: the columns above, ``guid``, and the dates as
    ISO-8601 UTC plus ``createTimeMs``/``deployedTimeMs`` for ordering."""
    attrs = entity.get("attributes") or {}
    row = {"guid": entity.get("guid"), **{c: attrs.get(c) for c in ROW_COLUMNS}}
    for column in ("createTime", "deployedTime", "stoppedTime"):
        row[column] = iso_from_millis(attrs.get(column))
        row[f"{column}Ms"] = attrs.get(column)
    return row


class Ledger:
    """Intent, outcome, retirement and history of deployments, recorded in Apache Atlas."""

    def __init__(self, atlas: AtlasClient, namespace: str = DEFAULT_NAMESPACE, outbox: Outbox | None = None):
        self.atlas = atlas
        self.namespace = namespace
        self.outbox = outbox  # where writes go while Atlas is unreachable (None: they raise)

    @classmethod
    def open(cls, atlas_url: str | None = None, namespace: str = DEFAULT_NAMESPACE) -> Ledger:
        """The ledger every writer uses: Atlas from the environment and ``atlas_url``, the local outbox behind
        it; checked (Atlas answers, has our types, the outbox is replayed into it) before anything changes, an
        AtlasError otherwise."""
        ledger = cls(AtlasClient(AtlasSettings.from_env(atlas_url)), namespace, outbox=Outbox())
        try:
            ledger.check()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def unchecked(cls, atlas_url: str | None = None, namespace: str = DEFAULT_NAMESPACE) -> Ledger:
        """The writer's ledger for a run that already made ``open``'s check (a batch checks once for all its
        models, ``governance.deploy.run``): no status or type calls; the outbox is still replayed first when
        it holds records for this Atlas (a local listing, no Atlas call when it is empty)."""
        ledger = cls(AtlasClient(AtlasSettings.from_env(atlas_url)), namespace, outbox=Outbox())
        try:
            if ledger.outbox is not None and any(e.atlas_url.rstrip("/") == ledger.url.rstrip("/")
                                                 for e in ledger.outbox.pending()):
                ledger.sync_outbox()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @classmethod
    def reader(cls, atlas: AtlasClient, namespace: str = DEFAULT_NAMESPACE) -> Ledger:
        """A read-only view over an existing client (``verify``): no outbox, so it can never write."""
        return cls(atlas, namespace, outbox=None)

    # -- the outbox ------------------------------------------------------------------------------------------
    def sync_outbox(self) -> tuple[list[OutboxEntry], list[OutboxEntry]]:
        """Replay records an earlier outage left for this Atlas, oldest first (every deploy does it first)."""
        if self.outbox is None:
            return [], []
        result = self.outbox.sync(self.atlas, only_url=self.url)
        for entry in result.replayed:
            log.warning("replayed to Atlas from the outbox: %s", entry.description)
        for entry in result.dead:
            log.warning("moved to the outbox's dead letters: %s (%s)", entry.description, entry.reason)
        return result.replayed, result.remaining

    def _outboxed(self, exc: AtlasError, kind: str, payload: dict, description: str) -> OutboxEntry:
        """Keep a write Atlas could not take; re-raise when there is no outbox or Atlas refused it (4xx)."""
        if self.outbox is None or not _unavailable(exc):
            raise exc
        entry = self.outbox.append(kind, payload, atlas_url=self.url, description=description)
        log.warning("Atlas unavailable (%s): %s kept in the outbox %s", exc, description, entry.path)
        return entry

    @property
    def url(self) -> str:
        return self.atlas.settings.url

    def check(self) -> None:
        """Atlas answers and has our types (installing what is missing), and the outbox is replayed into it;
        raises AtlasError otherwise."""
        self.atlas.status()
        ensure_types(self.atlas)  # once per process; survives a concurrent first run creating them (HTTP 409)
        self.sync_outbox()

    # -- the reference -------------------------------------------------------------------------------------
    def read_model(self, model_name: str) -> ModelEntities:
        """The model's project and builds in one consistent read: pass it to ``check_version`` and
        ``records_on`` to answer both from it (``governance.deploy.reference.read_model``)."""
        return read_model(self.atlas, self.namespace, model_name)

    def read_models(self, model_names: list[str]) -> dict[str, ModelEntities]:
        """``read_model`` for many models in bulk (a batch reads its models ahead)."""
        return read_models(self.atlas, self.namespace, model_names)

    def check_version(self, manifest: Manifest, location: str, model: ModelEntities | None = None
                      ) -> RecordedBuild | None:
        """Refuse a version that is not the one Atlas recorded for its name and version (RecordMismatch), or
        whose identifier or version number another spelling holds (ModelIdentityTaken); the recorded build,
        or None for a version never recorded (``governance.deploy.reference``). ``model``: already read."""
        return check_against_record(self.atlas, self.namespace, manifest, location, model)

    def confirm_written(self, manifest: Manifest, location: str, written: AtlasRecord) -> RecordedBuild:
        """After the first write of a build: read it back and refuse when it is not ours, because another run
        wrote the same name and version with other content at the same moment (the later write wins in Atlas;
        this run then stops before touching its target)."""
        found = recorded_build(self.atlas, self.namespace, manifest.model_name, manifest.model_version)
        if found is not None and found.content_digest and found.content_digest != manifest.content_digest:
            raise RecordMismatch(
                f"{location}: another run recorded {manifest.model_name} {manifest.model_version} with other content "
                f"(content digest {found.content_digest}, from {found.registry_uri}) while this one recorded "
                f"{manifest.content_digest}; stopped before deploying", recorded=found)
        return found or RecordedBuild.written(manifest, location, written.build.qualified_name, written.build.guid,
                                              written.project.guid)

    # -- writes ----------------------------------------------------------------------------------------------
    def record_intent(self, record: DeploymentRecord) -> AtlasRecord:
        """Record the attempt as ``deploying`` before the target is touched (upsert).

        Atlas unreachable: the build's record (the registry version exists) goes to the outbox and
        AtlasRecordPending stops the run before the target is touched."""
        payload = deployment_payload(record, self.namespace)
        try:
            return apply_deployment(self.atlas, payload)
        except AtlasError as exc:
            meta = record.staged.metadata
            entry = self._outboxed(exc, "deployment", deployment_payload(record, self.namespace, build_only=True),
                                   f"build {meta.name} {meta.version} ({record.registered.location})")
            raise AtlasRecordPending(
                f"Atlas is unreachable ({exc}); nothing was deployed. The registry version "
                f"{record.registered.location} stays and its build record is pending in the outbox "
                f"({entry.path.name}): `modelgov outbox sync` (every deploy also does it first)") from exc

    def record_outcome(self, record: DeploymentRecord) -> AtlasRecord:
        """Record the attempt's final state, ``deployed`` or failed (upsert of the same entities).

        Atlas unreachable: the record goes to the outbox and comes back ``pending`` (the deployment stands)."""
        payload = deployment_payload(record, self.namespace)  # built once: written now, or kept in the outbox
        try:
            return apply_deployment(self.atlas, payload)
        except AtlasError as exc:
            meta = record.staged.metadata
            self._outboxed(exc, "deployment", payload, f"deployment {meta.name} {meta.version} on "
                                                       f"{record.target.host_detail}: {record.status}")
            return pending_record(payload)

    def _update(self, qualified_name: str, attrs: dict, description: str) -> None:
        try:
            self.atlas.partial_update_by_unique(DEPLOYMENT_TYPE, qualified_name, attrs)
        except AtlasError as exc:
            self._outboxed(exc, "update", {"type_name": DEPLOYMENT_TYPE, "qualified_name": qualified_name,
                                           "attributes": attrs}, description)

    def stop(self, qualified_name: str, stopped_at: datetime, reason: str) -> str:
        """Mark one deployment ``stopped`` with ``stoppedTime`` and why (``undeploy``); kept in the outbox while
        Atlas is unreachable, like every other write."""
        self._update(qualified_name, {"status": "stopped", "stoppedTime": millis(stopped_at), "stopReason": reason},
                     f"stop {qualified_name}: {reason}")
        return qualified_name

    def record_entity(self, type_name: str, attributes: dict, *, only_if_absent: bool = True) -> bool:
        """Create one entity of ours (an ungoverned-model finding) unless it exists; True when it was written
        (or is waiting in the outbox because Atlas is unreachable)."""
        qualified_name = attributes["qualifiedName"]
        entity = {"typeName": type_name, "guid": "-1",
                  "attributes": {k: v for k, v in attributes.items() if v is not None}}
        try:
            if only_if_absent and self.atlas.get_entity_by_unique(type_name, qualified_name):
                return False
            self.atlas.upsert_entities([entity])
        except AtlasError as exc:
            self._outboxed(exc, "entities", {"entities": [entity]}, f"{type_name} {qualified_name}")
        return True

    def retire(self, qualified_names: Iterable[str], stopped_at: datetime) -> list[str]:
        """Mark deployments ``stopped`` with ``stoppedTime``: their version left service."""
        done = []
        for name in qualified_names:
            self._update(name, {"status": "stopped", "stoppedTime": millis(stopped_at)}, f"retire {name}")
            done.append(name)
        return done

    def settle(self, qualified_name: str, *, serving: bool, reason: str | None = None,
               when: datetime | None = None) -> Settlement:
        """Close a record left ``deploying`` by a run that died: ``deployed`` when the target serves its
        version, else stopped with ``outcome=failed`` and ``reason`` (default "abandoned")."""
        moment = millis(when or datetime.now(UTC))
        if serving:
            attrs = {"status": "deployed", "outcome": "succeeded", "deployedTime": moment}
            settled = Settlement(qualified_name, "deployed", "succeeded")
        else:
            reason = reason or "abandoned"
            attrs = {"status": "stopped", "outcome": "failed", "failureReason": reason, "stoppedTime": moment}
            settled = Settlement(qualified_name, "stopped", "failed", reason)
        self._update(qualified_name, attrs, f"settle {qualified_name}: {settled.status}")
        return settled

    # -- reads -----------------------------------------------------------------------------------------------
    def deployed_on(self, target_detail: str, model_name: str | None = None) -> list[dict]:
        """Deployments recorded ``deployed`` on the target (of one model when given), newest first."""
        return self.records_on(target_detail, model_name, statuses=("deployed",))

    def deploying_on(self, target_detail: str, model_name: str | None = None) -> list[dict]:
        """Deployments still recorded ``deploying`` on the target: in progress, or left by a run that died."""
        return self.records_on(target_detail, model_name, statuses=("deploying",))

    def records_on(self, target_detail: str, model_name: str | None = None,
                   statuses: tuple[str, ...] = ("deployed", "deploying"), model: ModelEntities | None = None
                   ) -> list[dict]:
        """Deployment records on one target with one of ``statuses``, newest first. ``model``: the model's
        entities as just read (``read_model``), so that only its deployments are read."""
        if model_name:
            rows = [deployment_row(e) for e in self._deployments_of(model_name, model)]
        else:
            rows = self._search_on(target_detail, statuses)
        rows = [r for r in rows if r["targetDetail"] == target_detail and r["status"] in statuses]
        return sorted(rows, key=lambda r: (r["createTimeMs"] or 0, r["qualifiedName"] or ""), reverse=True)

    def get(self, qualified_name: str) -> dict | None:
        """One deployment record by qualifiedName (a consistent read), or None."""
        found = self.atlas.get_entity_by_unique(DEPLOYMENT_TYPE, qualified_name)
        return deployment_row(found["entity"]) if found else None

    def close(self) -> None:
        self.atlas.close()

    # -- helpers ---------------------------------------------------------------------------------------------
    def _deployments_of(self, model_name: str, model: ModelEntities | None = None) -> list[dict]:
        """Every deployment entity of a model, through project -> builds -> deployments relationships: the
        project with its builds in one read, their deployments in bulk (none for a model never deployed)."""
        if model is None:
            try:
                model = self.read_model(model_name)
            except AtlasNotFound:
                return []
        return [e for e in model.deployments(self.atlas) if e.get("typeName") == DEPLOYMENT_TYPE]

    def _search_on(self, target_detail: str, statuses: tuple[str, ...]) -> list[dict]:
        criteria = [{"attributeName": "targetDetail", "operator": "=", "attributeValue": target_detail}]
        if len(statuses) == 1:
            criteria.append({"attributeName": "status", "operator": "=", "attributeValue": statuses[0]})
        params = {"typeName": DEPLOYMENT_TYPE, "excludeDeletedEntities": True,
                  "attributes": [*ROW_COLUMNS, "createTime", "deployedTime", "stoppedTime"],
                  "entityFilters": {"condition": "AND", "criterion": criteria}}
        return [deployment_row(h) for h in self.atlas.search_basic(params)]

