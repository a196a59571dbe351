"""Risk and purpose metadata: what a model inventory (SR 11-7) and a model card ask of every model version.

Optional ``metadata.txt`` keys, checked here with the other keys at validation:

    model.risk.tier          high | medium | low
    model.intended.use       free text: what the model is for, and for whom
    model.limitations        free text: where it must not be relied on
    model.validation.status  pending | approved | conditional | rejected
    model.validation.by      who validated it (required once the status is a decision)
    model.validation.date    YYYY-MM-DD, when it was decided (idem)

They stay in ``ModelMetadata.extra`` exactly as written (so a registry manifest, and its content digest, is
the same as before these keys were known); ``RiskProfile.of`` reads them back normalised (lowercase tier and
status). Whether a target or environment *requires* them is ``governance.staging.requirements``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from governance.errors import Problem
from governance.requirement_rules import (  # noqa: F401 - the keys and values, defined once beside the rules
    INTENDED_USE,
    LIMITATIONS,
    RISK_TIER,
    RISK_TIERS,
    VALIDATED_BY,
    VALIDATION_DATE,
    VALIDATION_STATUS,
    VALIDATION_STATUSES,
)

RISK_KEYS = (RISK_TIER, INTENDED_USE, LIMITATIONS, VALIDATION_STATUS, VALIDATED_BY, VALIDATION_DATE)
DECIDED = ("approved", "conditional", "rejected")  # a decision names who took it and when
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


@dataclass(frozen=True)
class RiskProfile:
    """The risk and purpose keys of one model version, normalised; None where the owner gave none."""

    risk_tier: str | None = None
    intended_use: str | None = None
    limitations: str | None = None
    validation_status: str | None = None
    validated_by: str | None = None
    validation_date: date | None = None

    @classmethod
    def of(cls, extra: Mapping[str, str]) -> RiskProfile:
        """From ``ModelMetadata.extra`` (validated keys; a manifest written before validation knew them may
        hold anything, so an unreadable date is left out rather than failing a rollback)."""
        def text(key: str) -> str | None:
            return (extra.get(key) or "").strip() or None

        tier, status, when = text(RISK_TIER), text(VALIDATION_STATUS), text(VALIDATION_DATE)
        try:
            day = date.fromisoformat(when) if when else None
        except ValueError:
            day = None
        return cls(tier.lower() if tier else None, text(INTENDED_USE), text(LIMITATIONS),
                   status.lower() if status else None, text(VALIDATED_BY), day)

    def value(self, key: str) -> str | None:
        """The normalised value of one metadata key, as text (the date as YYYY-MM-DD)."""
        values = {RISK_TIER: self.risk_tier, INTENDED_USE: self.intended_use, LIMITATIONS: self.limitations,
                  VALIDATION_STATUS: self.validation_status, VALIDATED_BY: self.validated_by,
                  VALIDATION_DATE: self.validation_date.isoformat() if self.validation_date else None}
        return values[key]


def check_risk_keys(values: Mapping[str, tuple[str, int]], filename: str, *,
                    today: date | None = None) -> list[Problem]:
    """Every problem with the risk and purpose keys; ``values`` maps a key to (value, line) as written."""
    problems: list[Problem] = []

    def given(key: str) -> str | None:
        return values[key][0].strip() if key in values else None

    def problem(key: str, message: str) -> None:
        problems.append(Problem(filename, f"{key} {message}", values[key][1] if key in values else None))

    for key in RISK_KEYS:
        if key in values and not given(key):
            problem(key, "is empty (leave the key out when there is nothing to say)")
    tier = given(RISK_TIER)
    if tier and tier.lower() not in RISK_TIERS:
        problem(RISK_TIER, f"{tier!r} is not a risk tier: use one of {', '.join(RISK_TIERS)}")
    status = given(VALIDATION_STATUS)
    if status and status.lower() not in VALIDATION_STATUSES:
        problem(VALIDATION_STATUS, f"{status!r} is not a validation status: use one of "
                                   f"{', '.join(VALIDATION_STATUSES)}")
    when = given(VALIDATION_DATE)
    if when:
        try:
            day = date.fromisoformat(when) if _DAY.fullmatch(when) else None  # not 20261130 or 2026-W48-1
        except ValueError:
            day = None
        if day is None:
            problem(VALIDATION_DATE, f"{when!r} is not a date: write it as YYYY-MM-DD (e.g. 2026-11-30)")
        elif (day - (today or date.today())).days > 1:  # a day's grace for time zones
            problem(VALIDATION_DATE, f"{when} is in the future")
    for key in (VALIDATED_BY, VALIDATION_DATE):
        if given(key) and not status:
            problem(key, f"is set without {VALIDATION_STATUS}")
    if status and status.lower() in DECIDED:
        for key in (VALIDATED_BY, VALIDATION_DATE):
            if key not in values:
                problems.append(Problem(filename, f"{key} is missing: {VALIDATION_STATUS} {status.lower()} is a "
                                                  "decision, so say who took it and when",
                                        values[VALIDATION_STATUS][1]))
    return problems
