"""The serving-target interface: deploy the registered bytes, prove the service answers, say what was done.

A target reads the model from the registry copy (never from the staging folder), so what serves is
exactly what was registered, and checks the bytes it installs against the registry manifest.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

from governance.checksums import ArtifactFile
from governance.config import state_dir
from governance.deadlines import DEFAULT_TARGET_DEADLINE, TARGET_DEADLINE_ENV, Clock, deadline_from_env
from governance.errors import ConfigError, TargetDeadlineExceeded, TargetError
from governance.http import OutOfTime
from governance.paths import path_problem
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

    @property
    def executable_entry(self) -> ArtifactFile:
        """The manifest entry (sha256, size) of the executable: what the target installs and reports."""
        return self.registered.manifest.executable_entry


@dataclass(frozen=True)
class SmokeResult:
    """The answer to the example request sent right after deploy, and whether it matched the expectation."""

    request: Any
    response: Any
    matched_expected: bool | None  # None when the staged repo gave no expected response


@dataclass(frozen=True)
class ServedModel:
    """One model version a target really serves now, as the target itself reports it.

    ``version`` is the owner's dotted version (as in metadata.txt), so it compares with Atlas's
    ``modelVersion``; ``target_version`` is the target's own id for it (MLServer's integer version, the
    InferenceService name, the MLeap bundle file). ``sha256`` is the installed executable's digest where the
    target lets us read it, else None.
    """

    name: str
    version: str
    target_version: str
    sha256: str | None = None
    endpoint_url: str | None = None
    traffic_percent: int | None = None  # share of the traffic when the target splits it (KServe canary)


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
    """One target backend per URI scheme (see ``governance.targets.get_target``).

    Optional capabilities are declared here with their defaults, and a target that has one overrides it:
    ``single_model`` (loading a model replaces whatever the server held), ``canary_percent`` (the share of
    traffic a new version gets, when the target splits it) and ``render_manifest`` (what a dry run shows).
    """

    kind: ClassVar[str]
    single_model: ClassVar[bool] = False
    canary_percent: int | None = None

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

    @abstractmethod
    def served(self, name: str | None = None) -> list[ServedModel]:
        """What the target really serves now (only model ``name`` when given), asked of the target itself.

        Superseding, no-op detection and the settling of stale intents compare Atlas with this answer, so
        it must come from the target's own state, never from modelgov's bookkeeping. Raises TargetError
        when the target cannot be asked.
        """

    def render_manifest(self, release: Release) -> str | None:
        """The manifest a deploy would apply (KServe's InferenceService), for ``deploy --dry-run``; None for
        targets that apply no manifest."""
        return None

    def recover(self, name: str) -> list[str]:
        """Undo what a deploy of model ``name`` killed mid-way left on the target (called under the deploy
        lock, before anything else); returns what was removed. Default: nothing to do."""
        return []

    def lock_path(self) -> Path:
        """The file whose exclusive lock serialises deploys to this target across processes.

        Default: a file per target under ``locks/`` in modelgov's state folder (``governance.config.state_dir``,
        where the outbox lives too). Targets with a folder the server
        itself reads (MLServer's repository, MLeap's bundle_dir) lock a file there, so every host that
        deploys through that shared folder takes the same lock.
        """
        key = hashlib.sha256(f"{self.kind}://{self.host_detail}".encode()).hexdigest()[:20]
        return state_dir() / "locks" / f"{self.kind}-{key}.lock"

    def verify(self, release: Release) -> list[str]:
        """Problems with what the target serves for this release (empty when it serves exactly it)."""
        return []


def confined_path(root: Path, rel: str, *, what: str = "target folder") -> Path:
    """``root / rel``, only when ``rel`` is a plain relative path (``governance.paths``) that still lies
    inside ``root`` once symbolic links are resolved; else a TargetError naming both.

    Every file a target writes (MLServer's model repository, MLeap's bundle folder) is placed through this,
    so a name or manifest entry from the registry can never put bytes anywhere else on the serving host."""
    problem = path_problem(rel)
    if problem is None:
        base = root.resolve()
        if not (root / rel).resolve().is_relative_to(base):
            problem = f"resolves outside {base}"
    if problem:
        raise TargetError(f"refusing to write {rel!r} into the {what} {root}: the path {problem}")
    return root / rel


def parse_seconds(value: str | float | None, default: float, *, option: str, uri: str) -> float:
    """A positive number of seconds from a URI option, with a clear error naming the option."""
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0:
        raise ConfigError(f"target URI {uri!r}: {option} must be a positive number of seconds, got {value!r}")
    return seconds


READY_SETTING = "set ?ready_timeout=SECONDS on the target URI for larger models"  # what a slow load's error says


def target_deadline() -> float:
    """Seconds for one target operation other than a load (a smoke request, a readiness or status query, an
    unload, one kubectl call), retries included (``MODELGOV_TARGET_DEADLINE``). A load and its readiness wait
    are one operation bounded by the target's ``ready_timeout``, since large models take minutes to load."""
    return deadline_from_env(TARGET_DEADLINE_ENV, DEFAULT_TARGET_DEADLINE)


def late(exc: BaseException, clock: Clock, operation: str, endpoint: str,
         setting: str = TARGET_DEADLINE_ENV) -> TargetDeadlineExceeded | None:
    """The deadline error for ``exc`` when it happened because ``clock`` ran out, else None (a plain failure)."""
    if isinstance(exc, OutOfTime) or clock.expired():
        return TargetDeadlineExceeded(operation, endpoint, clock.deadline, clock.waited(), setting)
    return None
