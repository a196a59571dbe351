"""``hdfs://nn[:port][,nn2[:port]]/path`` (also ``webhdfs://``): a registry on HDFS through WebHDFS;
``swebhdfs://`` (Hadoop's own name for WebHDFS over HTTPS) speaks HTTPS to the namenodes, default port 9871,
trusting the CA bundle of every client (``governance.tls``).

The port is the namenode HTTP port (9870 on Hadoop 3; HTTPS: 9871). Several namenodes make an HA pair: the ``hdfs``
client rotates to the next one on connection errors and on a StandbyException answer.
Publish = stream every file into a temporary folder, write MANIFEST.json there last, then rename the folder
into place with ``renameoptions=NONE`` (rename2): atomic, and refused with FileAlreadyExistsException when
another publisher got there first. (Plain RENAME would move the folder *into* an existing version.) sha256 lives in the manifest: HDFS's own GETFILECHECKSUM is not a content hash.

Every operation (a status or manifest read, one file's write, the commit's rename, one file's verify read, a
listing) has one total deadline, ``MODELGOV_HDFS_DEADLINE`` seconds (``governance.deadlines``), retries and
namenode failover included.

Environment: ``MODELGOV_HDFS_USER`` or ``HADOOP_USER_NAME`` (simple auth user), ``MODELGOV_HDFS_AUTH``
(``simple`` default, or ``kerberos``: SPNEGO with a keytab or the ticket cache, ``governance.kerberos``;
needs the ``kerberos`` extra: requests-gssapi).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import posixpath
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

import requests
from hdfs import Client, HdfsError, InsecureClient

from governance.checksums import CHUNK, ArtifactFile, HashingReader
from governance.deadlines import (
    DEFAULT_HDFS_DEADLINE,
    HDFS_DEADLINE_ENV,
    Clock,
    current_clock,
    deadline_from_env,
    running,
)
from governance.errors import ConfigError, RegistryDeadlineExceeded, RegistryError, RegistryUnavailable
from governance.http import OutOfTime, build_session, chunks_within
from governance.paths import segment_problem
from governance.registries.base import (
    APPROVALS_FOLDER,
    MANIFEST_NAME,
    Attempt,
    Leftover,
    Registry,
    new_attempt_id,
)

log = logging.getLogger(__name__)

DEFAULT_PORT = 9870
DEFAULT_HTTPS_PORT = 9871
TIMEOUT = (5.0, 120.0)  # (connect, read) seconds for every WebHDFS call
FILE_PERMISSION = "644"  # octal strings: an int 0o644 would be sent as "420" and refused (§4.6)
DIR_PERMISSION = "755"
TMP_MARK = ".tmp-"


def _namenodes(uri: str) -> tuple[list[str], str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("hdfs", "webhdfs", "swebhdfs"):
        raise ConfigError(f"HDFS registry URI must start with hdfs://, webhdfs:// or swebhdfs:// (HTTPS), "
                          f"got {uri!r}")
    https = parsed.scheme == "swebhdfs"
    hosts = [h.strip() for h in parsed.netloc.split(",") if h.strip()]
    if not hosts:
        raise ConfigError(f"HDFS registry URI {uri!r} names no namenode (hdfs://namenode:9870/path)")
    urls = []
    for host in hosts:
        default = DEFAULT_HTTPS_PORT if https else DEFAULT_PORT
        name, _, port = host.rpartition(":") if ":" in host else (host, "", str(default))
        if not port.isdigit():
            raise ConfigError(f"HDFS registry URI {uri!r}: bad namenode port in {host!r}")
        urls.append(f"{'https' if https else 'http'}://{name}:{port}")
    root = posixpath.normpath(unquote(parsed.path or ""))
    if not root.startswith("/") or root == "/":
        raise ConfigError(f"HDFS registry URI {uri!r} needs an absolute folder, e.g. hdfs://nn:9870/models")
    return urls, root


def hdfs_deadline() -> float:
    """Seconds for one HDFS operation, retries included (``MODELGOV_HDFS_DEADLINE``)."""
    return deadline_from_env(HDFS_DEADLINE_ENV, DEFAULT_HDFS_DEADLINE)


def _client(urls: list[str]) -> Client:
    """Simple auth (``user.name``) or Kerberos SPNEGO, with timeouts and retries on every call."""
    # connection errors are retried for every method; 5xx and read errors only for GET, because a
    # replayed PUT would resend an already consumed (streamed) body
    session = build_session(retries=2, backoff=0.3, timeout=TIMEOUT, retry_methods=frozenset({"GET", "HEAD"}))
    url = ";".join(urls)
    auth = os.environ.get("MODELGOV_HDFS_AUTH", "simple").strip().lower()
    if auth in ("", "simple", "insecure"):
        user = os.environ.get("MODELGOV_HDFS_USER") or os.environ.get("HADOOP_USER_NAME") or getpass.getuser()
        return InsecureClient(url, user=user, session=session, timeout=TIMEOUT)
    if auth == "kerberos":
        # SPNEGO to the namenode (requests-gssapi, governance.kerberos: a keytab or the ticket cache, checked
        # here, before anything is written); the namenode's redirects carry a delegation token for the
        # datanode, as WebHDFS does on a secured cluster, so no user.name is sent
        from governance.kerberos import spnego_auth

        session.auth = spnego_auth(hosts=[urlparse(u).hostname or "" for u in urls])
        return Client(url, session=session, timeout=TIMEOUT)
    raise ConfigError(f"MODELGOV_HDFS_AUTH={auth!r} is not supported; use 'simple' or 'kerberos'")


class HdfsRegistry(Registry):
    scheme = "hdfs"
    parallel_files = 4  # each file's close waits for the datanode's block report (often ~0.4 s): overlap them

    def __init__(self, uri: str):
        self.namenodes, self.root = _namenodes(uri)
        super().__init__(uri.rstrip("/"))
        self.deadline = hdfs_deadline()
        self.client = _client(self.namenodes)

    @property
    def ticket(self):  # noqa: ANN201 - governance.kerberos.Ticket | None
        """With MODELGOV_HDFS_AUTH=kerberos, the Kerberos ticket in use (for doctor and error messages)."""
        return getattr(self.client._session.auth, "ticket", None)

    # -- errors ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, action: str, path: str, clock: Clock | None = None) -> Iterator[Clock]:
        """One operation under its deadline; client/HTTP failures -> RegistryError naming the path and the
        namenodes, and any failure once the deadline has passed -> RegistryDeadlineExceeded."""
        with running(clock or Clock(self.deadline)) as active:
            try:
                yield active
            except (HdfsError, requests.RequestException) as exc:
                if isinstance(exc, OutOfTime) or active.expired():
                    raise RegistryDeadlineExceeded(f"HDFS {action} {path}", ", ".join(self.namenodes),
                                                   active.deadline, active.waited(), HDFS_DEADLINE_ENV) from exc
                raise self._translate(action, path, exc) from exc

    def _translate(self, action: str, path: str, exc: HdfsError | requests.RequestException) -> RegistryError:
        if isinstance(exc, HdfsError):
            # a datanode relays the namenode's exception with its Java stack trace: keep the first line
            message = str(exc).split("\n\tat ", 1)[0].strip()
            ticket = self.ticket
            if ticket is not None and message.startswith("Authentication failure"):  # a 401 to our SPNEGO token
                from governance.kerberos import refused_message

                return RegistryError(f"HDFS {action} {path}: {refused_message(', '.join(self.namenodes), ticket)}")
            if message.endswith("(is not a directory)"):
                # a file where a folder belongs; HDFS calls it AccessControlException (or
                # ParentNotDirectoryException), which reads like a permission problem
                blocker = message.removesuffix("(is not a directory)").strip()
                return RegistryError(f"{blocker} exists on HDFS and is not a folder; cannot {action} {path} "
                                     f"on {', '.join(self.namenodes)}")
            kind = f" ({exc.exception})" if getattr(exc, "exception", None) else ""
            return RegistryError(f"HDFS {action} {path} on {', '.join(self.namenodes)} failed{kind}: {message}")
        return RegistryUnavailable(f"HDFS {action} {path}: namenode/datanode unreachable "
                                       f"({', '.join(self.namenodes)}): {exc}")

    def _status(self, path: str) -> dict | None:
        """FileStatus, or None only for FileNotFoundException (``status(strict=False)`` hides 403s too)."""
        try:
            with self._errors("status of", path):
                return self.client.status(path)
        except RegistryError as exc:
            if getattr(exc.__cause__, "exception", None) == "FileNotFoundException":
                return None
            raise

    def _dir(self, name: str, version: str) -> str:
        return posixpath.join(self.root, name, version)

    # -- primitives ----------------------------------------------------------------------------------------
    def _read_manifest(self, name: str, version: str) -> tuple[str, str] | None:
        path = posixpath.join(self._dir(name, version), MANIFEST_NAME)
        status = self._status(path)
        if status is None or status["type"] != "FILE":
            return None
        with self._errors("read", path) as clock, self.client.read(path) as raw:
            return b"".join(chunks_within(raw, clock, path, CHUNK)).decode("utf-8"), path

    def _begin(self, name: str, version: str) -> Attempt:
        parent = posixpath.join(self.root, name)
        with self._errors("mkdirs", parent):
            self.client.makedirs(parent, permission=DIR_PERMISSION)
        attempt_id = new_attempt_id()
        tmp = posixpath.join(parent, f".{version}{TMP_MARK}{attempt_id}")
        with self._errors("mkdirs", tmp):
            self.client.makedirs(tmp, permission=DIR_PERMISSION)
        return Attempt(name, version, attempt_id, tmp)

    def _put(self, attempt: Attempt, file: ArtifactFile, reader: HashingReader,
             advance: Callable[[int], None]) -> None:
        """Stream one file (chunked transfer, bounded memory); check the length HDFS stored."""
        dst = posixpath.join(attempt.where, file.path)
        with self._errors("write", dst), _read_ahead(reader, advance) as chunks:
            self.client.write(dst, data=chunks, permission=FILE_PERMISSION)
        status = self._status(dst)
        if status is None or status["length"] != reader.size:
            raise RegistryError(f"{dst} holds {status and status['length']} bytes after writing {reader.size}")

    def _commit(self, attempt: Attempt, manifest: bytes) -> bool:
        """Write the manifest into the attempt, then rename2 it onto the version: atomic, and refused (not a
        move *into* it, as plain RENAME does with folders) when the version exists."""
        final = self._dir(attempt.name, attempt.version)
        manifest_path = posixpath.join(attempt.where, MANIFEST_NAME)
        with self._errors("write", manifest_path):
            self.client.write(manifest_path, data=manifest, permission=FILE_PERMISSION)
        try:
            with self._errors("rename", f"{attempt.where} -> {final}"):
                self.client._rename(attempt.where, destination=final, renameoptions="NONE")
        except RegistryError as exc:
            if getattr(exc.__cause__, "exception", None) == "FileAlreadyExistsException":
                return False
            raise
        return True

    def _put_once(self, name: str, rel: str, data: bytes) -> bool:
        """Written under a temp name, then rename2'd onto the name without OVERWRITE: complete or absent, and
        never replaced (FileAlreadyExistsException)."""
        final = posixpath.join(self.root, name, rel)
        parent = posixpath.dirname(final)
        tmp = posixpath.join(parent, f".{posixpath.basename(final)}{TMP_MARK}{new_attempt_id()}")
        with self._errors("mkdirs", parent):
            self.client.makedirs(parent, permission=DIR_PERMISSION)
        with self._errors("write", tmp):
            self.client.write(tmp, data=data, permission=FILE_PERMISSION)
        try:
            with self._errors("rename", f"{tmp} -> {final}"):
                self.client._rename(tmp, destination=final, renameoptions="NONE")
        except RegistryError as exc:
            if getattr(exc.__cause__, "exception", None) == "FileAlreadyExistsException":
                with contextlib.suppress(RegistryError), self._errors("delete", tmp):
                    self.client.delete(tmp)
                return False
            raise
        return True

    def _list_names(self, name: str, rel: str) -> list[str]:
        folder = posixpath.join(self.root, name, rel)
        if self._status(folder) is None:
            return []
        with self._errors("list", folder):
            entries = self.client.list(folder, status=True)
        return [n for n, st in entries if st["type"] == "FILE" and TMP_MARK not in n]

    def _abandon(self, attempt: Attempt) -> None:
        with self._errors("delete", attempt.where):
            self.client.delete(attempt.where, recursive=True)  # a no-op after a successful rename

    def _open(self, name: str, version: str, path: str) -> Iterator[bytes]:
        """One file's read is one operation; the clock is set only while a chunk is fetched, never while the
        caller works on the chunk it got (its own calls run under their own deadlines)."""
        target = posixpath.join(self._dir(name, version), path)
        clock = Clock(self.deadline)
        with contextlib.ExitStack() as opened:
            with self._errors("read", target, clock):
                chunks = chunks_within(opened.enter_context(self.client.read(target)), clock, target, CHUNK)
            while True:
                with self._errors("read", target, clock):
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                yield chunk

    def _leftovers(self) -> Iterator[Leftover]:
        if self._status(self.root) is None:
            return
        with self._errors("list", self.root):
            models = [(n, st) for n, st in self.client.list(self.root, status=True) if st["type"] == "DIRECTORY"]
        for model, _ in models:
            if self._unsafe(model, self.root):
                continue
            folder = posixpath.join(self.root, model)
            with self._errors("list", folder):
                entries = self.client.list(folder, status=True)
            for entry, st in entries:
                if st["type"] != "DIRECTORY" or entry == APPROVALS_FOLDER or self._unsafe(entry, folder):
                    continue
                path = posixpath.join(folder, entry)
                modified = datetime.fromtimestamp(st["modificationTime"] / 1000, UTC)
                if entry.startswith(".") and TMP_MARK in entry:
                    yield Leftover("temporary folder of an interrupted publish", self._uri(path), modified, path)
                elif self._status(posixpath.join(path, MANIFEST_NAME)) is None:
                    yield Leftover("version folder without a manifest (never committed)", self._uri(path),
                                   modified, path)

    def _remove(self, leftover: Leftover) -> None:
        path = str(leftover.handle)
        if TMP_MARK not in posixpath.basename(path) and \
                self._status(posixpath.join(path, MANIFEST_NAME)) is not None:
            return  # committed meanwhile: never touched (a commit cannot land on a non-empty folder)
        with self._errors("delete", path):
            self.client.delete(path, recursive=True)

    def _unsafe(self, name: str, folder: str) -> bool:
        """A listed name that is not one plain path segment is never acted on (gc would delete by it)."""
        if segment_problem(name) is None:
            return False
        log.warning("%s: ignored %r, not a plain folder name", self._uri(folder), name)
        return True

    def _uri(self, path: str) -> str:
        parsed = urlparse(self.uri)
        return f"{parsed.scheme}://{parsed.netloc}{path}"


READ_AHEAD = 4  # chunks read and hashed ahead of the socket: at most (READ_AHEAD + 2) x CHUNK in memory


@contextlib.contextmanager
def _read_ahead(reader: HashingReader, advance: Callable[[int], None]) -> Iterator[Iterator[bytes]]:
    """The chunks of ``reader``, read (and so hashed) by a helper thread while the previous ones are sent:
    sha256 and the socket overlap instead of taking turns. The bytes sent are the bytes hashed, in order.
    Leaving the block stops the helper (it never outlives the write, also when the write fails)."""
    chunks: queue.Queue = queue.Queue(READ_AHEAD)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                chunks.put(item, timeout=0.1)
                return True
        return False

    def produce() -> None:
        try:
            while not stop.is_set() and (chunk := reader.read(CHUNK)):
                if not put(chunk):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the sending thread
            put(exc)

    def consume() -> Iterator[bytes]:
        clock = current_clock()  # sent on the writing thread, inside its operation
        while (item := chunks.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            if clock is not None and clock.expired():
                raise OutOfTime("the file's upload did not finish within the deadline")
            advance(len(item))
            yield item

    helper = threading.Thread(target=produce, name="modelgov-hdfs-read", daemon=True)
    helper.start()
    try:
        yield consume()
    finally:
        stop.set()
        helper.join()

