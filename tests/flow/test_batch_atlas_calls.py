"""Issue 23, the write half: the Atlas traffic of a batch deploy of new models grows by at most 4 calls per
model. `modelgov deploy --from-file LIST` runs as operators run it (a separate process, one flow run) against
the Atlas emulator behind a counting proxy, to KServe through the stateful fake kubectl (a cheap target that
keeps its InferenceServices across calls), at two sizes, so that a cost per model shows as growth."""

from __future__ import annotations

import json
import shutil
import uuid

import pytest

from governance.atlas.typedefs import install_types
from testbed.counting_proxy import CountingProxy
from tests.conftest import EXAMPLE, write_metadata
from tests.flow.test_cli import modelgov

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
TARGET = "kserve://models?context=prod&poll_interval=0.05"
SIZES = (5, 20)
PER_MODEL = 4   # the bound: at most 4 Atlas calls per model plus a constant
CONSTANT = 8    # once per run: status, types, the stale records of the target, the read-ahead pages


def _batch(tmp_path, env, proxy, registry, size: int) -> tuple[list[dict], int, dict]:
    sources = []
    for i in range(size):
        repo = tmp_path / f"b{size}" / f"model-{i}"
        shutil.copytree(EXAMPLE, repo)
        write_metadata(repo, model_name=f"batch{size}-m{i}")
        sources.append(str(repo))
    listing = tmp_path / f"models-{size}.txt"
    listing.write_text("\n".join(sources) + "\n")
    proxy.reset()
    proc = modelgov("deploy", "--from-file", str(listing), "--target", TARGET, "--registry", registry,
                    "--atlas", proxy.url, "--per-target-limit", "4", "--json", env=env, timeout=800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines()], proxy.total, dict(proxy.by_endpoint())


def test_batch_of_new_models_makes_at_most_four_atlas_calls_per_model(prefect_api, tmp_path, fake_kubectl,
                                                                       webhdfs, atlas, atlas_client):
    fake_kubectl.set(ready_after=1, url="http://127.0.0.1:9")  # nothing listens: the smoke test is skipped
    registry = f"hdfs://127.0.0.1:{webhdfs.url.rsplit(':', 1)[1]}/registry"
    env = {"PREFECT_API_URL": prefect_api, "ATLAS_USERNAME": "admin", "ATLAS_PASSWORD": "admin"}
    install_types(atlas_client)  # an Atlas that has the types, as after the first run (that run installs them)
    calls = {}
    with CountingProxy(atlas.url) as proxy:
        for size in SIZES:
            rows, calls[size], endpoints = _batch(tmp_path, env, proxy, registry, size)
            print(f"batch of {size} new models: {calls[size]} Atlas calls {endpoints}")
            assert [r["status"] for r in rows] == ["deployed"] * size
    for size in SIZES:
        assert calls[size] <= PER_MODEL * size + CONSTANT, (size, calls[size])
    # growth: the 15 models more of the second batch cost at most 4 calls each
    small, large = SIZES
    assert calls[large] - calls[small] <= PER_MODEL * (large - small), calls

    # what was written is the truth: every model recorded deployed once, as the cluster serves it
    recorded = {}
    for hit in atlas_client.search_basic({"typeName": "modelgov_model_deployment", "excludeDeletedEntities": True,
                                          "attributes": ["modelName", "status", "outcome"]}):
        recorded.setdefault(hit["attributes"]["modelName"], []).append(
            (hit["attributes"]["status"], hit["attributes"]["outcome"]))
    expected = {f"batch{size}-m{i}" for size in SIZES for i in range(size)}
    assert recorded == {name: [("deployed", "succeeded")] for name in expected}


@pytest.mark.real_atlas
def test_read_ahead_is_one_call_a_page_on_real_atlas(real_atlas, example_repo, tmp_path):
    """What the read-ahead relies on, on a real Apache Atlas: ``GET /v2/entity/bulk/uniqueAttribute`` answers a
    page that names a model Atlas does not hold (it leaves it out instead of refusing the page, so no
    name-by-name fallback), and the project comes with its builds as owned children."""
    from datetime import UTC, datetime

    from governance.atlas.client import AtlasClient, AtlasSettings
    from governance.deploy.ledger import Ledger
    from governance.deploy.record import DeploymentRecord, TargetInfo
    from governance.registries.file import FileRegistry
    from governance.staging.validate import validate_repo

    name = f"read-ahead-{uuid.uuid4().hex[:8]}"
    write_metadata(example_repo, model_name=name)
    staged = validate_repo(example_repo)
    registered = FileRegistry(f"file://{tmp_path / 'registry'}").publish(staged)
    record = DeploymentRecord(deployment_id="run-1", staged=staged, registered=registered,
                              target=TargetInfo("mlserver", "mlserver://h:1?repository=/x", "h:1"),
                              started_at=datetime.now(UTC), deployed_by="tester", run_id="run-1")
    settings = AtlasSettings(url=real_atlas["url"], username=real_atlas["username"],
                             password=real_atlas["password"])
    writer = Ledger(AtlasClient(settings))
    try:
        writer.check()
        writer.record_intent(record)
    finally:
        writer.close()
    with CountingProxy(real_atlas["url"]) as proxy:
        reader = Ledger(AtlasClient(AtlasSettings(url=proxy.url, username=settings.username,
                                                  password=settings.password)))
        try:
            found = reader.read_models([name, f"{name}-never-recorded"])
            reads = dict(proxy.by_endpoint())
            deployments = found[name].deployments(reader.atlas)
            print(f"read-ahead: {reads}; deployments then: {dict(proxy.by_endpoint())}")
        finally:
            reader.close()
    assert reads == {"GET /api/atlas/v2/entity/bulk/uniqueAttribute/type/ml_project": 1}, reads
    assert found[f"{name}-never-recorded"].project is None
    assert [b["attributes"]["modelVersion"] for b in found[name].builds] == ["1.0"]
    assert [d["attributes"]["status"] for d in deployments] == ["deploying"]
