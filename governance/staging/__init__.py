"""The staged model repository: fetch it, parse its metadata, validate it into a frozen StagedRepo."""

from governance.staging.metadata import ModelMetadata
from governance.staging.repo import StagedRepo

__all__ = ["ModelMetadata", "StagedRepo"]
