"""Typed errors: every failure names the step and the thing that failed, so operators can act on it."""

from __future__ import annotations

from dataclasses import dataclass


class GovernanceError(Exception):
    """Base of every error modelgov raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a staged repo: where (file, line or key) and what."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class StagingError(GovernanceError):
    """The staged repo could not be fetched or unpacked."""


class ValidationError(GovernanceError):
    """The staged repo is not deployable; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ConfigError(GovernanceError):
    """A URI, config file or environment setting is unusable."""


class CredentialInUrl(ConfigError, StagingError):
    """A URL we would store or print carries a credential (``governance.secrets``). A usage error wherever it
    is found (exit 2), and a staging error for callers that fetch sources."""


class RegistryError(GovernanceError):
    """The model registry refused or failed an operation."""


class RegistryUnavailable(RegistryError):
    """The store could not be reached or failed on its side (connection, timeout, 5xx): worth a retry."""


class OperationTimedOut:
    """Mixin of the deadline errors: which operation, against which endpoint, under which deadline."""

    operation: str
    endpoint: str
    deadline: float
    waited: float


class RegistryDeadlineExceeded(RegistryUnavailable, OperationTimedOut):
    """An S3 or HDFS operation (retries included) did not finish within its total deadline."""

    def __init__(self, operation: str, endpoint: str, deadline: float, waited: float, setting: str):
        self.operation, self.endpoint, self.deadline, self.waited = operation, endpoint, deadline, waited
        super().__init__(f"{operation} at {endpoint}: no answer within the deadline of {deadline:g} s "
                         f"(waited {waited:.1f} s, retries included; {setting})")


class ApprovalRefused(GovernanceError):
    """A production deploy was rejected, or nobody approved it in time: nothing was deployed."""


class ImmutableVersionError(RegistryError):
    """A version already exists in the registry with different bytes."""


class IntegrityError(RegistryError):
    """Bytes read back (or streamed) do not match the recorded sha256."""


class RecordMismatch(IntegrityError):
    """A registry version (or a staged repo about to become one) differs from what Atlas recorded for that model
    name and version: the record is the reference, so nothing is published or deployed from it. ``recorded``
    is the recorded build (``governance.deploy.reference.RecordedBuild``)."""

    def __init__(self, message: str, recorded: object = None):
        self.recorded = recorded
        super().__init__(message)


class ModelIdentityTaken(GovernanceError):
    """The model's identifier or version number is already taken in this Atlas namespace by another spelling
    or another version string (``Rental Pricing`` and ``rental-pricing``; ``1.2`` and ``1.2.0``)."""


class TargetError(GovernanceError):
    """The serving target is unreachable, refused the model, or failed its smoke test."""


class TargetDeadlineExceeded(TargetError, OperationTimedOut):
    """A target operation (a load + readiness wait, a smoke request; retries included) did not finish within
    its total deadline. ``message`` replaces the default text when the target did answer, only never "ready"."""

    def __init__(self, operation: str, endpoint: str, deadline: float, waited: float, setting: str,
                 message: str | None = None):
        self.operation, self.endpoint, self.deadline, self.waited = operation, endpoint, deadline, waited
        super().__init__(message or f"{operation} at {endpoint}: no answer within the deadline of {deadline:g} s "
                                    f"(waited {waited:.1f} s, retries included; {setting})")


class AtlasError(GovernanceError):
    """Atlas answered with an error; carries Atlas's own errorCode when it sent one."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None,
                 error_message: str | None = None):
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        super().__init__(message)


class AtlasUnavailable(AtlasError):
    """Atlas could not be reached or did not answer within its deadline (retries already spent)."""

    def __init__(self, message: str, *, waited: float | None = None):
        self.waited = waited
        super().__init__(message)


class AtlasRecordPending(AtlasError):
    """Atlas could not take a record before the target was touched; it waits in the outbox, the run stops."""


class AtlasAuthError(AtlasError):
    """Bad or missing credentials (401) or not authorised (403)."""


class AtlasNotFound(AtlasError):
    """Atlas reports a missing type, entity or referenced entity."""


class AtlasConflict(AtlasError):
    """Atlas reports that the thing already exists (409)."""


class StepFailed(GovernanceError):
    """A pipeline step failed; says which step, wrapping the underlying error."""

    def __init__(self, step: str, cause: BaseException, summary: dict | None = None):
        self.step = step
        self.cause = cause
        self.summary = summary  # what was recorded about the failed run, when anything was
        super().__init__(f"{step} failed: {cause}")


class CompensationError(TargetError):
    """A failed deploy could not put the target back as it was; says what failed and what state remains.
    ``cause`` is what made the deploy fail in the first place."""

    def __init__(self, message: str, cause: BaseException | None = None):
        self.cause = cause
        super().__init__(message)


class DeployInterrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt, not an error
    """SIGTERM or SIGINT arrived during a deploy. A BaseException so that nothing swallows it on the way up;
    the deploy compensates, records the attempt as failed ("interrupted") and re-raises it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by signal {signum}")
