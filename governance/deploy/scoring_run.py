"""One scoring run of a Spark deployment: read the input, apply the bound model, commit the output, record it.

The run is recorded in Atlas before it reads anything (``outcome=pending``, the input's exact version), and again
when it ends (``succeeded`` with row counts and the output's version, or ``failed`` with the reason), as a
``modelgov_scoring_run`` process: input dataset version -> run -> output dataset, linked to the deployment whose
binding it used. It scores only with a binding Atlas records as deployed on that target (the record is the
reference), writes under a temporary sibling of the output and renames it into place once complete, and refuses
an output that exists (a run never overwrites another run's result). A run killed outright stays ``pending``
until the next run of that model on that target finds its lock free: it is then recorded ``failed`` and its
temporary output removed.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from governance.atlas.client import AtlasClient
from governance.atlas.constants import (
    DATASET_TYPE,
    DEFAULT_NAMESPACE,
    DEPLOYMENT_TYPE,
    SCORING_RUN_TYPE,
    millis,
)
from governance.deploy.datasets import versioned_dataset_attributes
from governance.deploy.entities import EntityBatch, ref, ref_by_name
from governance.deploy.ledger import Ledger
from governance.errors import ConfigError, TargetError
from governance.spark.binding import Binding
from governance.spark.errors import error_reason
from governance.spark.pipelines import scored
from governance.spark.scoring import checked_bytes
from governance.spark.session import hadoop_uri, session
from governance.spark.storage import SparkStorage
from governance.staging.data_versions import DataVersion
from governance.targets.spark import SparkTarget

TMP_MARK = "._modelgov-tmp-"


@dataclass
class ScoringRun:
    """What one run did, as recorded."""

    run_id: str
    model: str
    version: str
    deployment: str           # qualifiedName of the deployment whose binding was used
    input: str
    output: str
    started: datetime
    ended: datetime | None = None
    outcome: str = "pending"
    failure: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    input_version: DataVersion | None = None
    output_version: DataVersion | None = None
    atlas_guid: str | None = None
    sha256: str | None = None  # the bound executable's
    settled: list[str] = field(default_factory=list)  # runs found killed and recorded failed

    @property
    def qualified_name(self) -> str:
        return f"{self.model}.{self.version}.score.{self.run_id}@{DEFAULT_NAMESPACE}"

    def to_dict(self) -> dict:
        return {"runId": self.run_id, "model": self.model, "version": self.version, "deployment": self.deployment,
                "input": self.input, "output": self.output, "started": self.started.isoformat(),
                "ended": self.ended.isoformat() if self.ended else None, "outcome": self.outcome,
                "failure": self.failure, "rowsIn": self.rows_in, "rowsOut": self.rows_out,
                "inputVersion": self.input_version.version if self.input_version else None,
                "outputVersion": self.output_version.version if self.output_version else None,
                "atlasGuid": self.atlas_guid, "settled": self.settled}


def output_for(template: str, run_id: str, started: datetime) -> str:
    """The output URI with ``{run_id}`` and ``{date}`` (YYYY-MM-DD, UTC) filled in: scheduled runs name each output."""
    try:
        return template.format(run_id=run_id, date=f"{started:%Y-%m-%d}")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"output {template!r}: only {{run_id}} and {{date}} may be filled in") from exc


def score(target: SparkTarget, model: str, atlas: AtlasClient, *, input_uri: str | None = None,
          output_uri: str | None = None, run_id: str | None = None, namespace: str = DEFAULT_NAMESPACE) -> ScoringRun:
    """Score ``input_uri`` (the target's ``input=`` by default) with the version bound to ``model`` on ``target``."""
    binding = target.binding(model)
    if binding is None:
        raise TargetError(f"{target.where}: no version of {model} is bound; deploy one first")
    source = input_uri or target.input
    sink = output_uri or target.output
    if not source or not sink:
        raise ConfigError(f"{target.uri}: give the input and output (input=/output= on the target URI, or "
                          "--input/--output)")
    ledger = Ledger.reader(atlas, namespace)
    deployment = _recorded_deployment(ledger, target, binding)
    started = datetime.now(UTC)
    run_id = run_id or f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    run = ScoringRun(run_id, model, binding.version, deployment, source, output_for(sink, run_id, started), started,
                     sha256=binding.sha256)
    runs_dir = target.bindings / model / ".runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    lock = os.open(runs_dir / f"{run_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        spark = session(target.master)
        storage = SparkStorage(spark)
        run.settled = _settle_killed(atlas, storage, target, model, runs_dir, run_id)
        if storage.exists(run.output):
            raise TargetError(f"{run.output} exists: a scoring run never overwrites an output; choose another "
                              "(use {run_id} or {date} in it)")
        run.input_version = storage.version(source)
        run.atlas_guid = _record(atlas, run, target, namespace)
        _execute(spark, storage, target, binding, run, lambda: _record(atlas, run, target, namespace))
    except BlockingIOError as exc:
        raise TargetError(f"scoring run {run_id} of {model} is already running") from exc
    finally:
        os.close(lock)
    return run


def _recorded_deployment(ledger: Ledger, target: SparkTarget, binding: Binding) -> str:
    """The deployment Atlas records as deployed for this binding; a binding Atlas does not record is drift."""
    rows = [r for r in ledger.deployed_on(target.host_detail, binding.model) if r["modelVersion"] == binding.version]
    if not rows:
        raise TargetError(f"{target.where}: {binding.model} {binding.version} is bound, but Atlas records no "
                          "deployment of it there: the binding changed outside modelgov (run modelgov reconcile); "
                          "not scoring")
    return str(rows[0]["qualifiedName"])


def _execute(spark, storage: SparkStorage, target: SparkTarget, binding: Binding, run: ScoringRun,
             record_end: Callable[[], object]) -> None:
    tmp = _tmp_output(run.output, run.run_id)
    try:
        data = (target.bindings / binding.executable).read_bytes()
        model_bytes = checked_bytes(data, binding.sha256, str(target.bindings / binding.executable))
        frame = _read(spark, run.input, target.format)
        with scored(spark, frame, model_bytes, binding.framework, target.store.workdir(binding.model)) as result:
            writer = result.write.mode("errorifexists").format(target.format)
            (writer.option("header", "true") if target.format == "csv" else writer).save(hadoop_uri(tmp))
        if not storage.rename(tmp, run.output):
            raise TargetError(f"committing {tmp} to {run.output} failed (rename refused: did it appear meanwhile?)")
        # what was committed, counted from the output itself; the scoring map writes one row per input row,
        # so that is also the number of rows read (one pass over the output instead of a second over the input)
        run.rows_out = _read(spark, run.output, target.format, infer=False).count()
        run.rows_in = run.rows_out
        run.output_version = storage.version(run.output)
        run.outcome = "succeeded"
    except BaseException as exc:
        storage.delete(tmp)
        run.outcome, run.failure = "failed", error_reason(exc)
        run.ended = datetime.now(UTC)
        record_end()
        raise
    run.ended = datetime.now(UTC)
    record_end()


def _record(atlas: AtlasClient, run: ScoringRun, target: SparkTarget, namespace: str) -> str | None:
    """Write the run (and its datasets) in one bulk request; the run's guid."""
    entities = _entities(run, target, namespace)
    result = atlas.upsert_entities(entities)
    return result.guid_assignments.get(entities[-1]["guid"]) or run.atlas_guid


def _entities(run: ScoringRun, target: SparkTarget, namespace: str) -> list[dict]:
    batch = EntityBatch()
    inputs = [ref(batch.add(DATASET_TYPE, versioned_dataset_attributes(run.input_version, namespace)),
                  "dataset_process_inputs")] if run.input_version else []
    outputs = [ref(batch.add(DATASET_TYPE, versioned_dataset_attributes(run.output_version, namespace)),
                   "process_dataset_outputs")] if run.output_version else []
    attrs = {"qualifiedName": run.qualified_name.replace(f"@{DEFAULT_NAMESPACE}", f"@{namespace}"),
             "name": f"score {run.model} v{run.version} ({run.run_id})", "modelName": run.model,
             "modelVersion": run.version, "deploymentName": run.deployment, "targetDetail": target.host_detail,
             "startTime": millis(run.started), "outcome": run.outcome, "orchestratorRunId": run.run_id,
             "runBy": _login(), "executableSha256": run.sha256, "outputUri": run.output}
    if run.ended:
        attrs["endTime"] = millis(run.ended)
    for key, value in (("rowsIn", run.rows_in), ("rowsOut", run.rows_out), ("failureReason", run.failure)):
        if value is not None:
            attrs[key] = value
    batch.add(SCORING_RUN_TYPE, {k: v for k, v in attrs.items() if v is not None},
              {"inputs": inputs, "outputs": outputs,
               "deployment": {**ref_by_name(DEPLOYMENT_TYPE, run.deployment),
                              "relationshipType": "modelgov_scoring_run_deployment"}})
    return batch.entities


def _settle_killed(atlas: AtlasClient, storage: SparkStorage, target: SparkTarget, model: str, runs_dir: Path,
                   current: str) -> list[str]:
    """Runs of this model on this target still ``pending`` whose process is gone (their lock is free): recorded
    failed, their temporary output removed."""
    settled = []
    hits = atlas.search_basic({"typeName": SCORING_RUN_TYPE, "attributes": [
                                   "qualifiedName", "outcome", "orchestratorRunId", "targetDetail", "modelName",
                                   "outputUri"],
                               "entityFilters": {"condition": "AND", "criterion": [
                                   {"attributeName": "modelName", "operator": "=", "attributeValue": model},
                                   {"attributeName": "outcome", "operator": "=", "attributeValue": "pending"}]}})
    for hit in hits:
        attrs = hit.get("attributes") or {}
        other = str(attrs.get("orchestratorRunId") or "")
        if attrs.get("targetDetail") != target.host_detail or not other or other == current:
            continue
        path = runs_dir / f"{other}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # still running
        finally:
            os.close(fd)
        if attrs.get("outputUri"):  # the search header carries it: no read of the entity
            storage.delete(_tmp_output(attrs["outputUri"], other))
        atlas.partial_update_by_unique(SCORING_RUN_TYPE, attrs["qualifiedName"], {
            "outcome": "failed", "endTime": millis(datetime.now(UTC)),
            "failureReason": "interrupted: the scoring process died before it finished; its partial output was "
                             "removed"})
        path.unlink(missing_ok=True)
        settled.append(attrs["qualifiedName"])
    return settled


def _tmp_output(output: str, run_id: str) -> str:
    head, _, tail = output.rstrip("/").rpartition("/")
    return f"{head}/{TMP_MARK}{tail}-{run_id}"


def _read(spark, uri: str, fmt: str, *, infer: bool = True):
    """The table at ``uri``; a CSV with its header and, unless only counted, its column types inferred."""
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true" if infer else "false")
    return reader.load(hadoop_uri(uri))


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
