"""A TCP server that accepts connections and never answers: the slow or hung endpoint that per-call timeouts
with retries let hold a deploy for retries x timeout, used to prove the total deadlines."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


class SilentServer:
    """Listens on 127.0.0.1, accepts every connection, reads and discards what arrives, never writes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="silent-server")

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.accepted += 1
                conn.setblocking(False)
                self._held.append(conn)  # kept open and silent until close()
            except TimeoutError:
                pass
            except OSError:
                return
            for held in self._held:  # drain what was sent, so that a client's body writes never block
                with contextlib.suppress(OSError):
                    while held.recv(65536):
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self.sock.close()


@contextlib.contextmanager
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    server._thread.start()
    try:
        yield server
    finally:
        server.close()


class TricklingServer(SilentServer):
    """Answers every request with a 200 whose body arrives one byte every ``pause`` seconds: each socket read
    returns within any read timeout, so only a total deadline stops a client."""

    def __init__(self, pause: float = 0.2) -> None:
        super().__init__()
        self.pause = pause

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
            while not self._stop.wait(self.pause):
                conn.sendall(b" ")


@contextlib.contextmanager
def trickling_server(pause: float = 0.2) -> Iterator[TricklingServer]:
    server = TricklingServer(pause)
    server._thread.start()
    try:
        yield server
    finally:
        server.close()
