"""Input and output locations of a scoring run, through Hadoop's FileSystem in Spark's own JVM.

``file://`` and ``hdfs://NAMENODE:RPC_PORT`` paths mean to Spark what they mean to Hadoop; ``s3://BUCKET/KEY`` is
read and written through S3A (``s3a://``, see ``governance.spark.session``). A run's output is written under a
temporary sibling and renamed into place once complete (atomic on HDFS and local files), so a reader never sees
part of it and a failed run leaves nothing at the output. S3 has no rename: S3A copies each object and deletes
the temporary one, so on S3 an output folder appears object by object (each object whole) during the commit,
and readers should wait for its ``_SUCCESS`` marker, which Spark writes last and S3A copies in name order
after the ``part-`` files.

Each location's exact version is recorded: the sha256 of a local file (of the sorted list of (file, sha256) for
a folder), HDFS's own file checksum (combined the same way for a folder), an S3 object's versionId (ETag where
the bucket keeps no versions; for a folder, the sha256 of the sorted (key, versionId, ETag) list).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from governance.checksums import hash_file
from governance.spark.session import hadoop_uri
from governance.staging.data_versions import DataVersion


@dataclass(frozen=True)
class Listed:
    path: str
    size: int
    modified_ms: int


class SparkStorage:
    """Hadoop FileSystem calls for one session (py4j into the driver's JVM)."""

    def __init__(self, spark):
        self._spark = spark
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        path = self._jvm.org.apache.hadoop.fs.Path(hadoop_uri(uri))
        return path, path.getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.exists(path))

    def rename(self, src: str, dst: str) -> bool:
        source, fs = self._path(src)
        return bool(fs.rename(source, self._jvm.org.apache.hadoop.fs.Path(hadoop_uri(dst))))

    def delete(self, uri: str) -> None:
        path, fs = self._path(uri)
        if fs.exists(path):
            fs.delete(path, True)

    def files(self, uri: str) -> list[Listed]:
        path, fs = self._path(uri)
        out = []
        listing = fs.listFiles(path, True)
        while listing.hasNext():
            status = listing.next()
            name = status.getPath().getName()
            if name.startswith(("_", ".")):  # _SUCCESS, .crc files: not data
                continue
            out.append(Listed(status.getPath().toString(), int(status.getLen()), int(status.getModificationTime())))
        return sorted(out, key=lambda f: f.path)

    def version(self, uri: str) -> DataVersion:
        """The exact version of the data at ``uri`` as a DataVersion (kind sha256, hdfs_checksum, s3_version_id,
        s3_versions or modification_time)."""
        if urlparse(uri).scheme in ("s3", "s3a"):
            return s3_version(uri)
        files = self.files(uri)
        if urlparse(uri).scheme in ("", "file"):
            digests = [(f.path, hash_file(Path(urlparse(f.path).path))[0]) for f in files]
            kind = "sha256"
        else:
            digests = [(f.path, self._checksum(f.path, f)) for f in files]
            kind = "hdfs_checksum" if urlparse(uri).scheme == "hdfs" else "modification_time"
        if self._is_file(uri):
            version = digests[0][1]
        else:
            version = hashlib.sha256("\n".join(f"{p}\t{d}" for p, d in digests).encode()).hexdigest()
        return DataVersion(entry=uri, location=uri, version=version, kind=kind)

    def _is_file(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.getFileStatus(path).isFile())

    def _checksum(self, uri: str, listed: Listed) -> str:
        path, fs = self._path(uri)
        checksum = fs.getFileChecksum(path)
        if checksum is None:  # a store without checksums: its length and modification time
            return f"{listed.size}@{listed.modified_ms}"
        return str(checksum.toString())


def s3_version(uri: str) -> DataVersion:
    """The S3 object's versionId, or, for a prefix (a folder Spark wrote), the sha256 of its objects' sorted
    (key, versionId, ETag): read with modelgov's S3 client (its endpoint, CA bundle, timeouts and retries)."""
    from governance.registries.s3 import make_client

    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    client = make_client()
    prefix = key.rstrip("/")
    latest: list[tuple[str, str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Versions", []):
            name = item["Key"]
            if not item.get("IsLatest") or not (name == prefix or name.startswith(prefix + "/")):
                continue
            if name.rsplit("/", 1)[-1].startswith(("_", ".")):  # _SUCCESS: not data
                continue
            latest.append((name, str(item.get("VersionId") or "null"), str(item.get("ETag", "")).strip('"')))
    latest.sort()
    if len(latest) == 1 and latest[0][0] == prefix and latest[0][1] != "null":
        return DataVersion(entry=uri, location=uri, version=latest[0][1], kind="s3_version_id")
    text = "\n".join(f"{name}\t{version}\t{etag}" for name, version, etag in latest)
    return DataVersion(entry=uri, location=uri, version=hashlib.sha256(text.encode()).hexdigest(), kind="s3_versions")
