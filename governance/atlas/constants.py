"""The names modelgov's Atlas records use: type names, classifications, the default namespace, and Atlas's
date encoding. Writers (``governance.deploy``) and readers (``governance.compliance``) share them here, so
neither has to import the other to agree on what a deployment entity is called."""

from __future__ import annotations

from datetime import UTC, datetime

BUILD_TYPE = "modelgov_model_build"
DEPLOYMENT_TYPE = "modelgov_model_deployment"
DEPLOY_PROCESS_TYPE = "modelgov_deploy_process"
TRAIN_PROCESS_TYPE = "modelgov_train_build_process"
DATASET_TYPE = "modelgov_dataset"
SCORING_RUN_TYPE = "modelgov_scoring_run"
UNGOVERNED_TYPE = "modelgov_ungoverned_model"
PROJECT_TYPE = "ml_project"
DEFAULT_NAMESPACE = "modelgov"

SENSITIVE_CLASSIFICATION = "modelgov_sensitive_data"
ENVIRONMENT_CLASSIFICATIONS = {"production": "modelgov_production", "staging": "modelgov_staging"}


def millis(moment: datetime) -> int:
    """Atlas stores dates as epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def iso_from_millis(value: int | None) -> str | None:
    """Atlas returns dates as epoch millis; people read ISO-8601 UTC."""
    if value in (None, "", 0):
        return None
    return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat(timespec="seconds")
