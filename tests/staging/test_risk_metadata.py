"""Risk and purpose keys in metadata.txt: validated like the others, every problem naming its line and key."""

from datetime import date, timedelta

import pytest

from governance.errors import ValidationError
from governance.staging.risk import RiskProfile
from governance.staging.validate import validate_repo
from tests.conftest import write_metadata
from tests.flow.test_cli import modelgov

RISK = {"model_risk_tier": "High", "model_intended_use": "rank loan applications for manual review",
        "model_limitations": "not for applicants under 18", "model_validation_status": "approved",
        "model_validation_by": "Model Risk Office", "model_validation_date": "2026-11-30"}


def problems_of(repo) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate_repo(repo)
    return [str(p) for p in info.value.problems]


def test_risk_keys_are_read_normalised_and_kept_as_written(example_repo):
    write_metadata(example_repo, **RISK)
    meta = validate_repo(example_repo).metadata
    assert meta.risk == RiskProfile("high", "rank loan applications for manual review", "not for applicants under 18",
                                    "approved", "Model Risk Office", date(2026, 11, 30))
    # the manifest keeps what the owner wrote (its digest does not depend on how we normalise)
    assert meta.extra["model.risk.tier"] == "High"


def test_no_risk_keys_is_valid(example_repo):
    assert validate_repo(example_repo).metadata.risk == RiskProfile()


def test_bad_values_name_the_line_and_key(example_repo):
    write_metadata(example_repo, model_risk_tier="critical", model_validation_status="validated",
                   model_validation_by="", model_validation_date="30/11/2026", model_limitations=" ")
    text = (example_repo / "metadata.txt").read_text().splitlines()
    line = {entry.split(" = ")[0]: number for number, entry in enumerate(text, 1)}
    problems = problems_of(example_repo)
    assert f"metadata.txt:{line['model.risk.tier']}: model.risk.tier 'critical' is not a risk tier: use one of " \
           "high, medium, low" in problems
    assert f"metadata.txt:{line['model.validation.status']}: model.validation.status 'validated' is not a " \
           "validation status: use one of pending, approved, conditional, rejected" in problems
    assert f"metadata.txt:{line['model.validation.date']}: model.validation.date '30/11/2026' is not a date: " \
           "write it as YYYY-MM-DD (e.g. 2026-11-30)" in problems
    assert f"metadata.txt:{line['model.validation.by']}: model.validation.by is empty (leave the key out when " \
           "there is nothing to say)" in problems
    assert any(p.startswith(f"metadata.txt:{line['model.limitations']}: model.limitations is empty")
               for p in problems)


@pytest.mark.parametrize("written", ["2026-11-31", "20261130", "2026-W48-1", "2026-11-30T10:00"])
def test_only_calendar_days_written_yyyy_mm_dd_are_dates(example_repo, written):
    write_metadata(example_repo, **{**RISK, "model_validation_date": written})
    assert problems_of(example_repo) == [f"metadata.txt:14: model.validation.date {written!r} is not a date: "
                                         "write it as YYYY-MM-DD (e.g. 2026-11-30)"]


def test_a_decision_needs_who_and_when_and_who_needs_a_status(example_repo):
    write_metadata(example_repo, model_validation_status="rejected")
    problems = problems_of(example_repo)
    assert "metadata.txt:9: model.validation.by is missing: model.validation.status rejected is a decision, so " \
           "say who took it and when" in problems
    assert any("model.validation.date is missing" in p for p in problems)
    write_metadata(example_repo, model_validation_by="Model Risk Office")
    assert problems_of(example_repo) == ["metadata.txt:9: model.validation.by is set without "
                                         "model.validation.status"]
    write_metadata(example_repo, model_validation_status="pending")  # nobody has decided yet: enough
    assert validate_repo(example_repo).metadata.risk.validation_status == "pending"


def test_a_validation_date_in_the_future_is_refused(example_repo):
    later = (date.today() + timedelta(days=3)).isoformat()
    write_metadata(example_repo, **{**RISK, "model_validation_date": later})
    assert problems_of(example_repo) == [f"metadata.txt:14: model.validation.date {later} is in the future"]


def test_modelgov_validate_lists_them(example_repo):
    write_metadata(example_repo, model_risk_tier="extreme")
    proc = modelgov("validate", str(example_repo))
    assert proc.returncode == 1
    assert "metadata.txt:9: model.risk.tier 'extreme' is not a risk tier: use one of high, medium, low" \
        in proc.stderr.splitlines()
