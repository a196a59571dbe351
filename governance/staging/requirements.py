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
from pathlib import Path

from governance.errors import Problem, ValidationError
from governance.requirement_rules import Requirement
from governance.staging.properties import PropertiesSyntaxError, parse_properties
from governance.staging.repo import StagedRepo


class RequirementsNotMet(ValidationError):
    """The version is valid, but its metadata does not meet what the target or environment requires."""



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
