"""``python -m testbed kdc``: a real MIT KDC whose ready line gives the realm, krb5.conf and keytabs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_testbed_kdc_ready_line_gives_a_working_realm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "kdc", "--workdir", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["realm"] == "MODELGOV.TEST" and os.path.isfile(info["krb5_conf"])
        keytab = info["principals"]["alice@MODELGOV.TEST"]
        assert "HTTP/localhost@MODELGOV.TEST" in info["principals"]
        assert oct(os.stat(keytab).st_mode & 0o777) == "0o600"
        env = {"KRB5_CONFIG": info["krb5_conf"], "PATH": "/usr/bin:/bin"}
        cache = f"FILE:{tmp_path}/cc"
        kinit = subprocess.run(["kinit", "-k", "-t", keytab, "-c", cache, "alice@MODELGOV.TEST"], env=env,
                               capture_output=True, text=True)
        assert kinit.returncode == 0, kinit.stderr
        klist = subprocess.run(["klist", "-c", cache], env=env, capture_output=True, text=True)
        assert "krbtgt/MODELGOV.TEST@MODELGOV.TEST" in klist.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    kinit = subprocess.run(["kinit", "-k", "-t", keytab, "-c", cache, "alice@MODELGOV.TEST"], env=env,
                           capture_output=True, text=True)
    assert kinit.returncode != 0  # the KDC stopped with the service
