"""Atlas benchmark: one deployment record as ONE bulk upsert (what ``governance.deploy.payload`` does) against
ONE CALL PER ENTITY (``POST /v2/entity`` each, dependencies first, earlier guids substituted into later
references), against the Atlas emulator and a real Apache Atlas 2.1.

    python -m bench.atlas [--runs N] [--quick] [--per-run 20] [--only emulator|atlas]

Every deployment is fresh: a new model version of the example repo (published once into a file registry,
outside the clock), so the build, its registry copy, training data, train process, deployment and deploy
process are all created, and the project is updated. Value = seconds per deployment record (a run records
``--per-run`` deployments each way; alternating runs, medians), baseline = per-entity; target ratio <= 1.0.
"""

from __future__ import annotations

import argparse
import collections
import copy
import itertools
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, Target, alternate, emit, failed, log, result
from governance.atlas.client import AtlasClient, AtlasSettings, MutationResult
from governance.atlas.typedefs import install_types
from governance.deploy.entities import build_entities
from governance.deploy.governed import GovernedDeploy
from governance.deploy.payload import record_deployment
from governance.deploy.record import DeploymentRecord, TargetInfo
from governance.registries.file import FileRegistry
from governance.staging.validate import validate_repo
from governance.targets.base import DeploymentResult, Release, ServedModel, ServingTarget

BENCH = "atlas_bulk_vs_per_entity"
EXAMPLE = ROOT / "staging_template" / "example"
_VERSIONS = itertools.count(1)


class CountingClient(AtlasClient):
    """An AtlasClient that counts its HTTP requests (the session's, so retries count too)."""

    def __init__(self, settings: AtlasSettings):
        super().__init__(settings)
        self.calls = 0
        self.paths: collections.Counter[str] = collections.Counter()
        send = self.session.request

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            path = re.sub(r"/(name|guid)/[^/?]+", r"/\1/*", url.split("/api/atlas", 1)[-1])
            self.paths[f"{method} {path}"] += 1
            return send(method, url, *args, **kwargs)

        self.session.request = counted  # type: ignore[method-assign]


def set_version(repo: Path, version: str) -> None:
    meta = repo / "metadata.txt"
    meta.write_text("\n".join(f"model.version = {version}" if line.startswith("model.version") else line
                              for line in meta.read_text(encoding="utf-8").splitlines()) + "\n", encoding="utf-8")


def make_records(work: Path, count: int, name: str) -> list[DeploymentRecord]:
    """``count`` fresh deployments of new versions of one model (published outside the clock)."""
    repo = work / f"staged-{name}"
    if not repo.exists():
        shutil.copytree(EXAMPLE, repo)
        meta = repo / "metadata.txt"
        meta.write_text("\n".join(f"model.name = {name}" if line.startswith("model.name") else line
                                  for line in meta.read_text(encoding="utf-8").splitlines()) + "\n",
                        encoding="utf-8")
    registry = FileRegistry(f"file://{work / 'registry'}")
    records = []
    for _ in range(count):
        n = next(_VERSIONS)
        set_version(repo, f"{n // 10**6}.{n // 1000 % 1000}.{n % 1000}")
        staged = validate_repo(repo)
        registered = registry.publish(staged)
        deployment_id = uuid.uuid4().hex[:12]
        host = f"bench-{deployment_id[:6]}:8080"
        record = DeploymentRecord(deployment_id=deployment_id, staged=staged, registered=registered,
                                  target=TargetInfo("mlserver", f"mlserver://{host}?repository=/x", host),
                                  started_at=datetime.now(UTC), deployed_by="bench", run_id=deployment_id)
        meta = staged.metadata
        records.append(record.succeeded(DeploymentResult(
            "mlserver", record.target.uri, host, f"http://{host}/v2/models/{meta.name}/infer", meta.name,
            meta.version, datetime.now(UTC), registered.executable_uri, meta.name, str(meta.version_number))))
    return records


def _resolve(value: Any, guid_of: dict[str, str]) -> Any:
    """Replace references to earlier entities' negative guids by the guids Atlas assigned them."""
    if isinstance(value, list):
        return [_resolve(v, guid_of) for v in value]
    if isinstance(value, dict) and "guid" in value and value["guid"] in guid_of:
        return {**value, "guid": guid_of[value["guid"]]}
    return value


def record_per_entity(client: AtlasClient, record: DeploymentRecord) -> dict[str, str]:
    """The same entities as ``record_deployment``, one ``POST /v2/entity`` each, dependencies first (the order
    ``build_entities`` emits them in); returns negative guid -> assigned guid."""
    entities, _ = build_entities(record)
    guid_of: dict[str, str] = {}
    for entity in entities:
        entity = copy.deepcopy(entity)
        if "relationshipAttributes" in entity:
            entity["relationshipAttributes"] = {k: _resolve(v, guid_of)
                                                for k, v in entity["relationshipAttributes"].items()}
        # the same transport as the bulk call (session, retries, deadline): only the request shape differs
        body = client._request("POST", "/v2/entity", json={"entity": entity}) or {}
        answer = MutationResult.from_json(body)
        assigned = answer.guid_assignments.get(entity["guid"])
        if assigned is None:  # an update may come back without an assignment: find it in the headers
            qn = entity["attributes"]["qualifiedName"]
            assigned = next((h["guid"] for h in answer.created + answer.updated
                             if h.get("typeName") == entity["typeName"]
                             and (h.get("attributes") or {}).get("qualifiedName") == qn), None)
        if assigned is None:
            got = client.get_entity_by_unique(entity["typeName"], entity["attributes"]["qualifiedName"])
            assigned = (got or {}).get("entity", {}).get("guid")
        if not assigned:
            raise RuntimeError(f"Atlas returned no guid for {entity['typeName']} {entity['attributes']['qualifiedName']}")
        guid_of[entity["guid"]] = assigned
    return guid_of


class MemoryTarget(ServingTarget):
    """A serving target that only remembers what it serves: the Atlas side of a deploy, without a server."""

    kind = "mlserver"

    def __init__(self) -> None:
        super().__init__("mlserver://bench-memory:8080?repository=/x")
        self.serving: dict[str, ServedModel] = {}

    def deploy(self, release: Release) -> DeploymentResult:
        meta, registered = release.metadata, release.registered
        sha = next(f.sha256 for f in registered.manifest.files if f.path == registered.manifest.executable)
        url = f"http://{self.host_detail}/v2/models/{meta.name}/infer"
        self.serving[meta.name] = ServedModel(meta.name, meta.version, "1", sha, url)
        return DeploymentResult("mlserver", self.uri, self.host_detail, url, meta.name, meta.version,
                                datetime.now(UTC), registered.executable_uri, meta.name, "1")

    def status(self, name: str, version: str) -> str:
        return "READY"

    def undeploy(self, name: str, version: str) -> None:
        self.serving.pop(name, None)

    def served(self, name: str | None = None) -> list[ServedModel]:
        return [m for m in self.serving.values() if name in (None, m.name)]


def count_deploy_calls(info: dict, work: Path) -> tuple[list[int], dict[str, int]]:
    """Atlas HTTP calls of ``modelgov deploy``'s Atlas side (preflight ``Ledger.check`` + the governed deploy:
    reconcile reads, intent, outcome, supersede), for three deploys of new versions to one target."""
    from governance.deploy.ledger import Ledger
    from governance.deploy.outbox import Outbox
    from governance.deploy.release import release_for

    os.environ.setdefault("MODELGOV_STATE_DIR", str(work / "state"))
    target = MemoryTarget()
    registry = FileRegistry(f"file://{work / 'registry'}")
    counts = []
    for record in make_records(work, 3, f"bench-deploy-{uuid.uuid4().hex[:6]}"):
        client = CountingClient(AtlasSettings(url=info["url"], username=info.get("username", "admin"),
                                              password=info.get("password", "admin")))
        ledger = Ledger(client, outbox=Outbox(work / "outbox"))
        ledger.check()
        record = replace(record, target=TargetInfo(target.kind, target.uri, target.host_detail), result=None,
                         status="deploying", outcome="pending", finished_at=None)
        GovernedDeploy(target, ledger).run(release_for(record.staged, record.registered, registry), record)
        counts.append(client.calls)
        client.close()
    return counts, dict(client.paths.most_common())


def check_lineage(client: AtlasClient, fn: Any, record: DeploymentRecord) -> None:
    """The deploy process links build + registry copy -> deployment, and the build its project and copy."""
    fn(client, record)
    _, qn = build_entities(record)
    process = (client.get_entity_by_unique("modelgov_deploy_process", qn.deploy_process) or {}).get("entity", {})
    build = (client.get_entity_by_unique("modelgov_model_build", qn.build) or {}).get("entity", {})
    rel, brel = process.get("relationshipAttributes") or {}, build.get("relationshipAttributes") or {}
    shape = (len(rel.get("inputs") or []), len(rel.get("outputs") or []), bool(brel.get("project")),
             bool(brel.get("registryCopy")))
    if shape != (2, 1, True, True):
        raise RuntimeError(f"{fn.__name__}: lineage incomplete (inputs, outputs, project, registryCopy) = {shape}")


def bench_server(server: str, info: dict, work: Path, runs: int, per_run: int, state_file: Path) -> None:
    client = CountingClient(AtlasSettings(url=info["url"], username=info.get("username", "admin"),
                                          password=info.get("password", "admin")))
    started = time.monotonic()
    report = install_types(client)
    log(f"{server}: install_types {time.monotonic() - started:.2f} s ({report.summary()[:120]})")
    model = f"bench-atlas-{uuid.uuid4().hex[:6]}"
    entity_count = len(build_entities(make_records(work, 1, model)[0])[0])
    calls = {"bulk": [], "per_entity": []}
    deploy_calls, by_endpoint = count_deploy_calls(info, work)
    log(f"{server}: Atlas HTTP calls of one governed deploy (preflight check + deploy), 3 deploys in a row: "
        f"{deploy_calls}; the last one's: {by_endpoint}")

    def measure(kind: str, fn: Any) -> Any:
        def run(_: int) -> float:
            records = make_records(work, per_run, model)
            before = client.calls
            start = time.perf_counter()
            for record in records:
                fn(client, record)
            seconds = (time.perf_counter() - start) / per_run
            calls[kind].append((client.calls - before) / per_run)
            return seconds
        return run

    bulk, per_entity = alternate(measure("bulk", record_deployment), measure("per_entity", record_per_entity),
                                 runs, warmup=True)
    for fn in (record_deployment, record_per_entity):  # both ways leave the same lineage
        check_lineage(client, fn, make_records(work, 1, model)[0])
    client.close()
    extra = {}
    if state_file.is_file():  # the emulator rewrites this whole file on every write: cost grows with the store
        extra["state_file_mb"] = round(state_file.stat().st_size / 1e6, 1)
    emit(result(BENCH, bulk, per_entity, unit="s", higher_is_better=False, baseline_name="one POST /v2/entity per entity",
                target=Target("ratio", "<=", 1.0), server=server, deployments_per_run=per_run,
                entities_per_deployment=entity_count, http_calls_bulk=max(calls["bulk"]),
                http_calls_per_entity=max(calls["per_entity"]), http_calls_per_deploy=deploy_calls,
                deploy_calls_by_endpoint=by_endpoint, note="file registry; fresh model version per "
                "deployment; bulk = governance.deploy.payload.record_deployment", **extra))


def start_server(name: str, work: Path):
    from testbed.service import service_class

    svc = service_class(name)(work / name)
    started = time.monotonic()
    info = svc.start()
    log(f"{name} ready at {info['url']} after {time.monotonic() - started:.0f} s")
    return svc, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--per-run", type=int, default=None, help="deployments recorded per run and way (20)")
    parser.add_argument("--only", choices=["emulator", "atlas"], default=None)
    args = parser.parse_args(argv)
    per_run = args.per_run or (3 if args.quick else 20)
    runs = min(args.runs, 2) if args.quick else args.runs
    if not (EXAMPLE / "executable" / "model.joblib").is_file():
        failed(BENCH, f"the example model is missing ({EXAMPLE}): run `make example`")
        return 1
    status = 0
    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-atlas-"))
    try:
        for server, service in (("emulator", "atlas-emulator"), ("atlas-2.1", "atlas")):
            if args.only and not service.endswith(args.only):
                continue
            svc = None
            try:
                svc, info = start_server(service, work)
                bench_server(server, info, work, runs, per_run, svc.workdir / "atlas-state.json")
            except Exception as exc:  # noqa: BLE001 - one server failing must not hide the other's result
                failed(BENCH, f"server {server}: {exc.__class__.__name__}: {exc}")
                status = 1
            finally:
                if svc is not None:
                    svc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
