"""Prefect flow ``score-model``: one Spark scoring run (``governance.deploy.scoring_run``), manual or on a schedule.

A Spark target with ``schedule=CRON`` gets, when a deploy binds a version to it, a Prefect deployment
``score-model/<model>-<target>`` on the target's work pool (``pool=``, default ``modelgov``) with that schedule:
workers then run the job, each run scoring with whatever version is bound at that moment (the binding, which
Atlas's ``deployed`` names). The run id recorded on the scoring run is the flow run's.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from governance.deploy.request import DeployRequest
from governance.deploy.summary import DeploySummary

ROOT = Path(__file__).resolve().parent.parent  # the checkout workers run the flow from (as flows.register's)
ENTRYPOINT = "flows/score.py:score_model"


@flow(name="score-model", log_prints=False, validate_parameters=True)
def score_model(model: str, target: str, input: str | None = None, output: str | None = None,
                atlas_url: str | None = None, namespace: str | None = None, config: str | None = None) -> dict:
    """Score ``input`` (default: the target's) with the version of ``model`` bound to the Spark ``target``."""
    from governance.atlas.client import AtlasClient
    from governance.config import load_config
    from governance.deploy.scoring_run import score
    from governance.errors import ConfigError
    from governance.targets import get_target
    from governance.targets.spark import SparkTarget

    cfg = load_config(config)
    spark = get_target(cfg.target(target).uri)
    if not isinstance(spark, SparkTarget):
        raise ConfigError(f"{target} is a {spark.kind} target: score-model runs Spark jobs")
    client = AtlasClient.from_env(atlas_url or cfg.atlas_url)
    try:
        run = score(spark, model, client, input_uri=input, output_uri=output, run_id=str(flow_run.id or "") or None,
                    namespace=namespace or cfg.namespace or "modelgov")
    finally:
        client.close()
    get_run_logger().info("scored %s rows of %s with %s %s into %s", run.rows_in, run.input, run.model, run.version,
                          run.output)
    return run.to_dict()


def schedule_name(model: str, target_detail: str) -> str:
    return f"{model}-{hashlib.sha256(target_detail.encode()).hexdigest()[:8]}"


def schedule_scoring(request: DeployRequest, summary: DeploySummary) -> str | None:
    """After a deploy to a Spark target with ``schedule=``: create or update its scoring deployment; its name."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    from governance.targets import get_target
    from governance.targets.spark import SparkTarget

    target = get_target(request.target_uri)
    if not isinstance(target, SparkTarget) or not target.schedule or not summary.succeeded:
        return None
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=target.pool, type="process"))
    name = schedule_name(summary.model_name, target.host_detail)
    flow = score_model.from_source(source=str(ROOT), entrypoint=ENTRYPOINT)
    flow.deploy(name=name, work_pool_name=target.pool, cron=target.schedule, build=False, push=False,
                print_next_steps=False, ignore_warnings=True,
                parameters={"model": summary.model_name, "target": request.target_uri,
                            "atlas_url": request.atlas_url, "namespace": request.namespace})
    get_run_logger().info("scoring of %s on %s scheduled (%s): deployment score-model/%s on pool %s",
                          summary.model_name, target.where, target.schedule, name, target.pool)
    return f"score-model/{name}"
