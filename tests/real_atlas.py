"""One real Apache Atlas per test session, started the way a person starts it: ``python -m testbed atlas``.

Atlas needs minutes to start, so the process is launched as soon as collection shows that a selected test
needs it (the ``real_atlas`` marker or fixture), and those tests are moved to the end of the run: the
start overlaps with every other test. ``MODELGOV_REAL_ATLAS_URL`` (admin/admin) points the tests at an
Atlas that is already running instead, for a quick edit-test loop; ``make test`` never sets it.

The secured clusters' tests get a second one, ``python -m testbed atlas --tls --kerberos --kdc FILE``
(``secured_real_atlas``), started the same way against the session's one KDC (``shared_kdc``: the realm the
Kerberized HDFS and the SPNEGO emulators use too, so one keytab and one ``krb5.conf`` serve every service).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = float(os.environ.get("MODELGOV_ATLAS_START_TIMEOUT", "1200")) + 120


class RealAtlasProcess:
    """``python -m testbed atlas`` in the background; ``ready()`` blocks for its one JSON ready line."""

    def __init__(self, *args: str, workdir: Path | None = None) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="modelgov-real-atlas-"))
        self.stderr_path = self.workdir / "testbed-stderr.log"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "testbed", "atlas", "--workdir", str(self.workdir),
                                      *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self._line: str | None = None
        self._reader = threading.Thread(target=self._read_line, daemon=True)
        self._reader.start()

    def _read_line(self) -> None:
        assert self.proc.stdout is not None
        self._line = self.proc.stdout.readline()

    def ready(self) -> dict[str, Any]:
        self._reader.join(START_TIMEOUT)
        if not self._line:
            reason = "did not start in time" if self.proc.poll() is None else f"exited {self.proc.returncode}"
            tail = self.stderr_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"python -m testbed atlas {reason}:\n{tail}")
        return json.loads(self._line)

    def stop(self) -> int:
        """SIGTERM (what the testbed promises to handle), then the exit status; SIGKILL only as a last resort."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        return self.proc.returncode


_PROCESS = pytest.StashKey[RealAtlasProcess]()
_SECURED = pytest.StashKey[RealAtlasProcess]()
_KDC = pytest.StashKey[Any]()  # testbed.kdc.KdcService


def _needs_secured_atlas(item: pytest.Item) -> bool:
    return "secured_real_atlas" in getattr(item, "fixturenames", ())


def _needs_real_atlas(item: pytest.Item) -> bool:
    return (item.get_closest_marker("real_atlas") is not None or "real_atlas" in getattr(item, "fixturenames", ())
            or _needs_secured_atlas(item))


def _kdc(config: pytest.Config) -> Any:
    """The session's KDC, started on first need (testbed.kdc, in this process: it starts in under a second)."""
    service = config.stash.get(_KDC, None)
    if service is None:
        from testbed.kdc import KdcService

        service = KdcService(Path(tempfile.mkdtemp(prefix="modelgov-kdc-")))
        service.start()
        config.stash[_KDC] = service
    return service


def _start_secured(config: pytest.Config) -> RealAtlasProcess:
    workdir = Path(tempfile.mkdtemp(prefix="modelgov-secured-atlas-"))
    ready_line = workdir / "kdc.json"
    ready_line.write_text(json.dumps(_kdc(config).info))
    process = config.stash[_SECURED] = RealAtlasProcess("--tls", "--kerberos", "--kdc", str(ready_line),
                                                        workdir=workdir)
    return process


@pytest.hookimpl(tryfirst=True)
def pytest_itemcollected(item: pytest.Item) -> None:
    """Every real-Atlas test is slow, marked as it is collected: before ``-m "not slow"`` deselects, so
    ``make test-fast`` neither runs them nor starts an Atlas for them."""
    if _needs_real_atlas(item):
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-Atlas tests go last (a stable partition keeps pytest's fixture grouping), and Atlas starts now."""
    real = [item for item in items if _needs_real_atlas(item)]
    if not real:
        return
    real[0].add_marker(pytest.mark.timeout(START_TIMEOUT + 300))  # the first one waits for the start
    items[:] = [item for item in items if not _needs_real_atlas(item)] + real
    if config.getoption("collectonly"):
        return
    if not os.environ.get("MODELGOV_REAL_ATLAS_URL") and any(not _needs_secured_atlas(i) for i in real):
        config.stash[_PROCESS] = RealAtlasProcess()
    if any(_needs_secured_atlas(i) for i in real):
        _start_secured(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run that ended before the fixtures were used still stops the processes it started."""
    for key in (_PROCESS, _SECURED):
        process = config.stash.get(key, None)
        if process is not None:
            process.stop()
    kdc = config.stash.get(_KDC, None)
    if kdc is not None:
        kdc.stop()
        shutil.rmtree(kdc.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_kdc(pytestconfig: pytest.Config) -> Any:
    """The ready info of the session's one real KDC (realm, krb5.conf, every principal's keytab path)."""
    return _kdc(pytestconfig).info


@pytest.fixture(scope="session")
def secured_real_atlas(pytestconfig: pytest.Config, shared_kdc: Any) -> Any:
    """The ready info of the session's real Atlas 2.1 over HTTPS (its own testbed CA: ``ca_bundle``) with
    SPNEGO against ``shared_kdc`` (``principals``: the user keytabs); basic auth (admin/admin) works beside."""
    process = pytestconfig.stash.get(_SECURED, None) or _start_secured(pytestconfig)
    info = process.ready()
    yield info
    del pytestconfig.stash[_SECURED]
    status = process.stop()
    assert status == 0, f"python -m testbed atlas --tls --kerberos exited {status} on SIGTERM (expected 0)"


@pytest.fixture(scope="session")
def real_atlas(pytestconfig: pytest.Config) -> Any:
    """The ready info of the session's real Atlas: ``{"url", "username", "password", "version", ...}``."""
    url = os.environ.get("MODELGOV_REAL_ATLAS_URL")
    if url:
        yield {"service": "atlas", "url": url.rstrip("/"), "username": "admin", "password": "admin"}
        return
    process = pytestconfig.stash.get(_PROCESS, None)
    if process is None:  # requested in a way collection could not see
        process = pytestconfig.stash[_PROCESS] = RealAtlasProcess()
    info = process.ready()
    yield info
    del pytestconfig.stash[_PROCESS]
    status = process.stop()
    assert status == 0, f"python -m testbed atlas exited {status} on SIGTERM (expected 0)"
