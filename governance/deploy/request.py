"""What an operator asked for, resolved once: names from modelgov.yaml become URIs, defaults are filled in,
and every URL is checked for credentials before anything (a flow run and its stored parameters) exists.

The CLI, ``flows.register`` deployments, workers and scheduled runs all resolve the parameters they were
given through ``resolve_request``, so a name like ``mlserver-prod`` means the same thing on every path; a
batch resolves once and derives one request per source (``for_source``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from governance.atlas.constants import DEFAULT_NAMESPACE
from governance.config import ENVIRONMENTS, Config, load_config
from governance.errors import ConfigError
from governance.requirement_rules import Requirement
from governance.secrets import refuse_credentials, refuse_urls_with_credentials
from governance.staging.limits import IntakeLimits
from governance.tls import refuse_insecure_for
from governance.trust.signing import SigningSettings, TrustSettings


@dataclass(frozen=True)
class DeployRequest:
    """Everything a deploy needs to know about *what* and *where*. Holds no secrets: Atlas, S3 and HDFS
    credentials come from the environment, and URLs carrying any are refused when the request is made.

    ``approval_required``: the target is marked production in modelgov.yaml, so deploys wait for approval
    (the ``--environment`` flag classifies the deployment; the approval policy belongs to the target)."""

    target_uri: str
    registry_uri: str
    atlas_url: str | None
    environment: str | None
    namespace: str = DEFAULT_NAMESPACE
    approval_required: bool = False
    source: str = ""
    progress: bool = False
    limits: IntakeLimits | None = None  # intake bounds and data roots of the config it was resolved from
    trust: TrustSettings | None = None  # the config's trust policy for this target and environment
    signing: SigningSettings | None = None  # the config's signing identity (MODELGOV_SIGNING_KEY wins)
    requirements: tuple[Requirement, ...] = ()  # metadata this target and environment require (modelgov.yaml)

    def for_source(self, source: str, *, progress: bool | None = None) -> DeployRequest:
        """The same settings for another staged repo (one model of a batch); its URL is checked too."""
        refuse_credentials(source, "source")
        return replace(self, source=source, progress=self.progress if progress is None else progress)


def resolve_request(source: str = "", target: str | None = None, registry: str | None = None,
                    atlas_url: str | None = None, environment: str | None = None, namespace: str | None = None,
                    config: str | Path | Config | None = None, *, progress: bool = False) -> DeployRequest:
    """Explicit values win; then modelgov.yaml (the named config, $MODELGOV_CONFIG or ./modelgov.yaml).

    ``atlas_url`` left None falls through to ``$ATLAS_URL`` in the Atlas client; the namespace defaults to
    ``modelgov``; the environment defaults to the named target's ``environment``. A ConfigError names what
    is wrong (an unknown name with the defined ones, a credential in a URL, a bad environment)."""
    refuse_credentials(source, "source")
    cfg = config if isinstance(config, Config) else load_config(config)
    named = cfg.target(target)
    if environment is not None and environment not in ENVIRONMENTS:
        raise ConfigError(f"environment must be one of {', '.join(ENVIRONMENTS)}, not {environment!r}")
    registry_uri = cfg.registry_uri(registry)
    refuse_insecure_for(environment or named.environment, cfg)
    refuse_urls_with_credentials(target=named.uri, registry=registry_uri,
                                 atlas=atlas_url or cfg.atlas_url or os.environ.get("ATLAS_URL"))
    return DeployRequest(target_uri=named.uri, registry_uri=registry_uri, atlas_url=atlas_url or cfg.atlas_url,
                         environment=environment or named.environment,
                         namespace=namespace or cfg.namespace or DEFAULT_NAMESPACE,
                         approval_required=named.environment == "production", source=source, progress=progress,
                         limits=IntakeLimits.load(cfg), trust=cfg.trust_for(target, environment or named.environment),
                         signing=cfg.signing,
                         requirements=cfg.requirements_for(target, environment or named.environment))


def resolve_run(target: str | None = None, registry: str | None = None, atlas_url: str | None = None,
                environment: str | None = None, namespace: str | None = None,
                config: str | Path | Config | None = None) -> DeployRequest:
    """The settings of a run before its sources are known (a batch): ``resolve_request`` without a source."""
    return resolve_request("", target, registry, atlas_url, environment, namespace, config)
