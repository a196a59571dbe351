"""``hdfs://nn[:port][,nn2[:port]]/path`` (also ``webhdfs://``): a registry on HDFS through WebHDFS.

The port is the namenode HTTP port (9870 on Hadoop 3). Several namenodes make an HA pair: the ``hdfs``
client rotates to the next one on connection errors and on a StandbyException answer.
Publish = stream every file into a temporary folder, write MANIFEST.json there last, then RENAME the folder
into place; HDFS renames are atomic, and RENAME answers ``{"boolean": false}`` (no error) when another
publisher got there first. sha256 lives in the manifest: HDFS's own GETFILECHECKSUM is not a content hash.

Environment: ``MODELGOV_HDFS_USER`` or ``HADOOP_USER_NAME`` (simple auth user), ``MODELGOV_HDFS_AUTH``
(``simple`` default, or ``kerberos``, which needs the ``kerberos`` extra: requests-kerberos).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import posixpath
import uuid
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

import requests
from hdfs import Client, HdfsError, InsecureClient

from governance.checksums import CHUNK, HashingReader
from governance.errors import ConfigError, IntegrityError, RegistryError, RegistryUnavailable
from governance.http import build_session
from governance.progress import copy_progress
from governance.registries.base import MANIFEST_NAME, Manifest, Registry, RegistryVersion, open_staged
from governance.staging.repo import StagedRepo

DEFAULT_PORT = 9870
TIMEOUT = (5.0, 120.0)  # (connect, read) seconds for every WebHDFS call
FILE_PERMISSION = "644"  # octal strings: an int 0o644 would be sent as "420" and refused (§4.6)
DIR_PERMISSION = "755"


def _namenodes(uri: str) -> tuple[list[str], str]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("hdfs", "webhdfs"):
        raise ConfigError(f"HDFS registry URI must start with hdfs:// or webhdfs://, got {uri!r}")
    hosts = [h.strip() for h in parsed.netloc.split(",") if h.strip()]
    if not hosts:
        raise ConfigError(f"HDFS registry URI {uri!r} names no namenode (hdfs://namenode:9870/path)")
    urls = []
    for host in hosts:
        name, _, port = host.rpartition(":") if ":" in host else (host, "", str(DEFAULT_PORT))
        if not port.isdigit():
            raise ConfigError(f"HDFS registry URI {uri!r}: bad namenode port in {host!r}")
        urls.append(f"http://{name}:{port}")
    root = posixpath.normpath(unquote(parsed.path or ""))
    if not root.startswith("/") or root == "/":
        raise ConfigError(f"HDFS registry URI {uri!r} needs an absolute folder, e.g. hdfs://nn:9870/models")
    return urls, root


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
        try:
            from hdfs.ext.kerberos import KerberosClient
        except ImportError as exc:
            raise ConfigError("MODELGOV_HDFS_AUTH=kerberos needs requests-kerberos: "
                              "pip install 'model-governance[kerberos]' (and apt-get install libkrb5-dev)") from exc
        return KerberosClient(url, mutual_auth="OPTIONAL", session=session, timeout=TIMEOUT)
    raise ConfigError(f"MODELGOV_HDFS_AUTH={auth!r} is not supported; use 'simple' or 'kerberos'")


class HdfsRegistry(Registry):
    scheme = "hdfs"

    def __init__(self, uri: str):
        self.namenodes, self.root = _namenodes(uri)
        super().__init__(uri.rstrip("/"))
        self.client = _client(self.namenodes)

    # -- errors ------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, action: str, path: str) -> Iterator[None]:
        """Turn client/HTTP failures into RegistryError naming the path and the namenodes."""
        try:
            yield
        except HdfsError as exc:
            # a datanode relays the namenode's exception with its Java stack trace: keep the first line
            message = str(exc).split("\n\tat ", 1)[0].strip()
            if message.endswith("(is not a directory)"):
                # a file where a folder belongs; HDFS calls it AccessControlException (or
                # ParentNotDirectoryException), which reads like a permission problem
                blocker = message.removesuffix("(is not a directory)").strip()
                raise RegistryError(f"{blocker} exists on HDFS and is not a folder; cannot {action} {path} "
                                    f"on {', '.join(self.namenodes)}") from exc
            kind = f" ({exc.exception})" if getattr(exc, "exception", None) else ""
            raise RegistryError(f"HDFS {action} {path} on {', '.join(self.namenodes)} failed{kind}: {message}") from exc
        except requests.RequestException as exc:
            raise RegistryUnavailable(f"HDFS {action} {path}: namenode/datanode unreachable "
                                f"({', '.join(self.namenodes)}): {exc}") from exc

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

    # -- Registry API ------------------------------------------------------------------------------------
    def lookup(self, name: str, version: str) -> RegistryVersion | None:
        path = posixpath.join(self._dir(name, version), MANIFEST_NAME)
        status = self._status(path)
        if status is None or status["type"] != "FILE":
            return None
        with self._errors("read", path), self.client.read(path) as reader:
            text = reader.read().decode("utf-8")
        return RegistryVersion(self.uri, self.version_location(name, version), Manifest.parse(text, path),
                               created=False)

    def publish(self, staged: StagedRepo, *, progress: bool = False) -> RegistryVersion:
        meta = staged.metadata
        final = self._dir(meta.name, meta.version)
        location = self.version_location(meta.name, meta.version)
        found = self.existing_version(staged)
        if found:
            return found
        parent = posixpath.dirname(final)
        with self._errors("mkdirs", parent):
            self.client.makedirs(parent, permission=DIR_PERMISSION)
        tmp = posixpath.join(parent, f".{meta.version}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            total = sum(f.size for f in staged.files)
            with copy_progress(total, f"publish {meta.name} {meta.version}", enabled=progress) as advance:
                for f in staged.files:
                    self._upload(staged, f.path, f.sha256, posixpath.join(tmp, f.path), advance)
            manifest = Manifest.for_staged(staged)
            manifest_path = posixpath.join(tmp, MANIFEST_NAME)
            with self._errors("write", manifest_path):
                self.client.write(manifest_path, data=manifest.to_json().encode(), permission=FILE_PERMISSION)
            return self._commit(tmp, final, staged, manifest, location)
        finally:
            with contextlib.suppress(RegistryError, HdfsError, requests.RequestException):
                self.client.delete(tmp, recursive=True)  # no-op after a successful rename

    def _upload(self, staged: StagedRepo, rel: str, expected_sha: str, dst: str, advance) -> None:
        """Stream one file (chunked transfer, bounded memory), hashing as it goes; check sha256 and length."""
        raw = open_staged(staged, rel)
        with raw:
            reader = HashingReader(raw)

            def chunks() -> Iterator[bytes]:
                while chunk := reader.read(CHUNK):
                    advance(len(chunk))
                    yield chunk

            with self._errors("write", dst):
                self.client.write(dst, data=chunks(), permission=FILE_PERMISSION)
        if reader.sha256 != expected_sha:
            raise IntegrityError(f"{staged.root / rel} changed after validation (sha256 {reader.sha256}, expected {expected_sha}); "
                                 f"not published to {self.uri}")
        status = self._status(dst)
        if status is None or status["length"] != reader.size:
            raise RegistryError(f"{dst} holds {status and status['length']} bytes after writing {reader.size}")

    def _commit(self, tmp: str, final: str, staged: StagedRepo, manifest: Manifest,
                location: str) -> RegistryVersion:
        """RENAME the finished temp folder into place; an incomplete folder (no manifest) is replaced."""
        status = self._status(final)
        if status is not None and status["type"] != "DIRECTORY":
            raise RegistryError(f"{final} exists on HDFS and is not a folder; cannot publish there")
        if status is not None and self.lookup(manifest.model_name, manifest.model_version) is None:
            with self._errors("delete incomplete version", final):
                self.client.delete(final, recursive=True)
        with self._errors("rename", f"{tmp} -> {final}"):
            # the low-level op: client.rename() would turn the false answer into a generic HdfsError
            moved = self.client._rename(tmp, destination=final).json()["boolean"]
        if moved:
            nested = posixpath.join(final, posixpath.basename(tmp))
            if self._status(nested) is None:
                return RegistryVersion(self.uri, location, manifest, created=True)
            with self._errors("delete", nested):
                self.client.delete(nested, recursive=True)
        # RENAME said false (destination appeared) or moved tmp *inside* a folder created meanwhile:
        # another publisher won; compare with what it committed
        found = self.existing_version(staged)
        if found:
            return found
        raise RegistryError(f"{final} appeared while publishing but has no manifest; retry the publish")

    def open_artifact(self, version: RegistryVersion, path: str) -> Iterator[bytes]:
        m = version.manifest
        target = posixpath.join(self._dir(m.model_name, m.model_version), path)
        with self._errors("read", target), self.client.read(target, chunk_size=CHUNK) as chunks:
            yield from chunks
