"""An S3 endpoint that accepts connections and never answers: every S3 operation gives up after
``MODELGOV_S3_DEADLINE`` with RegistryDeadlineExceeded naming the operation, the endpoint and the deadline.

Before the deadline (read_timeout 60 s x 4 attempts) ``registry verify`` held the CLI for about four minutes."""

from __future__ import annotations

import time

import pytest

from governance.checksums import HashingReader
from governance.cli.main import main
from governance.errors import RegistryDeadlineExceeded
from governance.registries.s3 import S3Registry
from tests.silent_server import silent_server

DEADLINE = 2.0
MARGIN = 10.0
MiB = 1024 * 1024


@pytest.fixture
def hung_s3(monkeypatch):
    with silent_server() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("MODELGOV_S3_DEADLINE", str(DEADLINE))
        yield server


def test_registry_verify_through_the_cli_gives_up_at_the_deadline(hung_s3, capsys):
    start = time.monotonic()
    code = main(["registry", "verify", "s3://bucket/x", "m", "1.0"])
    took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code != 0
    assert took < MARGIN, f"took {took:.1f} s"
    assert "deadline of 2 s" in err and hung_s3.url in err and "MODELGOV_S3_DEADLINE" in err


def test_a_lookup_raises_the_typed_error_naming_operation_endpoint_and_deadline(hung_s3):
    start = time.monotonic()
    with pytest.raises(RegistryDeadlineExceeded) as info:
        S3Registry("s3://bucket/x").lookup("m", "1.0")
    assert time.monotonic() - start < MARGIN
    error = info.value
    assert error.deadline == DEADLINE and error.endpoint == hung_s3.url
    assert "s3://bucket/x/m/1.0/MANIFEST.json" in error.operation
    assert hung_s3.accepted <= 3  # botocore's attempts are the one retry layer, bounded


@pytest.mark.parametrize("size", [1000, 9 * MiB], ids=["single-put", "multipart"])
def test_one_file_put_gives_up_at_the_deadline(hung_s3, make_staged, size):
    staged = make_staged(model=b"x" * size)
    registry = S3Registry("s3://bucket/x")
    attempt = registry._begin("iris", "1")
    start = time.monotonic()
    with pytest.raises(RegistryDeadlineExceeded, match="upload to"), \
            (staged.root / staged.executable_file.path).open("rb") as raw:
        registry._put(attempt, staged.executable_file, HashingReader(raw), lambda n: None)
    assert time.monotonic() - start < MARGIN


def test_a_bad_deadline_setting_is_a_usage_error(hung_s3, monkeypatch, capsys):
    monkeypatch.setenv("MODELGOV_S3_DEADLINE", "soon")
    assert main(["registry", "verify", "s3://bucket/x", "m", "1.0"]) == 2
    assert "MODELGOV_S3_DEADLINE" in capsys.readouterr().err
