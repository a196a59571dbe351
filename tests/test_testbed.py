"""``python -m testbed SERVICE``: one JSON ready line, serve until SIGTERM, exit 0; a failed start says why."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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
