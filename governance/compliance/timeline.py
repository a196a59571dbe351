"""A model's deployment history, and what served at a given moment.

A deployment serves at T when it succeeded and ``deployedTime <= T < stoppedTime`` (or it has not
stopped): the deploy instant is included, the stop instant is not, compared in epoch milliseconds as
Atlas stores them. Failed attempts and deploys still ``deploying`` never serve. Atlas filters on model
name, target and ``deployedTime <= T``; the stop-time and outcome test is computed here, because a
null ``stoppedTime`` (still serving) cannot be compared in one basic-search filter on every Atlas version.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from governance.atlas.client import AtlasClient
from governance.compliance.queries import Deployment, DeploymentFilter, TargetFilter, find_deployments
from governance.compliance.times import to_millis


def history(client: AtlasClient, name: str, target: TargetFilter | None = None) -> list[Deployment]:
    """Every recorded deployment and failed attempt of ``name``, oldest first."""
    return find_deployments(client, DeploymentFilter(name=name, target=target))


def serving_at(client: AtlasClient, name: str, moment: datetime,
               target: TargetFilter | None = None) -> list[Deployment]:
    """The deployments of ``name`` that were serving at ``moment`` (oldest first)."""
    wanted = DeploymentFilter(name=name, target=target)
    # deployedTime <= T, as Atlas's "<" on T + 1 ms (dates are whole milliseconds)
    wanted = replace(wanted, until=moment.replace(microsecond=moment.microsecond // 1000 * 1000)
                     + timedelta(milliseconds=1))
    moment_ms = to_millis(moment)
    return [d for d in find_deployments(client, wanted) if d.serving_at(moment_ms)]
