"""The one lifecycle every local service follows: start (blocking until ready), a ready-info dict, stop."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self


class ServiceError(RuntimeError):
    """A service could not start (missing Java, download failed, port taken, not ready in time)."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               alive: Callable[[], str | None] | None = None, interval: float = 0.2) -> None:
    """Poll ``check`` until it is true; fail early when ``alive`` reports the process died (its reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and (dead := alive()):
            raise ServiceError(f"{what}: {dead}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not ready yet
            pass
        time.sleep(interval)
    raise ServiceError(f"{what}: not ready after {timeout:.0f}s")


def stop_process(proc: subprocess.Popen | None, grace: float = 20.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Service(ABC):
    """One local service. ``start()`` returns the ready info once the service answers:
    ``{"service", "url", "pid"}`` plus ``registry_uri``/``target_uri`` and service-specific fields."""

    name: ClassVar[str]
    supports_tls: ClassVar[bool] = False  # may serve HTTPS with a testbed CA's certificate (testbed.certs)
    tls: bool = False

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.info: dict[str, Any] = {}

    @abstractmethod
    def start(self) -> dict[str, Any]:
        """Start and block until ready; raise ServiceError with the reason otherwise."""

    @abstractmethod
    def stop(self) -> None:
        """Stop everything ``start`` started; safe to call twice."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_class(name: str) -> type[Service]:
    from testbed import SERVICES

    if name not in SERVICES:
        raise ServiceError(f"unknown service {name!r}; known: {', '.join(sorted(SERVICES))}")
    module, _, cls = SERVICES[name].partition(":")
    return getattr(importlib.import_module(module), cls)
