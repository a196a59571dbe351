"""A throw-away single-node Ceph cluster (mon + memstore osd + radosgw) on loopback: a real S3 server.

Follows the recipe of §5.3 in the reference notes, including the ``--ms-*-mode "crc secure"`` flags
without which radosgw loops on ``get_initial_auth_request returned -13``. No ceph-mgr is needed.

    cluster = RadosgwCluster(memstore_bytes=1 << 30); cluster.start()
    cluster.endpoint_url, cluster.access_key, cluster.secret_key
    cluster.stop()      # rgw, then osd, then mon; SIGKILL after a grace period

CLI for demos and CI: ``python -m emulators.radosgw start --state FILE`` (prints shell exports, leaves the
daemons running) and ``python -m emulators.radosgw stop --state FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import requests

BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")
INSTALL_HINT = "apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd"
MS_FLAGS = [arg for flag in ("mon-client", "client", "mon-service", "service", "cluster", "mon-cluster")
            for arg in (f"--ms-{flag}-mode", "crc secure")]
GRACE = 10.0


class RadosgwError(RuntimeError):
    """The cluster could not be set up; the message includes the tail of the relevant daemon log."""


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_pid(pid: int, timeout: float) -> bool:
    """True once ``pid`` is gone (reaped if it is our child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:  # not our child: poll for existence
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
        time.sleep(0.1)
    return False


def stop_pid(pid: int, grace: float = GRACE) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds (the osd ignores SIGTERM once the mon is gone)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_pid(pid, wait):
            return


class RadosgwCluster:
    """mon, osd (memstore) and radosgw bound to 127.0.0.1 on free ports, with one S3 user."""

    def __init__(self, workdir: str | Path | None = None, *, memstore_bytes: int = 1 << 30,
                 access_key: str | None = None, secret_key: str | None = None, keep_dir: bool = False,
                 tls: tuple[Path, Path] | None = None):
        self._own_dir = workdir is None
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="modelgov-ceph-"))
        self.memstore_bytes = memstore_bytes
        self.access_key = access_key or "MODELGOV" + secrets.token_hex(6).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.keep_dir = keep_dir
        self.rgw_port = 0
        self.tls = tls  # (certificate PEM, private key PEM) of an HTTPS endpoint beside the HTTP one
        self.tls_port = 0
        self.pids: dict[str, int] = {}
        self._procs: dict[str, subprocess.Popen] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def https_url(self) -> str | None:
        """The same gateway over HTTPS (when started with ``tls``), as clients name it: by host name."""
        return f"https://localhost:{self.tls_port}" if self.tls else None

    @property
    def conf(self) -> Path:
        return self.dir / "ceph.conf"

    # -- helpers -----------------------------------------------------------------------------------------
    def _log_tail(self, name: str, lines: int = 15) -> str:
        log = self.dir / "log" / f"{name}.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _run(self, *args: str, timeout: float = 60) -> str:
        try:
            out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RadosgwError(f"{' '.join(args[:3])} timed out after {timeout:.0f}s") from exc
        if out.returncode != 0:
            raise RadosgwError(f"{' '.join(args[:3])} failed ({out.returncode}): {out.stderr.strip()[-800:]}")
        return out.stdout

    def _ceph(self, *args: str, timeout: float = 30) -> str:
        return self._run("ceph", "-c", str(self.conf), "--connect-timeout", "15", *args, timeout=timeout)

    def _spawn(self, name: str, args: list[str], detach: bool) -> None:
        log = (self.dir / "log" / f"{name}.stdout").open("ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=detach)
        log.close()
        self._procs[name] = proc
        self.pids[name] = proc.pid

    def _wait(self, what: str, check, timeout: float, log: str) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise RadosgwError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                       f"{self._log_tail(log)}")
            try:
                if check():
                    return
            except (RadosgwError, requests.RequestException) as exc:
                last = exc
            time.sleep(0.5)
        raise RadosgwError(f"{what} not ready after {timeout:.0f}s ({last}):\n{self._log_tail(log)}")

    # -- lifecycle ---------------------------------------------------------------------------------------
    def _write_conf(self, fsid: str, mon_v2: int, mon_v1: int) -> None:
        d = self.dir
        self.conf.write_text(f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
run dir = {d}/run
log file = {d}/log/$name.log
admin socket = {d}/run/$name.asok
mon data = {d}/mon/$cluster-$id
osd data = {d}/osd/$cluster-$id
keyring = {d}/keyring
osd objectstore = memstore
memstore device bytes = {self.memstore_bytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 2000
osd crush chooseleaf type = 0
""")

    def start(self, *, detach: bool = False, timeout: float = 120) -> RadosgwCluster:
        """Create and start the cluster; raises RadosgwError (with log tails) when a daemon fails."""
        missing = missing_binaries()
        if missing:
            raise RadosgwError(f"Ceph binaries not found: {', '.join(missing)}; install them with: {INSTALL_HINT}")
        try:
            self._start(detach, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, detach: bool, timeout: float) -> None:
        d = self.dir
        for sub in ("mon", "osd", "run", "log"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        mon_v2, mon_v1, self.rgw_port, self.tls_port = free_port(), free_port(), free_port(), free_port()
        self._write_conf(fsid, mon_v2, mon_v1)
        conf, keyring = str(self.conf), str(d / "keyring")
        self._run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", keyring, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
                  "--cap", "osd", "allow *", "--cap", "mgr", "allow *")
        self._run("monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]",
                  "--fsid", fsid, str(d / "monmap"))
        self._run("ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", str(d / "monmap"), "--keyring", keyring)
        self._spawn("mon", ["ceph-mon", "-c", conf, "-i", "a", "-f"], detach)
        self._wait("ceph-mon quorum", lambda: bool(self._ceph("mon", "stat")), timeout / 4, "mon.a")
        osd_uuid = str(uuid.uuid4())
        osd_id = self._ceph("osd", "new", osd_uuid).strip()
        (d / "osd" / f"ceph-{osd_id}").mkdir(parents=True, exist_ok=True)
        self._run("ceph-osd", "-c", conf, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
        self._spawn("osd", ["ceph-osd", "-c", conf, "-i", osd_id, "-f"], detach)
        self._wait("ceph-osd up", lambda: '"num_up_osds":1' in self._ceph("osd", "stat", "-f", "json")
                   .replace(" ", ""), timeout / 2, f"osd.{osd_id}")
        frontends = f"beast endpoint=127.0.0.1:{self.rgw_port}"
        if self.tls:  # HTTPS beside HTTP, on its own port
            frontends += (f" ssl_endpoint=127.0.0.1:{self.tls_port} ssl_certificate={self.tls[0]} "
                          f"ssl_private_key={self.tls[1]}")
        self._spawn("rgw", ["radosgw", "-c", conf, "-n", "client.rgw.a", "-f", *MS_FLAGS,
                            "--rgw-frontends", frontends], detach)
        self._wait("radosgw HTTP", lambda: requests.get(self.endpoint_url, timeout=2).status_code == 200,
                   timeout / 2, "client.rgw.a")
        self._run("radosgw-admin", "-c", conf, "user", "create", "--uid=modelgov", "--display-name=modelgov",
                  f"--access-key={self.access_key}", f"--secret-key={self.secret_key}", timeout=60)

    def stop(self) -> None:
        """Stop rgw, then osd, then mon (each SIGTERM then SIGKILL), and remove the data folder."""
        for name in ("rgw", "osd", "mon"):
            pid = self.pids.pop(name, None)
            if pid:
                stop_pid(pid)
            self._procs.pop(name, None)
        if self._own_dir and not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- state for the CLI -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"dir": str(self.dir), "own_dir": self._own_dir, "pids": self.pids,
                "endpoint_url": self.endpoint_url, "tls_port": self.tls_port, "access_key": self.access_key, "secret_key": self.secret_key}

    @classmethod
    def from_state(cls, state: dict) -> RadosgwCluster:
        cluster = cls(state["dir"], access_key=state["access_key"], secret_key=state["secret_key"])
        cluster._own_dir = state.get("own_dir", False)
        cluster.pids = {k: int(v) for k, v in state["pids"].items()}
        cluster.rgw_port = int(state["endpoint_url"].rsplit(":", 1)[1])
        cluster.tls_port = int(state.get("tls_port") or 0)
        return cluster

    def __enter__(self) -> RadosgwCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.radosgw")
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--state", default=".radosgw-state.json", help="JSON file with pids and endpoint")
    parser.add_argument("--memstore-mb", type=int, default=1024)
    args = parser.parse_args(argv)
    state_file = Path(args.state)
    if args.action == "start":
        cluster = RadosgwCluster(memstore_bytes=args.memstore_mb << 20, keep_dir=True).start(detach=True)
        state_file.write_text(json.dumps(cluster.state()))
        state_file.chmod(0o600)  # holds the secret key
        print(f"export AWS_ENDPOINT_URL={cluster.endpoint_url}")
        print(f"export AWS_ACCESS_KEY_ID={cluster.access_key}")
        print(f"export AWS_SECRET_ACCESS_KEY={cluster.secret_key}")
        print("export AWS_DEFAULT_REGION=us-east-1")
        return 0
    if not state_file.exists():
        print(f"{state_file} not found: nothing to stop")
        return 1
    RadosgwCluster.from_state(json.loads(state_file.read_text())).stop()
    state_file.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
