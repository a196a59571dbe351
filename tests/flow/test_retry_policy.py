"""Which failures the flow retries: only those that may pass (service errors), never refusals."""

from types import SimpleNamespace

import pytest

from flows.deploy_model import _transient
from governance.errors import (
    AtlasAuthError,
    AtlasError,
    AtlasNotFound,
    ImmutableVersionError,
    IntegrityError,
    RegistryError,
    RegistryUnavailable,
    TargetError,
)


def state_raising(exc: Exception):
    def result():
        raise exc
    return SimpleNamespace(result=result)


@pytest.mark.parametrize(("error", "retried"), [
    (RegistryUnavailable("S3 write failed: InternalError"), True),
    (RegistryError("bucket 'x' does not exist"), False),
    (ImmutableVersionError("exists with different content"), False),
    (IntegrityError("changed after validation"), False),
    (AtlasError("not reachable"), True),
    (AtlasError("HTTP 503", status=503), True),
    (AtlasNotFound("ATLAS-404-00-007", status=404), False),
    (AtlasAuthError("HTTP 401", status=401), False),
    (TargetError("failed to load"), False),
])
def test_only_transient_errors_are_retried(error, retried):
    assert _transient(None, None, state_raising(error)) is retried
