"""What a target or environment requires of a model's risk and purpose metadata before it may deploy there.

``modelgov.yaml``:

    requirements:
      risk_tier: required                     # every deploy (the default level)
      environments:
        production: {risk_tier: required, validation_status: approved}
      targets:
        mlserver-prod: {intended_use: required, limitations: required, risk_tier: [low, medium]}

A rule is ``required`` (the key must be set) or, for ``risk_tier`` and ``validation_status``, one value or a
list of the values accepted. Every level that applies to a deploy (default, its environment, its named
target) is checked, and each unmet rule is a problem naming the metadata key, what is required and which
level of modelgov.yaml requires it. The saga checks them right after validation, before anything is
written (registry, Atlas types or records), so a refused version leaves no trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from governance.errors import ConfigError, Problem, ValidationError
from governance.staging.properties import PropertiesSyntaxError, parse_properties
from governance.staging.repo import StagedRepo
from governance.staging.risk import (
    INTENDED_USE,
    LIMITATIONS,
    RISK_TIER,
    RISK_TIERS,
    VALIDATION_STATUS,
    VALIDATION_STATUSES,
)

REQUIRED = "required"
RULES = {"risk_tier": (RISK_TIER, RISK_TIERS), "validation_status": (VALIDATION_STATUS, VALIDATION_STATUSES),
         "intended_use": (INTENDED_USE, ()), "limitations": (LIMITATIONS, ())}


@dataclass(frozen=True)
class Requirement:
    """One rule of one level: ``key`` must be set, and be one of ``accepted`` when that is not empty.
    ``level`` names where it comes from (``requirements.environments.production``) and ``applies_to`` whom
    (``deploys to environment production``). Plain values: a deploy request carrying it is a flow parameter."""

    key: str
    accepted: tuple[str, ...]
    level: str
    applies_to: str


class RequirementsNotMet(ValidationError):
    """The version is valid, but its metadata does not meet what the target or environment requires."""


def parse_level(spec: object, where: str, applies_to: str) -> tuple[Requirement, ...]:
    """One level of ``requirements:`` (``where`` names it in messages, e.g. ``modelgov.yaml:
    requirements.environments.production``)."""
    if not isinstance(spec, dict) or set(spec) - set(RULES):
        raise ConfigError(f"{where}: give any of {', '.join(RULES)}, each 'required' (or, for risk_tier and "
                          "validation_status, the accepted values)")
    level = where.split(": ", 1)[-1]
    rules = []
    for name, value in spec.items():
        key, allowed = RULES[name]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"{where}.{name}: give 'required'" + (f" or one or a list of {', '.join(allowed)}"
                                                                     if allowed else "") + f", not {value!r}")
        if values == [REQUIRED]:
            rules.append(Requirement(key, (), level, applies_to))
            continue
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ConfigError(f"{where}.{name}: {', '.join(map(repr, unknown))} is not "
                              + (f"one of {', '.join(allowed)} (or 'required')" if allowed else "'required'"))
        rules.append(Requirement(key, tuple(values), level, applies_to))
    return tuple(rules)


def check_requirements(staged: StagedRepo, requirements: tuple[Requirement, ...]) -> None:
    """Raise RequirementsNotMet listing every rule the staged version does not meet (nothing when it meets
    them all)."""
    risk = staged.metadata.risk
    lines = _lines(staged.root / staged.metadata_file)
    problems = []
    for rule in requirements:
        value = risk.value(rule.key)
        source = f"{rule.level} in modelgov.yaml"
        if value is None:
            wanted = f"with {_one_of(rule.accepted)}" if rule.accepted else "it"
            problems.append(Problem(staged.metadata_file, f"{rule.key} is missing: {rule.applies_to} require "
                                                          f"{wanted} ({source})"))
        elif rule.accepted and value not in rule.accepted:
            problems.append(Problem(staged.metadata_file, f"{rule.key} is {value}: {rule.applies_to} require "
                                                          f"{_one_of(rule.accepted)} ({source})", lines.get(rule.key)))
    if problems:
        raise RequirementsNotMet(problems)


def _one_of(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else "one of " + ", ".join(values)


def _lines(path: Path) -> Mapping[str, int]:
    """Line of each key in the metadata file, for the messages (none when it cannot be read again)."""
    try:
        return {p.key: p.line for p in parse_properties(path.read_bytes().decode("utf-8", errors="replace"))}
    except (OSError, PropertiesSyntaxError):
        return {}
