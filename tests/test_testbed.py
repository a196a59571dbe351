"""``python -m testbed SERVICE``: one JSON ready line, serve until SIGTERM, exit 0; a failed start says why."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def start(service: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "testbed", service, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("service,probe,answer", [
    ("atlas-emulator", "/api/atlas/admin/status", 200),
    ("webhdfs-emulator", "/webhdfs/v1/?op=GETFILESTATUS&user.name=x", 200),
    ("mleap-classic-emulator", "/model", 500),  # MLeap's own answer while no model is loaded
])
def test_stand_in_prints_one_ready_line_serves_and_stops_on_sigterm(service, probe, answer, tmp_path):
    proc = start(service, "--workdir", str(tmp_path))
    try:
        info = json.loads(proc.stdout.readline())
        assert info["service"] == service and info["pid"] > 0
        assert requests.get(info["url"] + probe, timeout=5, auth=("admin", "admin")).status_code == answer
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert proc.stdout.read() == ""  # exactly one line
        with pytest.raises(requests.ConnectionError):
            requests.get(info["url"] + probe, timeout=2)
    finally:
        proc.kill()


def test_port_taken_exits_non_zero_with_the_reason(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = start("atlas-emulator", "--port", str(port), "--workdir", str(tmp_path))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and out == ""
    assert f"port 127.0.0.1:{port} is taken" in err


def test_unknown_service_is_a_usage_error():
    proc = start("nonesuch")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "nonesuch" in err


@pytest.mark.slow
def test_sigterm_during_a_slow_start_stops_what_it_started(tmp_path):
    """Atlas takes minutes to start; a SIGTERM meanwhile must not leave its JVM behind."""
    proc = start("atlas", "--workdir", str(tmp_path))
    try:
        pid_file = tmp_path / "atlas.pid"
        deadline = time.monotonic() + 600  # the first run downloads the war
        while not pid_file.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert pid_file.exists(), proc.stderr.read() if proc.poll() is not None else "no JVM started"
        java_pid = int(pid_file.read_text())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 1 and out == ""
        assert "stopped by SIGTERM before it was ready" in err
        with pytest.raises(ProcessLookupError):
            os.kill(java_pid, 0)
    finally:
        proc.kill()


@pytest.mark.slow
def test_real_hdfs_ready_line_webhdfs_and_sigterm(tmp_path):
    """``python -m testbed hdfs``: a real NameNode + DataNode, /registry for the registry user, WebHDFS on."""
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "hdfs", "--workdir", str(tmp_path)], cwd=ROOT,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "MODELGOV_HDFS_USER": "ops"})
    try:
        info = json.loads(proc.stdout.readline())
        assert info["service"] == "hdfs" and info["pid"] > 0 and info["registry_user"] == "ops"
        port = int(info["url"].rsplit(":", 1)[1])
        assert info["registry_uri"] == f"hdfs://127.0.0.1:{port}/registry"
        assert info["rpc_port"] > 0 and info["rpc_port"] != port
        status = requests.get(f"{info['url']}/webhdfs/v1/registry?op=GETFILESTATUS&user.name=ops",
                              timeout=10).json()["FileStatus"]
        assert (status["owner"], status["permission"], status["type"]) == ("ops", "755", "DIRECTORY")
        denied = requests.put(f"{info['url']}/webhdfs/v1/elsewhere?op=MKDIRS&user.name=ops", timeout=10)
        assert denied.status_code == 403 and "AccessControlException" in denied.text  # permissions are on
        with socket.create_connection(("127.0.0.1", info["rpc_port"]), timeout=5):
            pass  # the NameNode's RPC port answers too
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == ""
        with pytest.raises(requests.ConnectionError):
            requests.get(info["url"], timeout=2)
    finally:
        proc.kill()


TINY_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>modelgov.test</groupId><artifactId>tiny</artifactId><version>1</version>
<dependencies><dependency><groupId>org.hamcrest</groupId><artifactId>hamcrest-core</artifactId>
<version>1.3</version></dependency></dependencies></project>
"""


@pytest.mark.slow
def test_two_processes_fetching_the_same_jars_at_once_both_get_them(tmp_path):
    """The plain and the secured real Atlas start together in a test session: on a fresh machine both fetched the
    same war into the same .partial folder and both failed (BadZipFile, a Maven error). Now one fetches, the
    other waits for it and uses the same complete folder."""
    pom = tmp_path / "tiny.xml"
    pom.write_text(TINY_POM)
    code = ("import sys; from pathlib import Path; from testbed import maven; "
            "print(maven.fetch_jars(Path(sys.argv[1])))")
    env = {**os.environ, "MODELGOV_TESTBED_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(pom)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-800:] for _, err in results]
    folders = {out.strip() for out, _ in results}
    assert len(folders) == 1
    [folder] = folders
    assert sorted(p.name for p in Path(folder).iterdir()) == [".complete", "hamcrest-core-1.3.jar"]
