"""sha256 while streaming: every byte is hashed as it is read, so a file is read once per copy."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ArtifactFile:
    """One file of a model version: path relative to the version root (POSIX), sha256 hex, size in bytes."""

    path: str
    sha256: str
    size: int

    def to_dict(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: dict) -> ArtifactFile:
        return cls(path=str(data["path"]), sha256=str(data["sha256"]), size=int(data["size"]))


class HashingReader(io.RawIOBase):
    """Wraps a binary stream; hashes and counts what is read through it (for boto3, requests, shutil)."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.size += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 hex and size of a local file."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def iter_chunks(fh: BinaryIO, chunk: int = CHUNK) -> Iterator[bytes]:
    yield from iter(lambda: fh.read(chunk), b"")
