"""A counting proxy for Atlas: a small HTTP server in a thread that forwards every request to Atlas (the
emulator or a real server) unchanged and counts the requests by method and path, so that a test can state how
many Atlas calls a `modelgov` command makes while the command talks to Atlas exactly as it would otherwise."""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from emulators.background import ServedInBackground

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length"}
_GUID = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=/|$)")
FORWARD_TIMEOUT = 60.0


Rewrite = Callable[[str, str, bytes], bytes]  # (method, path, response body) -> the body the client gets


class CountingProxy(ServedInBackground):
    """Forwards to ``upstream``; ``counts`` holds ``(method, path)`` (no query) for every forwarded request.
    ``rewrite``, when given, changes response bodies: a server that answers differently (an older Atlas)."""

    def __init__(self, upstream: str, rewrite: Rewrite | None = None) -> None:
        self.upstream = urlsplit(upstream.rstrip("/"))
        self.rewrite = rewrite
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()

    def by_endpoint(self) -> Counter[str]:
        """The counts with guids in paths folded to ``{guid}``: which endpoints, how often (for messages)."""
        out: Counter[str] = Counter()
        for (method, path), n in self.counts.items():
            out[f"{method} {_GUID.sub('/{guid}', path)}"] += n
        return out

    def _count(self, method: str, path: str) -> None:
        with self._lock:
            self.counts[(method, urlsplit(path).path)] += 1

    def start(self) -> CountingProxy:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._serve(server, "atlas-counting-proxy")
        return self


def _handler(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the test output is the counts
            pass

        def _forward(self) -> None:
            proxy._count(self.command, self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream = proxy.upstream
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=FORWARD_TIMEOUT)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            if proxy.rewrite is not None:
                data = proxy.rewrite(self.command, urlsplit(self.path).path, data)
            self.send_response(resp.status)
            for key, value in resp.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    return Forward
