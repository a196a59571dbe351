"""A stand-in for MLeap "classic" serving (``combust/mleap`` module ``mleap-serving``), over real HTTP.

It reproduces the routes, status codes and bodies of ``MleapResource.scala`` (see the reference notes §3.1):
one model per server, ``PUT /model {"path": ...}`` loads a bundle zip from a server-local path, ``GET /model``
returns the loaded schema, ``POST /transform`` scores a LeapFrame, ``DELETE /model`` unloads, and any
exception becomes a 500. It exists because the real server needs a JVM that cannot run in CI.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from emulators.background import ServedInBackground
from emulators.mleap.bundle import BundleError, LoadedBundle, load_bundle

NOT_FOUND = "The requested resource could not be found."
ROUTES = {"/model": ("PUT", "DELETE", "GET"), "/transform": ("POST",)}


class MleapState:
    """The one loaded bundle, guarded by a lock like MleapService's synchronized methods."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bundle: LoadedBundle | None = None
        self.path: str | None = None


class MleapHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes: without TCP_NODELAY a keep-alive client waits out its
    # 40 ms delayed ACK on every call, which real servers (Jetty, uvicorn) never make it do
    disable_nagle_algorithm = True
    server_version = "akka-http/10.0.3"  # what the real server announces

    def version_string(self) -> str:
        return self.server_version

    @property
    def state(self) -> MleapState:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    # ----------------------------------------------------------------------------------------- plumbing
    def _send(self, status: int, body: str | bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value), "application/json")

    def _text(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, text, "text/plain; charset=UTF-8", headers)

    def _error(self, exc: BaseException) -> None:
        # the real exception handler completes with (500, e): the body is the exception's text
        self._text(500, f"{type(exc).__name__}: {exc}")

    def _body_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw.decode("utf-8"))

    def _route(self) -> str:
        return self.path.split("?", 1)[0]

    def _dispatch(self) -> None:
        path = self._route()
        if path not in ROUTES:
            self._text(404, NOT_FOUND)
            return
        if self.command == "OPTIONS":
            self._text(200, "ok", {"Access-Control-Allow-Origin": "*"})
            return
        allowed = ROUTES[path]
        if self.command not in allowed:
            self._text(405, f"HTTP method not allowed, supported methods: {', '.join(allowed)}",
                       {"Allow": ", ".join(allowed)})
            return
        getattr(self, f"_{self.command.lower()}_{path.strip('/')}")()

    do_GET = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_PATCH = do_HEAD = _dispatch  # noqa: N815

    # ----------------------------------------------------------------------------------------- routes
    def _put_model(self) -> None:
        try:
            body = self._body_json()
        except (ValueError, UnicodeDecodeError) as exc:
            self._text(400, f"The request content was malformed:\n{exc}")
            return
        path = body.get("path") if isinstance(body, dict) else None
        try:
            if not isinstance(path, str):
                raise LookupError("None.get")  # LoadModelRequest(path = None): request.path.get throws
            bundle = load_bundle(path)
        except (BundleError, LookupError, OSError) as exc:
            self._error(exc)
            return
        with self.state.lock:
            self.state.bundle, self.state.path = bundle, path
        self._json(200, {})

    def _delete_model(self) -> None:
        with self.state.lock:
            self.state.bundle = self.state.path = None
        self._json(200, {})

    def _get_model(self) -> None:
        with self.state.lock:
            bundle = self.state.bundle
        if bundle is None:
            self._error(IllegalStateException("no transformer loaded"))
            return
        self._json(200, bundle.schema())

    def _post_transform(self) -> None:
        try:
            frame = self._body_json()
        except (ValueError, UnicodeDecodeError) as exc:
            self._text(400, f"The request content was malformed:\n{exc}")
            return
        with self.state.lock:
            bundle = self.state.bundle
            try:
                if bundle is None:
                    raise IllegalStateException("no transformer loaded")
                result = bundle.transform(frame)
            except (BundleError, IllegalStateException) as exc:
                self._error(exc)
                return
        self._json(200, result)


class IllegalStateException(Exception):
    """Named after the JVM exception the real server reports."""


class MleapServingEmulator(ServedInBackground):
    """In-process MLeap serving stand-in: ``start()``, ``url``, ``stop()`` (also a context manager)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False):
        self.host = host
        self.port = port
        self.verbose = verbose
        self._server: ThreadingHTTPServer | None = None

    def _bind(self) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer((self.host, self.port), MleapHandler)
        server.daemon_threads = True
        server.state = MleapState()  # type: ignore[attr-defined]
        server.verbose = self.verbose  # type: ignore[attr-defined]
        self.port = server.server_address[1]
        return server

    def start(self) -> MleapServingEmulator:
        self._server = self._bind()
        self._serve(self._server, f"mleap-emulator-{self.port}")
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loaded_path(self) -> str | None:
        """The server-side path of the loaded bundle (what a real server does not report; for tests)."""
        return self._server.state.path if self._server else None  # type: ignore[attr-defined]

    def stop(self) -> None:
        super().stop()
        self._server = None
