"""Serving targets by URI scheme: ``get_target("mlserver://host:8080?repository=/models")``.

Third parties add schemes through the ``modelgov.targets`` entry-point group.
"""

from __future__ import annotations

from governance.plugins import instantiate, schemes
from governance.targets.base import DeploymentResult, Release, ServedModel, ServingTarget, SmokeResult

_BUILTIN: dict[str, str] = {
    "mlserver": "governance.targets.mlserver:MLServerTarget",
    "mleap": "governance.targets.mleap:MleapTarget",
    "kserve": "governance.targets.kserve:KServeTarget",
    "spark": "governance.targets.spark:SparkTarget",
}


def target_schemes() -> dict[str, str]:
    return schemes(_BUILTIN, "modelgov.targets")


def get_target(uri: str) -> ServingTarget:
    """The target for ``uri``; an unknown scheme lists the schemes that exist; credentials are refused."""
    from governance.secrets import refuse_credentials

    refuse_credentials(uri, "target")
    return instantiate(uri, _BUILTIN, "modelgov.targets", "target")


__all__ = ["DeploymentResult", "Release", "ServedModel", "ServingTarget", "SmokeResult", "get_target", "target_schemes"]
