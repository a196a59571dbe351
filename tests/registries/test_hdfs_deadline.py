"""A namenode that accepts connections and never answers, or answers one byte at a time: every HDFS
operation gives up after ``MODELGOV_HDFS_DEADLINE`` with RegistryDeadlineExceeded naming the operation, the
namenodes and the deadline.

Before the deadline (read timeout 120 s x 3 attempts per call, a trickled answer never timing out at all)
``registry verify`` against a hung namenode held the CLI for six minutes, and a trickling one for ever."""

from __future__ import annotations

import time

import pytest

from governance.checksums import HashingReader
from governance.cli.main import main
from governance.errors import RegistryDeadlineExceeded
from governance.registries.base import Attempt
from governance.registries.hdfs import HdfsRegistry
from tests.silent_server import silent_server, trickling_server

DEADLINE = 2.0
MARGIN = 10.0


@pytest.fixture
def deadline(monkeypatch):
    monkeypatch.setenv("MODELGOV_HDFS_DEADLINE", str(DEADLINE))
    monkeypatch.setenv("MODELGOV_HDFS_USER", "modelgov")


@pytest.mark.parametrize("server", [silent_server, trickling_server], ids=["hung", "trickling"])
def test_registry_verify_through_the_cli_gives_up_at_the_deadline(deadline, server, capsys):
    with server() as namenode:
        start = time.monotonic()
        code = main(["registry", "verify", f"hdfs://127.0.0.1:{namenode.port}/models", "m", "1.0"])
        took = time.monotonic() - start
    err = capsys.readouterr().err
    assert code != 0
    assert took < MARGIN, f"took {took:.1f} s"
    assert "deadline of 2 s" in err and f"127.0.0.1:{namenode.port}" in err and "MODELGOV_HDFS_DEADLINE" in err


def test_a_lookup_raises_the_typed_error_and_attempts_stay_bounded(deadline):
    with silent_server() as namenode:
        start = time.monotonic()
        with pytest.raises(RegistryDeadlineExceeded) as info:
            HdfsRegistry(f"hdfs://127.0.0.1:{namenode.port}/models").lookup("m", "1.0")
        assert time.monotonic() - start < MARGIN
    error = info.value
    assert error.deadline == DEADLINE and "/models/m/1.0/MANIFEST.json" in error.operation
    assert namenode.accepted <= 3  # the session's retries are the one retry layer, each under the clock


def test_one_file_write_gives_up_at_the_deadline(deadline, make_staged):
    staged = make_staged(model=b"x" * 100_000)
    with silent_server() as namenode:
        registry = HdfsRegistry(f"hdfs://127.0.0.1:{namenode.port}/models")
        attempt = Attempt("iris", "1", "a1", "/models/iris/.1.tmp-a1")
        start = time.monotonic()
        with pytest.raises(RegistryDeadlineExceeded, match="write"), \
                (staged.root / staged.executable_file.path).open("rb") as raw:
            registry._put(attempt, staged.executable_file, HashingReader(raw), lambda n: None)
        assert time.monotonic() - start < MARGIN


def test_a_bad_deadline_setting_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("MODELGOV_HDFS_DEADLINE", "0")
    assert main(["registry", "verify", "hdfs://127.0.0.1:1/models", "m", "1.0"]) == 2
    assert "MODELGOV_HDFS_DEADLINE" in capsys.readouterr().err
