"""Register the deploy-model flow as a Prefect deployment served by workers (scale-out, scheduled redeploys).

    python -m flows.register --pool modelgov                       # manual runs: prefect deployment run ...
    python -m flows.register --pool modelgov --name nightly --cron "0 3 * * *" \\
        --param source=git+https://git.corp/models/churn.git@v3 --param target=mlserver-prod --param registry=models-s3

Workers (``prefect worker start --pool modelgov``) run each flow run in their own process, from this
checkout (or from a git clone step in production). Parameters never carry secrets: workers read Atlas,
AWS and HDFS credentials from their environment or Prefect Secret blocks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists

from flows.deploy_model import deploy_model
from flows.score import ENTRYPOINT as SCORE_ENTRYPOINT

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = "flows/deploy_model.py:deploy_model"
ENTRYPOINTS = {"deploy-model": ENTRYPOINT, "deploy-models": "flows/batch.py:deploy_models",
               "reconcile": "flows/reconcile.py:reconcile", "score-model": SCORE_ENTRYPOINT}


async def ensure_pool(name: str) -> None:
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):  # idempotent: an existing pool is fine
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def register(pool: str, name: str = "ops", cron: str | None = None, parameters: dict | None = None,
             source: str | Path = ROOT, flow_name: str = "deploy-model") -> str:
    """Create or update the deployment of ``flow_name`` (deploy-model, deploy-models, reconcile, score-model); return its
    id. Creates the process work pool when missing."""
    if flow_name not in ENTRYPOINTS:
        raise SystemExit(f"unknown flow {flow_name!r}; known: {', '.join(ENTRYPOINTS)}")
    asyncio.run(ensure_pool(pool))
    flow = deploy_model.from_source(source=str(source), entrypoint=ENTRYPOINTS[flow_name])
    deployment_id = flow.deploy(name=name, work_pool_name=pool, cron=cron, parameters=parameters or {},
                                build=False, push=False, print_next_steps=False, ignore_warnings=True)
    return str(deployment_id)


def register_push_trigger(deployment: str = "deploy-model/on-push", name: str = "modelgov-deploy-on-push") -> str:
    """The automation that turns each ``modelgov.staging.pushed`` event (see ``flows.relay``) into a run of
    ``deployment``, with the event's pinned source; target and registry are the deployment's own parameters.
    Re-registering replaces the automation of the same name."""
    from datetime import timedelta

    from prefect.automations import Automation, EventTrigger, Posture, RunDeployment
    from prefect.exceptions import ObjectNotFound

    from flows.relay import PUSH_EVENT, RESOURCE_PREFIX

    with get_client(sync_client=True) as client:
        target = client.read_deployment_by_name(deployment)
    with contextlib.suppress(ObjectNotFound, ValueError):
        Automation.read(name=name).delete()
    automation = Automation(
        name=name, description=f"run {deployment} when a staged repo is pushed",
        trigger=EventTrigger(expect={PUSH_EVENT}, match={"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
                             posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[RunDeployment(source="selected", deployment_id=target.id,
                               parameters={"source": "{{ event.payload.source }}"})]).create()
    return str(automation.id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.register", description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="modelgov")
    parser.add_argument("--flow", default="deploy-model", choices=sorted(ENTRYPOINTS))
    parser.add_argument("--name", default="ops")
    parser.add_argument("--cron", default=None, help="schedule, e.g. '0 3 * * *' for a nightly redeploy")
    parser.add_argument("--on-push", action="store_true",
                        help="also create the automation that runs this deployment on modelgov.staging.pushed")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="default flow parameter (source, target, registry, atlas_url, environment)")
    args = parser.parse_args(argv)
    if args.on_push and args.flow != "deploy-model":
        parser.error("--on-push runs deploy-model: use it with --flow deploy-model")
    params = {}
    for item in args.param:
        key, _, value = item.partition("=")
        # lists (reconcile's targets) as JSON: --param 'targets=["mlserver-prod"]'; everything else a string
        params[key] = json.loads(value) if value.startswith("[") else value
    deployment_id = register(args.pool, args.name, args.cron, params, flow_name=args.flow)
    if args.on_push:
        automation_id = register_push_trigger(f"deploy-model/{args.name}")
        print(f"automation {automation_id}: modelgov.staging.pushed -> deploy-model/{args.name}")
    print(f"deployment {args.flow}/{args.name} ({deployment_id}) on work pool {args.pool!r}; start a worker "
          f"with: prefect worker start --pool {args.pool}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
