"""A fleet of deployment records written straight through Atlas's bulk entity API, for the tests and the
benchmark that count the Atlas calls of the compliance commands (issue 23): thousands of records in seconds,
where deploying them through the flow would take hours.

One model (``fleet`` unless named) with N versions; each version has its own build, train process,
training dataset, deployment and deploy process (nothing shared that a reader could read once: the worst
case for the Atlas traffic), and every train process also reads one shared dataset classified sensitive.
Fleets of different models (and start times) can share one Atlas. The records have the
shape the recorder writes (``governance.deploy.entities``), reduced to what the compliance commands read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from governance.errors import AtlasError

NS = "modelgov"
MODEL = "fleet"
START_MS = int(datetime(2026, 11, 2, tzinfo=UTC).timestamp() * 1000)  # deployment i at START_MS + i s
TARGET_DETAIL = "127.0.0.1:9"


def deployment_name(i: int, model: str = MODEL) -> str:
    """The qualifiedName of the fleet's deployment ``i`` (version ``i + 1``.0)."""
    return f"{model}/{i + 1}.0/mlserver://{TARGET_DETAIL}/run-{i:05d}@{NS}"


def shared_name(model: str = MODEL) -> str:
    """The qualifiedName of the sensitive dataset every version of the fleet is also trained on."""
    return f"file:///data/{model}-shared-features.csv@{NS}"


def _by_name(type_name: str, qualified_name: str) -> dict:
    return {"typeName": type_name, "uniqueAttributes": {"qualifiedName": qualified_name}}


def _dataset_name(i: int, model: str) -> str:
    return f"file:///data/{model}-{i:05d}.csv@{NS}"


def fleet_batches(size: int, repository: str, *, model: str = MODEL, start_ms: int = START_MS,
                  wide_first: bool = False, per_batch: int = 50) -> Iterator[list[dict]]:
    """The entities of a fleet of ``size`` deployments (one a second from ``start_ms``), as bulk-upsert
    bodies of at most ``per_batch`` versions (later batches refer to earlier entities by qualifiedName).
    ``repository``: the MLServer model repository of the recorded target URI. ``wide_first``: version 1.0
    is trained on every version's dataset (a trace that reads ``size`` datasets)."""
    head = [{"typeName": "ml_project", "guid": "-1", "attributes": {"qualifiedName": f"{model}@{NS}",
                                                                    "name": model}},
            {"typeName": "modelgov_dataset", "guid": "-2",
             "attributes": {"qualifiedName": shared_name(model), "name": f"{model}-shared-features.csv"}}]
    for start in range(0, size, per_batch * 5):
        yield head + [{"typeName": "modelgov_dataset", "guid": f"-{i + 3}", "attributes": {
            "qualifiedName": _dataset_name(i, model), "name": f"{model}-{i:05d}.csv"}}
            for i in range(start, min(size, start + per_batch * 5))]
        head = []
    for start in range(0, size, per_batch):
        yield [e for i in range(start, min(size, start + per_batch))
               for e in _version(i, size, repository, model, start_ms, wide_first)]


def _version(i: int, size: int, repository: str, model: str, start_ms: int, wide_first: bool) -> list[dict]:
    v, base = f"{i + 1}.0", -10 * (i + 1)  # ml_model_build.version is an int32: the plain index, not 10^6 per major
    build, deployment = str(base - 2), str(base - 3)
    data = range(size) if wide_first and i == 0 else [i]
    deployed = start_ms + i * 1000
    return [
        {"typeName": "modelgov_model_build", "guid": build, "attributes": {
            "qualifiedName": f"{model}/{v}@{NS}", "name": f"{model} v{v}", "version": i + 1,
            "modelVersion": v, "owner": "ana", "ownerLob": "risk", "registryUri": f"file:///nowhere/{model}/{v}",
            "executablePath": "executable/model.joblib", "executableSha256": f"{i:064x}",
            "artifactChecksums": {"executable/model.joblib": f"{i:064x}"}},
         "relationshipAttributes": {"project": _by_name("ml_project", f"{model}@{NS}")}},
        {"typeName": "modelgov_train_build_process", "guid": str(base - 4), "attributes": {
            "qualifiedName": f"{model}/{v}/train@{NS}", "name": f"train {model} v{v}", "userName": "ana",
            "inputs": [*(_by_name("modelgov_dataset", _dataset_name(j, model)) for j in data),
                       _by_name("modelgov_dataset", shared_name(model))],
            "outputs": [{"guid": build}]}},
        {"typeName": "modelgov_model_deployment", "guid": deployment, "attributes": {
            "qualifiedName": deployment_name(i, model), "name": f"{model} v{v}", "owner": "ana", "createTime": deployed,
            "deployedTime": deployed, "status": "deployed", "modelName": model, "modelVersion": v,
            "targetKind": "mlserver", "targetDetail": TARGET_DETAIL,
            "targetUri": f"mlserver://{TARGET_DETAIL}?repository={repository}", "outcome": "succeeded",
            "deployedBy": "ops", "cpuMillicores": 0},
         "relationshipAttributes": {"build": {"guid": build}}},
        {"typeName": "modelgov_deploy_process", "guid": str(base - 5), "attributes": {
            "qualifiedName": f"{model}/{v}/deploy/run-{i:05d}@{NS}", "name": f"deploy {model} v{v}",
            "userName": "ops", "startTime": deployed, "inputs": [{"guid": build}],
            "outputs": [{"guid": deployment}]}}]


def write_fleet(client, size: int, repository: str, *, model: str = MODEL, start_ms: int = START_MS,
                wide_first: bool = False) -> None:
    """Write the fleet (``fleet_batches``) through ``client`` (an ``AtlasClient`` with modelgov's types
    installed), the shared dataset classified sensitive (``pii``) once written and before the lineage that
    reads it: Atlas then propagates the classification batch by batch, inside each upsert, instead of to
    the whole fleet in one call (minutes, past an operation's deadline, at 10,000 records on Atlas 2.1)."""
    for n, batch in enumerate(fleet_batches(size, repository, model=model, start_ms=start_ms, wide_first=wide_first)):
        client.upsert_entities(batch)
        if n == 0:  # the first batch holds the shared dataset
            _classify(client, client.get_entity_by_unique("modelgov_dataset", shared_name(model))["entity"]["guid"])


def _classify(client, guid: str) -> None:
    try:
        client.add_classifications(guid, [{"typeName": "modelgov_sensitive_data", "propagate": True,
                                           "attributes": {"category": "pii"}}])
    except AtlasError as exc:  # a retry after a timeout whose first attempt landed
        if "already associated" not in str(exc):
            raise
