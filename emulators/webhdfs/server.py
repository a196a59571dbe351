"""WebHDFS namenode + datanode over HTTP, following Hadoop's wire protocol (§4 of the reference notes).

The namenode answers metadata operations itself and redirects CREATE/APPEND/OPEN/GETFILECHECKSUM with a
307 to the datanode, which checks existence/overwrite and stores the bytes (step 2 of the two-step write).
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from emulators.background import ServedInBackground
from emulators.webhdfs.namespace import Namespace, RemoteError

PREFIX = "/webhdfs/v1"
NN_RPC = "localhost:8020"
DEFAULT_USER = "dr.who"  # hadoop.http.staticuser.user
COPY_CHUNK = 1024 * 1024

NN_OPS = {
    "GET": {"GETFILESTATUS", "LISTSTATUS", "GETHOMEDIRECTORY", "OPEN", "GETFILECHECKSUM"},
    "PUT": {"CREATE", "MKDIRS", "RENAME", "SETPERMISSION", "SETOWNER"},
    "POST": {"APPEND"},
    "DELETE": {"DELETE"},
}
REDIRECTED = {"CREATE", "APPEND", "OPEN", "GETFILECHECKSUM"}
DN_OPS = {"PUT": {"CREATE"}, "POST": {"APPEND"}, "GET": {"OPEN", "GETFILECHECKSUM"}}


def _bool(params: dict, name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value.lower() not in ("true", "false"):
        raise RemoteError("IllegalArgumentException",
                          f'Invalid value for webhdfs parameter "{name}": Failed to parse "{value}" to Boolean.')
    return value.lower() == "true"


def _int(params: dict, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    value = params.get(name)
    if value is None or value == "" or value.lower() == "null":
        return default
    try:
        number = int(value)
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise RemoteError("IllegalArgumentException",
                          f'Invalid value for webhdfs parameter "{name}": Invalid value: "{value}"')
    return number


class FailureSwitch:
    """Failure injection for the datanode: after ``after_bytes`` more bytes are stored, writes fail."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.remaining: int | None = None
        self.exception = "DiskErrorException"
        self.message = "No space left on device"

    def arm(self, after_bytes: int, exception: str, message: str) -> None:
        with self.lock:
            self.remaining, self.exception, self.message = after_bytes, exception, message

    def clear(self) -> None:
        with self.lock:
            self.remaining = None

    def allow(self, n: int) -> int:
        """How many of the next ``n`` bytes may be stored."""
        with self.lock:
            if self.remaining is None:
                return n
            ok = min(n, self.remaining)
            self.remaining -= ok
            return ok


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body leave in two writes: without TCP_NODELAY a keep-alive client waits out its
    # 40 ms delayed ACK on every call, which real servers (Jetty, uvicorn) never make it do
    disable_nagle_algorithm = True
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "Jetty(emulated)"
    role = "namenode"
    emulator: WebHdfsEmulator

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet; tests read the access log list
        self.emulator.requests.append(f"{self.role} {self.command} {self.path}")

    # -- plumbing ----------------------------------------------------------------------------------------
    def _params(self) -> tuple[str, dict]:
        split = urlsplit(self.path)
        params: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            params.setdefault(key.lower(), value)  # a repeated parameter: the first one wins, as in Hadoop
        return unquote(split.path), params

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        if getattr(self, "_negotiate", None):  # SPNEGO's answer token (mutual authentication)
            self.send_header("WWW-Authenticate", f"Negotiate {self._negotiate}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body or content_type == "application/json":
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: dict, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _error(self, err: RemoteError) -> None:
        self._json(err.body(), err.status)

    def _body_chunks(self):
        """The request body as chunks, Content-Length or ``Transfer-Encoding: chunked``; read at most once."""
        if getattr(self, "_body_read", False):
            return
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, COPY_CHUNK))
                    if not data:
                        raise ConnectionError("client closed the connection mid-chunk")
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                data = self.rfile.read(min(remaining, COPY_CHUNK))
                if not data:
                    raise ConnectionError("client closed the connection mid-body")
                remaining -= len(data)
                yield data

    def _drain(self) -> None:
        for _ in self._body_chunks():
            pass

    def _dispatch(self) -> None:
        self._body_read = False  # one handler serves every request of a keep-alive connection
        try:
            path, params = self._params()
            if not path.startswith(PREFIX):
                self._drain()
                self._send(404, b"Not Found", content_type="text/plain")
                return
            hdfs_path = Namespace.normalize(path[len(PREFIX):] or "/")
            self._negotiate = None
            if self.emulator.spnego is not None:
                user = self._kerberos_user(params)
                if user is None:
                    return
            else:
                user = params.get("doas") or params.get("user.name") or DEFAULT_USER
            op = params.get("op", "").upper()
            self.handle_op(op, hdfs_path, user, params)
        except RemoteError as err:
            self._drain_quietly()
            self._error(err)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def _kerberos_user(self, params: dict) -> str | None:
        """Secure mode: the namenode authenticates SPNEGO (user.name is ignored, as on a Kerberized cluster)
        and hands a delegation token to the datanode in its redirect; the datanode accepts only that token.
        None when this request was refused (the answer is sent)."""
        emu = self.emulator
        if self.role == "datanode":
            user = emu.delegation_tokens.get(params.get("delegation", ""))
            if user is None:
                self._drain_quietly()
                refused = RemoteError("SecurityException", "Failed to obtain user group information: "
                                      "java.io.IOException: Security enabled but user not authenticated by filter")
                refused.java_class, refused.status = "java.lang.SecurityException", 403
                self._error(refused)
            return user
        user, self._negotiate = emu.spnego.authenticate(self.headers.get("Authorization"))
        if user is None:
            self._drain_quietly()
            self._send(401, b"<html><body><h2>HTTP ERROR 401 Authentication required</h2></body></html>",
                       headers={"WWW-Authenticate": "Negotiate"}, content_type="text/html;charset=iso-8859-1")
        return user

    def _drain_quietly(self) -> None:
        try:
            self._drain()
        except (ConnectionError, ValueError, OSError):
            self.close_connection = True

    def _check_op(self, op: str, table: dict[str, set[str]]) -> None:
        if op not in table.get(self.command, set()):
            raise RemoteError("IllegalArgumentException",
                              f'Invalid value for webhdfs parameter "op": java.lang.IllegalArgumentException: '
                              f"{op} is not a valid {self.command} operation.")

    do_GET = do_PUT = do_POST = do_DELETE = lambda self: self._dispatch()  # noqa: E731

    def handle_op(self, op: str, path: str, user: str, params: dict) -> None:
        """Each role (namenode, datanode) serves its own operations; anything else is refused as Hadoop does."""
        raise RemoteError("UnsupportedOperationException", f"op={op} is not served by the {self.role}")


class NamenodeHandler(_Handler):
    role = "namenode"

    def handle_op(self, op: str, path: str, user: str, params: dict) -> None:
        emu = self.emulator
        if emu.standby:
            self._drain()
            category = "READ" if self.command == "GET" else "WRITE"
            raise RemoteError("StandbyException", f"Operation category {category} is not supported in state "
                                                  f"standby. Visit https://s.apache.org/sbnn-error")
        self._check_op(op, NN_OPS)
        ns = emu.namespace
        if op in REDIRECTED:
            self._drain()
            if op != "CREATE":
                ns.open_file(user, path)  # 404 before redirecting, as the namenode does
            query = urlsplit(self.path).query + f"&namenoderpcaddress={NN_RPC}"
            if emu.spnego is not None:
                query += f"&delegation={emu.delegation_token(user)}"
            if op == "CREATE" and "createparent" not in params:
                query += "&createflag=&createparent=true"
            location = f"{'https' if emu.tls else 'http'}://{emu.host}:{emu.datanode_port}{PREFIX}{quote(path)}?{query}"
            if _bool(params, "noredirect"):
                self._json({"Location": location})
            else:
                self._send(307, headers={"Location": location}, content_type="application/octet-stream")
            return
        if op == "GETFILESTATUS":
            self._json({"FileStatus": ns.get_status(user, path)})
        elif op == "LISTSTATUS":
            self._json({"FileStatuses": {"FileStatus": ns.list_status(user, path)}})
        elif op == "GETHOMEDIRECTORY":
            self._json({"Path": f"/user/{user}"})
        elif op == "MKDIRS":
            self._json({"boolean": ns.mkdirs(user, path, params.get("permission"))})
        elif op == "RENAME":
            dst = params.get("destination", "")
            if not dst.startswith("/"):
                raise RemoteError("IllegalArgumentException",
                                  f'Invalid value for webhdfs parameter "destination": java.lang.IllegalArgumentException: '
                                  f'Invalid parameter value: destination = "{dst}" is not an absolute path.')
            options = params.get("renameoptions")
            if options is None:
                self._json({"boolean": ns.rename(user, path, Namespace.normalize(dst))})
            else:  # rename2 (FileContext semantics): errors instead of false, never moves into a folder
                ns.rename2(user, path, Namespace.normalize(dst), overwrite="OVERWRITE" in options.upper())
                self._send(200, content_type="application/octet-stream")
        elif op == "DELETE":
            self._json({"boolean": ns.delete(user, path, _bool(params, "recursive"))})
        elif op == "SETPERMISSION":
            ns.get_status(user, path)
            ns.set_meta(path, permission=params.get("permission") or "755")
            self._send(200, content_type="application/octet-stream")
        elif op == "SETOWNER":
            if user != "hdfs":
                raise RemoteError("AccessControlException", "Non-super user cannot change owner")
            ns.get_status(user, path)
            ns.set_meta(path, owner=params.get("owner"))
            self._send(200, content_type="application/octet-stream")


class DatanodeHandler(_Handler):
    role = "datanode"

    def handle_op(self, op: str, path: str, user: str, params: dict) -> None:
        self._check_op(op, DN_OPS)
        if "namenoderpcaddress" not in params:
            # Hadoop 3.5's datanode resolves the missing address as a host named null
            raise RemoteError("IllegalArgumentException", "java.net.UnknownHostException: null")
        ns = self.emulator.namespace
        if op == "CREATE":
            fh = ns.create(user, path, overwrite=_bool(params, "overwrite"), permission=params.get("permission"),
                           replication=_int(params, "replication", None, 1),
                           block_size=_int(params, "blocksize", None, 1))
            self._store(fh)
            self._send(201, headers={"Location": f"hdfs://{NN_RPC}{quote(path)}"},
                       content_type="application/octet-stream")
        elif op == "APPEND":
            self._store(ns.append(user, path))
            self._send(200, content_type="application/octet-stream")
        elif op == "GETFILECHECKSUM":
            self._json({"FileChecksum": ns.checksum(user, path)})
        else:
            self._open(ns.open_file(user, path), params)

    def _store(self, fh: BinaryIO) -> None:
        """Stream the body to disk; an armed failure keeps the bytes stored so far, like a dead pipeline."""
        switch = self.emulator.failures
        failed = False
        with fh:
            for chunk in self._body_chunks():
                if failed:
                    continue
                allowed = switch.allow(len(chunk))
                fh.write(chunk[:allowed])
                failed = allowed < len(chunk)
        if failed:
            raise RemoteError(switch.exception, switch.message)

    def _open(self, real: Path, params: dict) -> None:
        size = real.stat().st_size
        offset = _int(params, "offset", 0) or 0
        length = _int(params, "length", None)
        if offset > size:
            raise RemoteError("IOException", f"Offset={offset} out of the range [0, {size}]; OPEN, path={real.name}")
        count = size - offset if length is None else min(length, size - offset)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(count))
        self.end_headers()
        with real.open("rb") as fh:
            fh.seek(offset)
            while count > 0:
                data = fh.read(min(COPY_CHUNK, count))
                if not data:
                    break
                self.wfile.write(data)
                count -= len(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class WebHdfsEmulator(ServedInBackground):
    """A namenode and a datanode on loopback ports, storing files under ``root``.

    ``standby=True`` makes the namenode answer every call with 403 StandbyException (HA tests); pass another
    emulator's ``namespace`` to share one file system between an active and a standby namenode.
    """

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0, *, datanode_port: int = 0,
                 standby: bool = False, namespace: Namespace | None = None, tls: ssl.SSLContext | None = None,
                 spnego: object = None):
        self.namespace = namespace or Namespace(Path(root))
        self.host = host
        self.port = port
        self.datanode_port = datanode_port
        self.standby = standby
        self.tls = tls  # a server context: namenode and datanode speak HTTPS (swebhdfs://)
        self.spnego = spnego  # an emulators.spnego.SpnegoAcceptor: a Kerberized namenode
        self.delegation_tokens: dict[str, str] = {}
        self.failures = FailureSwitch()
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def delegation_token(self, user: str) -> str:
        """A delegation token for ``user`` (what a Kerberized namenode puts in its datanode redirects)."""
        token = secrets.token_urlsafe(24)
        self.delegation_tokens[token] = user
        return token

    def inject_write_failure(self, after_bytes: int = 0, *, exception: str = "DiskErrorException",
                             message: str = "No space left on device") -> None:
        """Datanode writes fail once ``after_bytes`` more bytes are stored (0 = disk full now)."""
        self.failures.arm(after_bytes, exception, message)

    def clear_failures(self) -> None:
        self.failures.clear()

    def _serve_role(self, handler: type[_Handler], port: int) -> _Server:
        cls = type(handler.__name__, (handler,), {"emulator": self})
        server = _Server((self.host, port), cls)
        if self.tls:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        return self._serve(server, f"webhdfs-{handler.role}")

    def start(self) -> WebHdfsEmulator:
        dn = self._serve_role(DatanodeHandler, self.datanode_port)
        self.datanode_port = dn.server_address[1]
        nn = self._serve_role(NamenodeHandler, self.port)
        self.port = nn.server_address[1]
        return self

