"""kill -9 in the middle of a copy, then a rerun: the version ends complete and verified, and gc removes
what the killed publisher left (temp folders, S3 attempt objects and its unfinished multipart upload)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from governance.cli import main
from tests.conftest import ROOT

MiB = 1024 * 1024


def test_kill_9_mid_copy_then_rerun_converges(backend, make_staged, capsys):
    big = os.urandom(MiB) * 20  # 20 MiB: several chunks (file, HDFS) and three multipart parts (S3)
    staged = make_staged(model=big)
    child = subprocess.Popen([sys.executable, "-m", "tests.registries.publish_child", backend.registry.uri,
                              str(staged.root)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "MID-COPY"
        assert backend.list_raw() != []  # the copy had started: something is on the store
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert backend.registry.lookup("iris", "1") is None  # a killed publish is never a version
    assert main(["registry", "verify", backend.registry.uri, "iris", "1"]) == 1

    version = backend.registry.publish(staged)  # the rerun
    assert version.created
    assert main(["registry", "verify", backend.registry.uri, "iris", "1"]) == 0

    leftovers = backend.registry.gc(older_than=timedelta(0), dry_run=True)
    assert leftovers, "the killed publisher's attempt should be listed"
    assert main(["registry", "gc", backend.registry.uri, "--older-than", "0"]) == 0
    assert backend.registry.gc(older_than=timedelta(0), dry_run=True) == []
    data = f"iris/1/{version.manifest.data_dir}/" if version.manifest.data_dir else "iris/1/"
    assert backend.list_raw() == sorted([f"{data}{f.path}" for f in staged.files] + ["iris/1/MANIFEST.json"])
    assert main(["registry", "verify", backend.registry.uri, "iris", "1"]) == 0
    assert Path(staged.root).is_dir()
