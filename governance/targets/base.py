"""The serving-target interface: deploy the registered bytes, prove the service answers, say what was done.

A target reads the model from the registry copy (never from the staging folder), so what serves is
exactly what was registered, and checks the bytes it installs against the registry manifest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

from governance.errors import ConfigError
from governance.registries.base import Registry, RegistryVersion
from governance.staging.metadata import ModelMetadata


@dataclass(frozen=True)
class Release:
    """What to deploy: the model's metadata, its registered version and the registry to read bytes from."""

    metadata: ModelMetadata
    registered: RegistryVersion
    registry: Registry
    example_request: Any | None = None
    example_response: Any | None = None

    @property
    def executable(self) -> str:
        return self.registered.manifest.executable


@dataclass(frozen=True)
class SmokeResult:
    """The answer to the example request sent right after deploy, and whether it matched the expectation."""

    request: Any
    response: Any
    matched_expected: bool | None  # None when the staged repo gave no expected response


@dataclass(frozen=True)
class DeploymentResult:
    """What a target did. Every field ends up in the Atlas deployment record."""

    target_kind: str          # "mlserver", "mleap", "kserve"
    target_uri: str           # the target URI without secrets
    host_detail: str          # host:port, or cluster/namespace
    endpoint_url: str         # where clients send inference requests
    model_name: str
    model_version: str
    deployed_at: datetime
    serialized_object: str    # registry URI of the served artifact
    loaded_name: str          # what the target itself reports as loaded
    loaded_version: str
    smoke: SmokeResult | None = None
    details: dict[str, str] = field(default_factory=dict)


def target_options(uri: str, known: set[str], kind: str) -> dict[str, str]:
    """The URI's query options (last value wins); a misspelt option is an error, not silently ignored."""
    query = {k: v[-1] for k, v in parse_qs(urlparse(uri).query).items()}
    unknown = set(query) - known
    if unknown:
        raise ConfigError(f"{kind} target URI {uri!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(known))}")
    return query


class ServingTarget(ABC):
    """One target backend per URI scheme (see ``governance.targets.get_target``)."""

    kind: ClassVar[str]

    def __init__(self, uri: str):
        self.uri = uri

    @property
    def host_detail(self) -> str:
        """Where the target is (host:port, or cluster/namespace), known before deploying."""
        return urlparse(self.uri).netloc

    @abstractmethod
    def deploy(self, release: Release) -> DeploymentResult:
        """Install the release, wait until it is ready, run the smoke test; raise TargetError on any failure."""

    @abstractmethod
    def status(self, name: str, version: str) -> str:
        """``deployed``, ``deploying``, ``stopped`` or ``unknown`` as the target reports it."""

    @abstractmethod
    def undeploy(self, name: str, version: str) -> None:
        """Remove one version from service without touching others."""

    def verify(self, release: Release) -> list[str]:
        """Problems with what the target serves for this release (empty when it serves exactly it)."""
        return []
