"""``s3://bucket/prefix``: a registry in any S3 implementation (AWS, Ceph radosgw, MinIO, moto).

Endpoint, region and credentials come from boto3's standard sources (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``~/.aws/config``, instance roles);
path-style addressing is used whenever an endpoint URL is set, which S3-compatible servers need.

S3 has no folder rename, so the commit is the manifest itself, written last with ``IfNoneMatch="*"``: of two
concurrent publishers exactly one manifest wins (412 for the other). sha256 is computed client-side while
streaming (servers such as radosgw ignore SHA256 checksum headers) and kept in the manifest and in the
``x-amz-meta-sha256`` metadata of every object.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from governance.checksums import CHUNK, HashingReader
from governance.errors import (
    ConfigError,
    ImmutableVersionError,
    IntegrityError,
    RegistryError,
    RegistryUnavailable,
)
from governance.progress import copy_progress
from governance.registries.base import MANIFEST_NAME, Manifest, Registry, RegistryVersion, open_staged
from governance.staging.repo import StagedRepo

MiB = 1024 * 1024
# A non-seekable (hashing) stream is buffered part by part: at most max_in_memory_upload_chunks parts of
# multipart_chunksize are held, so memory stays near 8 MiB x 8 whatever the file size (bench/ checks it).
TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=8,
                          use_threads=True, preferred_transfer_client="classic")
TRANSFER.max_in_memory_upload_chunks = 8  # an s3transfer setting boto3's constructor does not expose
SERVER_SIDE = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "500", "503"}
DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403"}


def _endpoint_url() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def make_client(endpoint_url: str | None = None):
    """An S3 client with connect/read timeouts, bounded retries and path-style addressing for custom endpoints."""
    endpoint_url = endpoint_url or _endpoint_url()
    config = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"},
                    s3={"addressing_style": "path"} if endpoint_url else None)
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


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
        self.client = client or make_client(endpoint_url)

    def _key(self, name: str, version: str, path: str = "") -> str:
        parts = [p for p in (self.prefix, name, version, path) if p]
        return "/".join(parts)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """ClientError/BotoCoreError -> RegistryError naming the bucket and key (never the credentials)."""
        where = f"s3://{self.bucket}/{key}"
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise RegistryError(f"S3 {action} {where}: bucket {self.bucket!r} does not exist") from exc
            if code in DENIED:
                raise RegistryError(f"S3 {action} {where}: access denied ({code}); check AWS_ACCESS_KEY_ID/"
                                    f"AWS_SECRET_ACCESS_KEY and the bucket policy") from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            error = RegistryUnavailable if status >= 500 or code in SERVER_SIDE else RegistryError
            raise error(f"S3 {action} {where} failed: {code or exc}") from exc
        except BotoCoreError as exc:  # connection errors, timeouts: botocore's own retries are exhausted
            raise RegistryUnavailable(f"S3 {action} {where} failed: {exc}") from exc

    # -- Registry API ------------------------------------------------------------------------------------
    def lookup(self, name: str, version: str) -> RegistryVersion | None:
        key = self._key(name, version, MANIFEST_NAME)
        try:
            with self._errors("read", key):
                body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except RegistryError as exc:
            if isinstance(exc.__cause__, ClientError) and _code(exc.__cause__) in ("NoSuchKey", "404"):
                return None
            raise
        manifest = Manifest.parse(body.decode("utf-8", errors="replace"), f"s3://{self.bucket}/{key}")
        return RegistryVersion(self.uri, self.version_location(name, version), manifest, created=False)

    def publish(self, staged: StagedRepo, *, progress: bool = False) -> RegistryVersion:
        meta = staged.metadata
        location = self.version_location(meta.name, meta.version)
        found = self.existing_version(staged)
        if found:
            return found
        total = sum(f.size for f in staged.files)
        with copy_progress(total, f"publish {meta.name} {meta.version}", enabled=progress) as advance:
            for f in staged.files:
                self._upload(staged, f.path, f.sha256, self._key(meta.name, meta.version, f.path), advance)
        self._drop_stale(meta.name, meta.version, {f.path for f in staged.files})
        manifest = Manifest.for_staged(staged)
        return self._commit(manifest, staged, location)

    def _upload(self, staged: StagedRepo, rel: str, expected_sha: str, key: str, advance) -> None:
        """One streaming (multipart above 8 MiB) upload; the file is read once, hashed as it goes."""
        raw = open_staged(staged, rel)
        with raw, self._errors("upload to", key):
            reader = HashingReader(raw)
            self.client.upload_fileobj(reader, self.bucket, key, Config=TRANSFER, Callback=advance,
                                       ExtraArgs={"Metadata": {"sha256": expected_sha}})
        if reader.sha256 != expected_sha:
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.delete_object(Bucket=self.bucket, Key=key)
            raise IntegrityError(f"{staged.root / rel} changed after validation (sha256 {reader.sha256}, expected {expected_sha}); "
                                 f"not published to s3://{self.bucket}/{key}")

    def _drop_stale(self, name: str, version: str, keep: set[str]) -> None:
        """Remove objects an earlier, incomplete attempt left that are not part of this version."""
        base = self._key(name, version) + "/"
        stale = []
        with self._errors("list", base):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                stale += [o["Key"] for o in page.get("Contents", []) if o["Key"][len(base):] not in keep]
        for start in range(0, len(stale), 1000):
            with self._errors("delete stale objects under", base):
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in stale[start:start + 1000]], "Quiet": True})

    def _commit(self, manifest: Manifest, staged: StagedRepo, location: str) -> RegistryVersion:
        key = self._key(manifest.model_name, manifest.model_version, MANIFEST_NAME)
        body = manifest.to_json().encode()
        try:
            with self._errors("write manifest", key):
                self.client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*",
                                       ContentType="application/json",
                                       Metadata={"sha256": hashlib.sha256(body).hexdigest()})
        except RegistryError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ClientError) and _code(cause) in ("PreconditionFailed", "412")):
                raise
            # another publisher committed first: identical bytes are fine, anything else is refused
            try:
                found = self.existing_version(staged)
            except ImmutableVersionError as refused:
                # S3 has no folder rename: our data objects may have replaced the winner's during the race
                raise ImmutableVersionError(f"{refused}; a concurrent publisher committed first while this one "
                                            f"was uploading: run verify on {location}") from exc
            if found:
                return found
            raise RegistryError(f"s3://{self.bucket}/{key}: conditional write refused but no manifest found") from exc
        return RegistryVersion(self.uri, location, manifest, created=True)

    def open_artifact(self, version: RegistryVersion, path: str) -> Iterator[bytes]:
        m = version.manifest
        key = self._key(m.model_name, m.model_version, path)
        with self._errors("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()
