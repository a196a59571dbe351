"""``modelgov.yaml``: named registries and targets, Atlas location, defaults. Secrets never live in it.

    atlas:
      url: https://atlas.corp.example:21443
      namespace: prod                       # suffix of every qualifiedName (like Atlas's @cluster)
    registries:
      models-s3: s3://ml-registry/models
      models-hdfs: hdfs://nn1.corp:9870,nn2.corp:9870/registry
    targets:
      mlserver-prod:
        uri: mlserver://mlserver.corp:8080?repository=/mnt/models&public_url=https://models.corp/mlserver
        environment: production
      kserve-staging: kserve://models?context=staging
    defaults:
      registry: models-s3
      target: mlserver-prod
    mlflow:
      tags:                                 # metadata key -> MLflow tag (default: the same name)
        model.owner: owner
    requirements:                           # risk and purpose metadata a deploy needs (staging.requirements)
      environments:
        production: {risk_tier: required, validation_status: approved}

``${VAR}`` in a value is read from the environment when the config is used. Credentials come from the
environment (ATLAS_USERNAME/ATLAS_PASSWORD or ATLAS_TOKEN, AWS_*, kubeconfig); a config that contains a
password, secret or token key is refused, so secrets cannot end up in a file that gets committed.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from governance.errors import ConfigError
from governance.requirement_rules import Requirement, parse_level
from governance.trust.signing import SigningSettings, TrustSettings

DEFAULT_FILE = "modelgov.yaml"
SECRET_KEY = re.compile(r"(password|secret|token|credential|access_key)", re.IGNORECASE)
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENVIRONMENTS = ("production", "staging")
STATE_ENV = "MODELGOV_STATE_DIR"


@dataclass(frozen=True)
class NamedTarget:
    uri: str
    environment: str | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    atlas_url: str | None = None
    namespace: str | None = None
    registries: dict[str, str] = field(default_factory=dict)
    targets: dict[str, NamedTarget] = field(default_factory=dict)
    default_registry: str | None = None
    default_target: str | None = None
    mlflow_tags: dict[str, str] = field(default_factory=dict)  # metadata key -> MLflow tag name
    state_dir: str | None = None  # local state (the Atlas outbox); MODELGOV_STATE_DIR wins
    limits: dict[str, object] = field(default_factory=dict)  # intake bounds (governance.staging.limits)
    data_roots: tuple[str, ...] = ()  # folders local training data may be read from (ditto)
    trust: dict = field(default_factory=dict)  # the trust policy's levels (_parse_trust), keys resolved
    signing: SigningSettings | None = None  # what signs this host's publishes (governance.trust.signing)
    requirements: dict = field(default_factory=dict)  # metadata required per level (_parse_requirements)
    tls: dict = field(default_factory=dict)  # ca_bundle (path), insecure (bool): governance.tls
    kerberos: dict = field(default_factory=dict)  # principal, keytab (paths only): governance.kerberos

    def target_name(self, target: str | None) -> str | None:
        """The name in ``targets:`` of ``target`` (a name or a URI; None: the default target), if it has one."""
        chosen = target if target is not None else self.default_target
        return chosen if chosen in self.targets else next(
            (n for n, t in self.targets.items() if chosen and t.uri == chosen), None)

    def requirements_for(self, target: str | None, environment: str | None) -> tuple[Requirement, ...]:
        """What a deploy to ``target`` in ``environment`` requires of the model's risk and purpose metadata:
        the rules of the default, the environment's and the target's levels, all of them checked
        (``governance.staging.requirements``)."""
        levels = self.requirements
        return (*levels.get("default", ()), *(levels.get("environments") or {}).get(environment, ()),
                *(levels.get("targets") or {}).get(self.target_name(target), ()))

    def trust_for(self, target: str | None, environment: str | None) -> TrustSettings:
        """The trust policy of a deploy to ``target`` (a name or a URI) in ``environment``: the keys of the
        default, the environment's and the target's levels, and a signature required when any level
        requires one (the stricter wins)."""
        name = self.target_name(target)
        levels = [self.trust.get("default") or {}, (self.trust.get("environments") or {}).get(environment) or {},
                  (self.trust.get("targets") or {}).get(name) or {}]
        def joined(key: str) -> tuple[str, ...]:
            return tuple(dict.fromkeys(v for level in levels for v in level.get(key, ())))

        return TrustSettings(joined("trusted_keys"), any(level.get("require_signature") for level in levels),
                             joined("trusted_cas"), joined("identities"), joined("approvers"),
                             joined("approver_cas"), joined("approver_identities"))

    def registry_uri(self, name_or_uri: str | None) -> str:
        chosen = name_or_uri or self.default_registry
        if not chosen:
            raise ConfigError("no registry given: pass --registry URI or set defaults.registry in modelgov.yaml")
        if "://" in chosen:
            return _expand(chosen, "registry")
        if chosen not in self.registries:
            raise ConfigError(f"registry {chosen!r} is not defined in {self.path or DEFAULT_FILE} "
                              f"(defined: {', '.join(sorted(self.registries)) or 'none'})")
        return _expand(self.registries[chosen], f"registries.{chosen}")

    def target(self, name_or_uri: str | None) -> NamedTarget:
        chosen = name_or_uri or self.default_target
        if not chosen:
            raise ConfigError("no target given: pass --target URI or set defaults.target in modelgov.yaml")
        if "://" in chosen:
            return NamedTarget(_expand(chosen, "target"))
        if chosen not in self.targets:
            raise ConfigError(f"target {chosen!r} is not defined in {self.path or DEFAULT_FILE} "
                              f"(defined: {', '.join(sorted(self.targets)) or 'none'})")
        named = self.targets[chosen]
        return NamedTarget(_expand(named.uri, f"targets.{chosen}.uri"), named.environment)


def _expand(value: str, where: str) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return ENV_REF.sub(replace, value)


def _check_no_secrets(node: object, path: str, source: Path) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if SECRET_KEY.search(str(key)):
                raise ConfigError(f"{source}: {path}{key}: secrets do not belong in modelgov.yaml; "
                                  "set them in the environment (e.g. ATLAS_PASSWORD, AWS_SECRET_ACCESS_KEY)")
            _check_no_secrets(value, f"{path}{key}.", source)


def load_config(path: str | Path | None = None) -> Config:
    """Read the config named, or $MODELGOV_CONFIG, or ./modelgov.yaml; an empty Config when none exists."""
    explicit = path or os.environ.get("MODELGOV_CONFIG")
    file = Path(explicit) if explicit else Path(DEFAULT_FILE)
    if not file.is_file():
        if explicit:
            raise ConfigError(f"{file}: config file not found")
        return Config()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    _check_no_secrets(data, "", file)
    unknown = set(data) - {"atlas", "registries", "targets", "defaults", "mlflow", "state_dir", "limits",
                           "data_roots", "trust", "signing", "requirements", "tls", "kerberos"}
    if unknown:
        raise ConfigError(f"{file}: unknown section(s) {', '.join(sorted(unknown))}")
    atlas = data.get("atlas") or {}
    targets: dict[str, NamedTarget] = {}
    for name, spec in (data.get("targets") or {}).items():
        if isinstance(spec, str):
            spec = {"uri": spec}
        if not isinstance(spec, dict) or "uri" not in spec:
            raise ConfigError(f"{file}: targets.{name} needs a uri")
        env = spec.get("environment")
        if env is not None and env not in ENVIRONMENTS:
            raise ConfigError(f"{file}: targets.{name}.environment must be one of {', '.join(ENVIRONMENTS)}")
        targets[str(name)] = NamedTarget(str(spec["uri"]), env)
    defaults = data.get("defaults") or {}
    mlflow_tags = (data.get("mlflow") or {}).get("tags") or {}
    if not isinstance(mlflow_tags, dict) or not all(str(k).startswith("model.") for k in mlflow_tags):
        raise ConfigError(f"{file}: mlflow.tags maps metadata keys (model.owner, ...) to MLflow tag names")
    limits = data.get("limits") or {}
    if not isinstance(limits, dict):
        raise ConfigError(f"{file}: limits maps a limit name to its value (max_extracted_bytes: 20GiB, ...)")
    roots = data.get("data_roots") or []
    if isinstance(roots, str):
        roots = [roots]
    if not isinstance(roots, list):
        raise ConfigError(f"{file}: data_roots is a list of absolute folders")
    return Config(path=file, atlas_url=_expand(atlas["url"], "atlas.url") if atlas.get("url") else None,
                  namespace=atlas.get("namespace"),
                  registries={str(k): str(v) for k, v in (data.get("registries") or {}).items()},
                  targets=targets, default_registry=defaults.get("registry"), default_target=defaults.get("target"),
                  mlflow_tags={str(k): str(v) for k, v in mlflow_tags.items()},
                  state_dir=_expand(str(data["state_dir"]), "state_dir") if data.get("state_dir") else None,
                  limits={str(k): v for k, v in limits.items()},
                  data_roots=tuple(_expand(str(r), "data_roots") for r in roots),
                  trust=_parse_trust(data.get("trust"), file, set(targets)),
                  signing=_parse_signing(data.get("signing"), file),
                  requirements=_parse_requirements(data.get("requirements"), file, set(targets)),
                  tls=_parse_section(data.get("tls"), file, "tls", {"ca_bundle": str, "insecure": bool}),
                  kerberos=_parse_section(data.get("kerberos"), file, "kerberos",
                                          {"principal": str, "keytab": str, "ccache": str}))


def _parse_section(node: object, file: Path, name: str, keys: dict[str, type]) -> dict:
    """A flat section of known keys and types; string values may use ``${VAR}``, paths relative to the file."""
    if node is None:
        return {}
    if not isinstance(node, dict) or set(node) - set(keys):
        raise ConfigError(f"{file}: {name} takes only {', '.join(keys)}")
    out: dict = {}
    for key, value in node.items():
        if not isinstance(value, keys[key]):
            raise ConfigError(f"{file}: {name}.{key} must be a {keys[key].__name__}")
        if isinstance(value, str):
            value = _expand(value, f"{name}.{key}")
            if key in ("ca_bundle", "keytab"):
                value = str((file.parent / value).resolve())
        out[key] = value
    return out


def _parse_requirements(section: object, file: Path, target_names: set[str]) -> dict:
    """``requirements:``: rules of the default level and per-environment and per-target levels
    (``governance.staging.requirements``)."""
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{file}: requirements maps rules (risk_tier: required, ...), environments and targets")
    environments, targets = section.get("environments") or {}, section.get("targets") or {}
    if not isinstance(environments, dict) or not isinstance(targets, dict):
        raise ConfigError(f"{file}: requirements.environments and requirements.targets map a name to its rules")
    default = {k: v for k, v in section.items() if k not in ("environments", "targets")}
    out: dict = {"default": parse_level(default, f"{file}: requirements", "all deploys"),
                 "environments": {}, "targets": {}}
    for env, spec in environments.items():
        if env not in ENVIRONMENTS:
            raise ConfigError(f"{file}: requirements.environments.{env}: environments are {', '.join(ENVIRONMENTS)}")
        out["environments"][env] = parse_level(spec, f"{file}: requirements.environments.{env}",
                                               f"deploys to {env}")
    for name, spec in targets.items():
        if name not in target_names:
            raise ConfigError(f"{file}: requirements.targets.{name} names no target in targets:")
        out["targets"][name] = parse_level(spec, f"{file}: requirements.targets.{name}", f"deploys to target {name}")
    return out


def _parse_signing(section: object, file: Path) -> SigningSettings | None:
    """``signing: {key: PATH, certificate: PATH, chain: [PATH]}``, paths relative to the config file."""
    if section is None:
        return None
    if not isinstance(section, dict) or not isinstance(section.get("key"), str) or \
            set(section) - {"key", "certificate", "chain"}:
        raise ConfigError(f"{file}: signing needs key (a private key file), and may name certificate and chain; "
                          "the key's password goes in MODELGOV_SIGNING_KEY_PASSWORD")
    base = file.parent.resolve()
    chain = _paths(section, "chain", f"{file}: signing", "a list of certificate files", base)
    cert = section.get("certificate")
    if cert is not None and not isinstance(cert, str):
        raise ConfigError(f"{file}: signing.certificate: a certificate file")
    return SigningSettings(str(base / Path(section["key"]).expanduser()),
                           str(base / Path(cert).expanduser()) if cert else None,
                           chain)


def _strings(spec: dict, key: str, where: str, what: str) -> tuple[str, ...]:
    """``spec[key]``: one string or a list of them (none when absent); a ConfigError naming the field else."""
    value = spec.get(key) or []
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key}: {what}")
    return tuple(value)


def _paths(spec: dict, key: str, where: str, what: str, base: Path) -> tuple[str, ...]:
    """``_strings`` as files relative to ``base`` (the config file's folder)."""
    return tuple(str(base / Path(v).expanduser()) for v in _strings(spec, key, where, what))


TRUST_LEVEL_KEYS = ("trusted_keys", "require_signature", "trusted_cas", "identities", "approvers", "approver_cas",
                    "approver_identities")


def _trust_level(spec: object, where: str, base: Path) -> dict:
    if not isinstance(spec, dict) or set(spec) - set(TRUST_LEVEL_KEYS):
        raise ConfigError(f"{where}: give trusted_keys (public key files), trusted_cas (root certificates) with "
                          "identities (leaf subjects or sha256: fingerprints), require_signature (true/false), "
                          "approvers (public key files), approver_cas with approver_identities")
    keys = _paths(spec, "trusted_keys", where, "a list of public key files", base)
    required = spec.get("require_signature", False)
    if not isinstance(required, bool):
        raise ConfigError(f"{where}.require_signature: true or false")
    return {"trusted_keys": keys, "require_signature": required,
            "trusted_cas": _paths(spec, "trusted_cas", where, "a list of strings", base),
            "identities": _strings(spec, "identities", where, "a list of strings"),
            "approvers": _paths(spec, "approvers", where, "a list of strings", base),
            "approver_cas": _paths(spec, "approver_cas", where, "a list of strings", base),
            "approver_identities": _strings(spec, "approver_identities", where, "a list of strings")}


def _parse_trust(section: object, file: Path, target_names: set[str]) -> dict:
    """``trust:``: a default level (trusted_keys, require_signature) and per-environment and per-target levels;
    key files relative to the config file's folder."""
    if section is None:
        return {}
    level_keys = TRUST_LEVEL_KEYS
    if not isinstance(section, dict) or set(section) - {*level_keys, "environments", "targets"}:
        raise ConfigError(f"{file}: trust has {', '.join(level_keys)}, environments and targets")
    base = file.parent.resolve()
    default = {k: v for k, v in section.items() if k in level_keys}
    out: dict = {"default": _trust_level(default, f"{file}: trust", base), "environments": {}, "targets": {}}
    for env, spec in (section.get("environments") or {}).items():
        if env not in ENVIRONMENTS:
            raise ConfigError(f"{file}: trust.environments.{env}: environments are {', '.join(ENVIRONMENTS)}")
        out["environments"][env] = _trust_level(spec, f"{file}: trust.environments.{env}", base)
    for name, spec in (section.get("targets") or {}).items():
        if name not in target_names:
            raise ConfigError(f"{file}: trust.targets.{name} names no target in targets:")
        out["targets"][name] = _trust_level(spec, f"{file}: trust.targets.{name}", base)
    return out


def state_dir() -> Path:
    """The one folder of modelgov's local state (the Atlas outbox, the target deploy locks):
    ``MODELGOV_STATE_DIR``, else ``state_dir`` in modelgov.yaml, else ``~/.modelgov``."""
    configured = os.environ.get(STATE_ENV)
    if not configured:
        with contextlib.suppress(ConfigError, OSError):
            configured = load_config(None).state_dir
    return Path(configured or Path.home() / ".modelgov").expanduser()
