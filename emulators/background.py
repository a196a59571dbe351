"""Run an emulator's HTTP servers on daemon threads, for in-process use by tests and the demo."""

from __future__ import annotations

import signal
import threading
from socketserver import BaseServer
from typing import Self


class ServedInBackground:
    """Mixin: ``start()`` (defined by the emulator) serves through ``_serve``; ``stop()`` and the context
    manager shut every server down and wait for its thread."""

    _running: list[tuple[BaseServer, threading.Thread]]

    def _serve(self, server: BaseServer, name: str) -> BaseServer:
        if not hasattr(self, "_running"):
            self._running = []
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name,
                                  daemon=True)
        thread.start()
        self._running.append((server, thread))
        return server

    def start(self) -> Self:
        raise TypeError(f"{type(self).__name__} must define start()")

    def stop(self) -> None:
        for server, thread in getattr(self, "_running", []):
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        self._running = []

    def serve_until_signalled(self, banner: str) -> None:
        """For the CLIs: print the ready line (tests and the demo wait for it), serve until SIGTERM or SIGINT,
        then stop cleanly."""
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        print(f"{banner} listening on {self.url}", flush=True)  # type: ignore[attr-defined]
        done.wait()
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
