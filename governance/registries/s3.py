"""``s3://bucket/prefix``: a registry in any S3 implementation (AWS, Ceph radosgw, MinIO, moto).

Endpoint, region and credentials come from boto3's standard sources (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``, instance roles);
path-style addressing is used whenever an endpoint URL is set, which S3-compatible servers need.

Every operation (a manifest read, one file's put, the commit, a verify read, a listing) has one total deadline,
``MODELGOV_S3_DEADLINE`` seconds (``governance.deadlines``), retries included. botocore's retries are the one
retry layer: at most ``ATTEMPTS`` attempts, each with timeouts cut to a share of the deadline, and a
``before-send`` hook refuses to start an attempt once the operation's clock has run out.

S3 has no folder rename, so every publish attempt uploads under its own prefix
``<name>/<version>/attempt-<id>/`` and the commit is the manifest ``<name>/<version>/MANIFEST.json``, written
last with ``IfNoneMatch="*"`` and naming its attempt as ``data_dir``: of two concurrent publishers exactly
one manifest wins (412 for the other), and no publisher ever writes or deletes an object of another's
attempt, so the committed version always verifies. sha256 is computed client-side while streaming
(servers such as radosgw ignore SHA256 checksum headers) and kept in the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import urlparse

import boto3
import botocore.session
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from governance.checksums import CHUNK, ArtifactFile, HashingReader
from governance.deadlines import (
    DEFAULT_S3_DEADLINE,
    S3_DEADLINE_ENV,
    Clock,
    current_clock,
    deadline_from_env,
    running,
)
from governance.errors import ConfigError, RegistryDeadlineExceeded, RegistryError, RegistryUnavailable
from governance.paths import path_problem
from governance.registries.base import (
    APPROVALS_FOLDER,
    MANIFEST_NAME,
    Attempt,
    Leftover,
    Manifest,
    Registry,
    new_attempt_id,
)

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# A non-seekable (hashing) stream is buffered part by part: at most max_in_memory_upload_chunks parts of
# multipart_chunksize are held, so memory stays near 8 MiB x 6 whatever the file size (bench.registry checks
# the peak RSS of a 1 GiB publish: 151 MB with 8 parts in memory, 130 MB with 6, for the same throughput).
TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=8,
                          use_threads=True, preferred_transfer_client="classic")
TRANSFER.max_in_memory_upload_chunks = 6  # an s3transfer setting boto3's constructor does not expose
ATTEMPT_PREFIX = "attempt-"
SERVER_SIDE = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "500", "503"}
DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403"}


def _endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


_LOADER = None
_LOADER_LOCK = threading.Lock()


def _session() -> boto3.session.Session:
    """A fresh session (credentials, region and endpoint read anew from the environment each time) sharing one
    botocore data loader: parsing the service model and endpoint JSON again cost 0.2-0.3 s per registry."""
    global _LOADER
    core = botocore.session.get_session()
    session = boto3.session.Session(botocore_session=core)  # (adds boto3's data folder to the loader it sees)
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _LOADER)
    return session


ATTEMPTS = 3  # botocore's total attempts per request (first + retries): the only retry layer for S3


class _OutOfTime(Exception):
    """Raised inside botocore (from the hook, or a part read) once the operation's deadline has passed; not a
    botocore error, so botocore does not retry it."""


def _check_clock(**_: object) -> None:
    clock = current_clock()  # the running operation's, seen by the before-send hook on the same thread
    if clock is not None and clock.expired():
        raise _OutOfTime()


def s3_deadline() -> float:
    """Seconds for one S3 operation, retries included (``MODELGOV_S3_DEADLINE``)."""
    return deadline_from_env(S3_DEADLINE_ENV, DEFAULT_S3_DEADLINE)


def make_client(endpoint_url: str | None = None, deadline: float | None = None):
    """An S3 client with timeouts, one bounded retry layer and path-style addressing for custom endpoints.

    Each attempt's connect and read timeouts are at most a third of the deadline (``ATTEMPTS`` attempts), so
    the attempts of one request fit in it; a read timeout bounds each socket read, not a whole transfer."""
    endpoint_url = endpoint_url or _endpoint_url()
    share = (deadline or s3_deadline()) / ATTEMPTS
    config = Config(connect_timeout=min(5.0, share), read_timeout=min(60.0, share),
                    retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint_url else None, **_checksums(endpoint_url))
    from governance.tls import tls_settings

    tls = tls_settings()  # the company's CA bundle, as for every client (None: botocore's own, AWS_CA_BUNDLE)
    if tls.insecure:
        log.warning("TLS certificate verification is OFF for S3 %s", endpoint_url or "(AWS)")
    client = _session().client("s3", endpoint_url=endpoint_url, config=config, verify=tls.boto_verify)
    client.meta.events.register("before-send.s3", _check_clock)
    return client


def _checksums(endpoint_url: str | None) -> dict[str, str]:
    """botocore (1.36+) sends every upload as ``aws-chunked`` with a trailing CRC32 over HTTPS, which
    S3-compatible servers before that change refuse (Ceph 16 radosgw: ``MissingContentLength``). For a custom
    endpoint, checksums only where the API requires them, unless ``AWS_REQUEST_CHECKSUM_CALCULATION`` says
    otherwise; the bytes are still checked end to end against the manifest's sha256 (``read_verified``)."""
    if not endpoint_url or os.environ.get("AWS_REQUEST_CHECKSUM_CALCULATION"):
        return {}
    return {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Registry(Registry):
    scheme = "s3"

    def __init__(self, uri: str, *, client=None, endpoint_url: str | None = None):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"S3 registry URI must look like s3://bucket/prefix, got {uri!r}")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        super().__init__(f"s3://{self.bucket}/{self.prefix}".rstrip("/"))
        self.deadline = s3_deadline()
        self.endpoint = endpoint_url or _endpoint_url() or "AWS S3"
        self.client = client or make_client(endpoint_url, self.deadline)

    def _key(self, name: str, version: str, path: str = "") -> str:
        parts = [p for p in (self.prefix, name, version, path) if p]
        return "/".join(parts)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str, clock: Clock | None = None) -> Iterator[Clock]:
        """One operation under its deadline; ClientError/BotoCoreError -> RegistryError naming the bucket and
        key (never the credentials), and any failure after the deadline -> RegistryDeadlineExceeded."""
        where = f"s3://{self.bucket}/{key}"
        clock = clock or Clock(self.deadline)
        try:
            with running(clock):
                yield clock
        except (_OutOfTime, ClientError, BotoCoreError) as exc:
            if isinstance(exc, _OutOfTime) or clock.expired():
                raise RegistryDeadlineExceeded(f"S3 {action} {where}", self.endpoint, clock.deadline,
                                               clock.waited(), S3_DEADLINE_ENV) from exc
            raise self._translate(action, where, exc) from exc

    def _translate(self, action: str, where: str, exc: ClientError | BotoCoreError) -> RegistryError:
        if isinstance(exc, BotoCoreError):  # connection errors, timeouts: botocore's retries are exhausted
            return RegistryUnavailable(f"S3 {action} {where} failed: {exc}")
        code = _code(exc)
        if code == "NoSuchBucket":
            return RegistryError(f"S3 {action} {where}: bucket {self.bucket!r} does not exist")
        if code in DENIED:
            return RegistryError(f"S3 {action} {where}: access denied ({code}); check AWS_ACCESS_KEY_ID/"
                                 f"AWS_SECRET_ACCESS_KEY and the bucket policy")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        error = RegistryUnavailable if status >= 500 or code in SERVER_SIDE else RegistryError
        return error(f"S3 {action} {where} failed: {code or exc}")

    # -- primitives ----------------------------------------------------------------------------------------
    def _read_manifest(self, name: str, version: str) -> tuple[str, str] | None:
        key = self._key(name, version, MANIFEST_NAME)
        try:
            with self._errors("read", key):
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except RegistryError as exc:
            if isinstance(exc.__cause__, ClientError) and _code(exc.__cause__) in ("NoSuchKey", "404"):
                return None
            raise
        return body.decode("utf-8", errors="replace"), f"s3://{self.bucket}/{key}"

    def _begin(self, name: str, version: str) -> Attempt:
        attempt_id = new_attempt_id()
        data_dir = f"{ATTEMPT_PREFIX}{attempt_id}"
        return Attempt(name, version, attempt_id, self._key(name, version, data_dir), data_dir)

    def _put(self, attempt: Attempt, file: ArtifactFile, reader: HashingReader,
             advance: Callable[[int], None]) -> None:
        """One streaming (multipart above 8 MiB) upload into the attempt's own prefix, read once.

        Progress advances as parts are read, not through boto3's ``Callback``: that one runs for every
        socket write (8 KiB) of every part, tens of thousands of Python calls per 256 MiB."""
        key = f"{attempt.where}/{file.path}"
        if file.size < TRANSFER.multipart_threshold:  # one request, no transfer manager and its thread pool
            data = reader.read(TRANSFER.multipart_threshold)
            advance(len(data))
            with self._errors("upload to", key):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata={"sha256": file.sha256})
            return  # a file that changed size since validation fails _stage_file's size/sha256 check
        with self._errors("upload to", key) as clock:  # part reads check the clock; parts run in s3transfer's threads
            self.client.upload_fileobj(_Advancing(reader, advance, clock), self.bucket, key, Config=TRANSFER,
                                       ExtraArgs={"Metadata": {"sha256": file.sha256}})

    def _commit(self, attempt: Attempt, manifest: bytes) -> bool:
        # False: a manifest exists: another publisher (or our own retried write) committed
        return self._create_only(self._key(attempt.name, attempt.version, MANIFEST_NAME), manifest, "write manifest")

    def _put_once(self, name: str, rel: str, data: bytes) -> bool:
        return self._create_only("/".join(p for p in (self.prefix, name, rel) if p), data, "write")

    def _create_only(self, key: str, data: bytes, action: str) -> bool:
        """One PUT with ``IfNoneMatch="*"``: the object is created whole, or refused (412: it exists; False)."""
        try:
            with self._errors(action, key):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*",
                                       ContentType="application/json",
                                       Metadata={"sha256": hashlib.sha256(data).hexdigest()})
        except RegistryError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in ("PreconditionFailed", "412"):
                return False
            raise
        return True

    def _list_names(self, name: str, rel: str) -> list[str]:
        prefix = "/".join(p for p in (self.prefix, name, rel) if p) + "/"
        names = []
        with self._errors("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix,
                                                                              Delimiter="/"):
                names += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
        return names

    def _abandon(self, attempt: Attempt) -> None:
        self._delete_prefix(attempt.where + "/")

    def _delete_prefix(self, prefix: str) -> None:
        keys = []
        with self._errors("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            with self._errors("delete", prefix):
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})
        with self._errors("list uploads under", prefix):
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=prefix).get("Uploads", [])
        for upload in uploads:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])

    def _open(self, name: str, version: str, path: str) -> Iterator[bytes]:
        key = self._key(name, version, path)
        with self._errors("read", key) as clock:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:  # the body is read under the same clock, one chunk at a time (never with the clock set across a yield)
            chunks = body.iter_chunks(CHUNK)
            while True:
                with self._errors("read", key, clock):
                    chunk = next(chunks, b"")
                    if clock.expired():
                        raise _OutOfTime()
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    # -- gc ------------------------------------------------------------------------------------------------
    def _version_of(self, key: str) -> tuple[str, str, str] | None:
        """(name, version, rest) of a key under the registry prefix, None for keys outside the layout."""
        rel = key[len(self.prefix) + 1:] if self.prefix else key
        parts = rel.split("/", 2)
        if len(parts) != 3 or not parts[2]:
            return None
        if path_problem(rel):
            # a key that climbs (``..``), has an empty or control-character segment: not one a publish
            # writes, and acting on it (a lookup, a delete) could address objects outside the registry
            log.warning("s3://%s/%s: ignored, its key is not a plain path under the registry", self.bucket, key)
            return None
        return parts[0], parts[1], parts[2]

    def _leftovers(self) -> Iterator[Leftover]:
        base = f"{self.prefix}/" if self.prefix else ""
        groups: dict[tuple[str, str, str], datetime] = {}
        folders: set[tuple[str, str, str]] = set()
        with self._errors("list", base or "/"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for obj in page.get("Contents", []):
                    split = self._version_of(obj["Key"])
                    if split is None:
                        continue
                    name, version, rest = split
                    top = rest.split("/", 1)[0]
                    if top == MANIFEST_NAME or version == APPROVALS_FOLDER:
                        continue
                    group = (name, version, top)
                    if "/" in rest:
                        folders.add(group)
                    groups[group] = max(groups.get(group, obj["LastModified"]), obj["LastModified"])
        committed: dict[tuple[str, str], Manifest | None] = {}
        for (name, version, top), modified in sorted(groups.items()):
            if (name, version) not in committed:
                found = self.lookup(name, version)
                committed[(name, version)] = found.manifest if found else None
            manifest = committed[(name, version)]
            if manifest is not None and _belongs(manifest, top):
                continue
            kind = ("abandoned publish attempt" if top.startswith(ATTEMPT_PREFIX)
                    else "object outside any committed version")
            folder = (name, version, top) in folders
            yield Leftover(kind, f"s3://{self.bucket}/{self._key(name, version, top)}{'/' if folder else ''}",
                           modified, ("prefix" if folder else "key", name, version, top))
        with self._errors("list uploads under", base or "/"):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                      Prefix=base):
                for upload in page.get("Uploads", []):
                    yield Leftover("incomplete multipart upload", f"s3://{self.bucket}/{upload['Key']}",
                                   upload["Initiated"], ("upload", upload["Key"], upload["UploadId"]))

    def _remove(self, leftover: Leftover) -> None:
        kind, *rest = leftover.handle  # type: ignore[misc]
        if kind == "upload":
            key, upload_id = rest
            with self._errors("abort upload", key), contextlib.suppress(ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            return
        name, version, top = rest
        found = self.lookup(name, version)  # re-read: never remove what a commit made part of a version
        if found is not None and _belongs(found.manifest, top):
            return
        if kind == "prefix":
            self._delete_prefix(self._key(name, version, top) + "/")
        else:
            with self._errors("delete", self._key(name, version, top)):
                self.client.delete_object(Bucket=self.bucket, Key=self._key(name, version, top))


class _Advancing(io.RawIOBase):
    """A non-seekable reader that reports every read to ``advance`` (part-sized reads in s3transfer)."""

    def __init__(self, reader: HashingReader, advance: Callable[[int], None], clock: Clock | None = None):
        self._reader = reader
        self._advance = advance
        self._clock = clock

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._clock is not None and self._clock.expired():
            raise _OutOfTime()  # fails the transfer: no more parts are read or sent
        data = self._reader.read(n)
        self._advance(len(data))
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _belongs(manifest: Manifest, top: str) -> bool:
    """Whether objects under ``top`` (first path part inside the version folder) are the committed files."""
    if manifest.data_dir:
        return top == manifest.data_dir.split("/", 1)[0]
    return any(f.path.split("/", 1)[0] == top for f in manifest.files)
