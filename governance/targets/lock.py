"""One deploy per target at a time: an exclusive ``fcntl`` lock on a file the target names.

The lock is held by the process (released by the kernel when it dies, even on kill -9), so a crashed run
never blocks the next one. It holds for every path that deploys (the CLI, a flow run, a worker) on hosts that
share the lock file; the flow adds a Prefect global concurrency limit for workers on other hosts. While
waiting, the holder's description (pid, host, what it deploys) is logged, so an operator sees who blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from governance.errors import TargetError

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 3600.0


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another deploy"
    if not isinstance(info, dict) or not info:
        return "another deploy"
    return (f"{info.get('what', 'a deploy')} (pid {info.get('pid')} on {info.get('host')} since "
            f"{info.get('since')})")


@contextlib.contextmanager
def target_lock(path: Path, what: str, *, timeout_s: float | None = None, poll_s: float = 0.2,
                on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock on ``path`` for the block; wait up to ``timeout_s`` (default
    ``MODELGOV_LOCK_TIMEOUT`` or an hour), logging once who holds it, then raise TargetError."""
    if timeout_s is None:
        timeout_s = float(os.environ.get("MODELGOV_LOCK_TIMEOUT", DEFAULT_TIMEOUT_S))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise TargetError(f"cannot open the deploy lock {path}: {exc}") from exc
    started = time.monotonic()
    local = _local_lock(path)
    announced = False
    if not local.acquire(blocking=False):  # another thread of this process deploys there: wait on it directly
        (on_wait or log.warning)(f"waiting for the deploy lock {path}: held by {_holder(path)}")
        announced = True
        if not local.acquire(timeout=max(timeout_s, 0.001)):
            os.close(fd)
            raise TargetError(f"gave up waiting for the deploy lock {path} after {time.monotonic() - started:.0f}s: "
                              f"held by {_holder(path)}")
    try:
        pause = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if not announced:
                    message = f"waiting for the deploy lock {path}: held by {_holder(path)}"
                    (on_wait or log.warning)(message)
                    announced = True
                if waited >= timeout_s:
                    raise TargetError(f"gave up waiting for the deploy lock {path} after {waited:.0f}s: held by "
                                      f"{_holder(path)}") from None
                time.sleep(pause)
                pause = min(pause * 2, poll_s)  # a short wait is noticed at once, a long one polls gently
        if announced:
            (on_wait or log.warning)(f"acquired the deploy lock {path} after {time.monotonic() - started:.1f}s")
        info = {"what": what, "pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
        local.release()


_local_locks: dict[str, threading.Lock] = {}
_local_locks_guard = threading.Lock()


def _local_lock(path: Path) -> threading.Lock:
    """One thread lock per lock file: threads of one process (a batch) hand the target over to each other at
    once instead of polling ``flock``; other processes are still held off by ``flock``."""
    key = str(path.resolve())
    with _local_locks_guard:
        return _local_locks.setdefault(key, threading.Lock())
