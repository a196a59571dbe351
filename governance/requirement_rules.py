"""The ``requirements:`` rules of ``modelgov.yaml``: which risk and purpose metadata a target or environment
requires (the shape and its parsing; the check against a staged repo is ``governance.staging.requirements``).

It sits below the configuration, as the trust policy's settings do, so ``governance.config`` parses the section
without reaching up into staging; the metadata keys and their accepted values are defined here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.errors import ConfigError

RISK_TIER, INTENDED_USE, LIMITATIONS = "model.risk.tier", "model.intended.use", "model.limitations"
VALIDATION_STATUS, VALIDATED_BY, VALIDATION_DATE = ("model.validation.status", "model.validation.by",
                                                    "model.validation.date")
RISK_TIERS = ("high", "medium", "low")
VALIDATION_STATUSES = ("pending", "approved", "conditional", "rejected")

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
