"""A Java service process: started in its own process group, its log in the workdir, its ready line awaited."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from pathlib import Path
from typing import Any

from testbed.service import ServiceError, log_tail, stop_process


class JavaProcess:
    """``argv`` run with stdout piped (for a JSON ready line, if the program prints one) and stderr to ``log``."""

    def __init__(self, argv: list[str], *, log: Path, cwd: Path, env: dict[str, str] | None = None,
                 commands: bool = False):
        self.argv, self.log, self.cwd, self.commands = argv, log, cwd, commands
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        with self.log.open("ab") as log:
            stdin = subprocess.PIPE if self.commands else subprocess.DEVNULL
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdin=stdin,
                                         stdout=subprocess.PIPE, stderr=log, start_new_session=True)
        return self.proc

    def died(self) -> str | None:
        """Why the process is gone (exit code and log tail), or None while it runs."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return f"exited with {self.proc.returncode}; last lines of {self.log}:\n{log_tail(self.log)}"

    def read_ready_line(self, timeout: float, what: str) -> dict[str, Any]:
        """The next stdout line, parsed as JSON; fails early if the process dies."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=0.5):
                    line = self.proc.stdout.readline().decode(errors="replace").strip()
                    if line:
                        try:
                            return json.loads(line)
                        except ValueError as exc:
                            raise ServiceError(f"{what}: unexpected output {line!r}") from exc
                if dead := self.died():
                    raise ServiceError(f"{what}: {dead}")
        raise ServiceError(f"{what}: not ready after {timeout:.0f}s; see {self.log}")

    def command(self, line: str, timeout: float = 120) -> dict[str, Any]:
        """Send one command line on stdin (``commands=True``) and return its JSON answer line."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.read_ready_line(timeout, f"answer to {line!r}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
        stop_process(self.proc)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
