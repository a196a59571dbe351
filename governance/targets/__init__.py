"""Serving targets by URI scheme: ``get_target("mlserver://host:8080?repository=/models")``.

Third parties add schemes through the ``modelgov.targets`` entry-point group.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from urllib.parse import urlparse

from governance.errors import ConfigError
from governance.targets.base import DeploymentResult, Release, ServingTarget, SmokeResult

_BUILTIN: dict[str, str] = {
    "mlserver": "governance.targets.mlserver:MLServerTarget",
    "mleap": "governance.targets.mleap:MleapTarget",
    "kserve": "governance.targets.kserve:KServeTarget",
}


def target_schemes() -> dict[str, str]:
    schemes = dict(_BUILTIN)
    for ep in entry_points(group="modelgov.targets"):
        schemes[ep.name] = ep.value
    return schemes


def get_target(uri: str) -> ServingTarget:
    """The target for ``uri``; an unknown scheme lists the schemes that exist."""
    scheme = urlparse(uri).scheme
    schemes = target_schemes()
    if scheme not in schemes:
        raise ConfigError(f"unknown target scheme {scheme!r} in {uri!r}; known: {', '.join(sorted(schemes))}")
    module, _, attr = schemes[scheme].partition(":")
    return getattr(import_module(module), attr)(uri)


__all__ = ["DeploymentResult", "Release", "ServingTarget", "SmokeResult", "get_target", "target_schemes"]
