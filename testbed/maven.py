"""Jars from Maven Central, fetched once per pom into an ignored cache; later starts are offline."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MODELGOV_TESTBED_CACHE", ROOT / ".modelgov" / "testbed"))


@contextlib.contextmanager
def cache_lock(folder: Path) -> Iterator[None]:
    """Exclusive use of one cache folder across processes (``folder.lock`` beside it, ``flock``): two services
    starting at once on a fresh machine (the test session starts two Atlases) fetched and unpacked the same war
    into the same ``.partial`` folder, and both failed."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(folder.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, or when the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fetch_jars(pom: Path, *, timeout: float = 1500) -> Path:
    """Copy the pom's runtime dependencies to ``CACHE/jars/<pom name>-<pom sha>/`` and return that folder."""
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
    lib = CACHE / "jars" / f"{pom.stem}-{digest}"
    if (lib / ".complete").exists():
        return lib
    with cache_lock(lib):  # another process may be fetching it now: wait for it, then use its folder
        return _fetch(pom, lib, digest, timeout)


def _fetch(pom: Path, lib: Path, digest: str, timeout: float) -> Path:
    from testbed.service import ServiceError

    stamp = lib / ".complete"
    if stamp.exists():
        return lib
    if shutil.which("mvn") is None:
        raise ServiceError("Maven (mvn) is not installed; it fetches the service's jars from Maven Central")
    tmp = lib.with_name(lib.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"jar download for {pom.name} did not finish in {timeout:.0f}s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise ServiceError(f"jar download for {pom.name} failed (mvn exit {proc.returncode}):\n{tail}")
    stamp_tmp = tmp / ".complete"
    stamp_tmp.write_text(digest + "\n")
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    return lib


def java() -> str:
    """The Java 17 runtime (``JAVA_HOME`` or the one on PATH)."""
    from testbed.service import ServiceError

    home = os.environ.get("JAVA_HOME")
    exe = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not exe or not Path(exe).exists():
        raise ServiceError("Java is not installed (OpenJDK 17 is needed for this service)")
    return exe
