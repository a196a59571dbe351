"""The emulated HDFS namespace: files on disk under a root folder, owners and permissions in memory.

Errors are ``RemoteError`` carrying Hadoop's exception name, Java class and HTTP status (§4.4), so the
HTTP layer only serialises them.
"""

from __future__ import annotations

import itertools
import posixpath
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from emulators.webhdfs.checksum import file_checksum

SUPERUSER = "hdfs"
SUPERGROUP = "supergroup"
DEFAULT_BLOCK_SIZE = 128 * 1024 * 1024
DEFAULT_REPLICATION = 3

_JAVA: dict[str, tuple[str, int]] = {
    "FileNotFoundException": ("java.io.FileNotFoundException", 404),
    "FileAlreadyExistsException": ("org.apache.hadoop.fs.FileAlreadyExistsException", 403),
    "AccessControlException": ("org.apache.hadoop.security.AccessControlException", 403),
    "PathIsNotEmptyDirectoryException": ("org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", 403),
    "ParentNotDirectoryException": ("org.apache.hadoop.fs.ParentNotDirectoryException", 403),
    "StandbyException": ("org.apache.hadoop.ipc.StandbyException", 403),
    "DSQuotaExceededException": ("org.apache.hadoop.hdfs.protocol.DSQuotaExceededException", 403),
    "DiskErrorException": ("org.apache.hadoop.util.DiskChecker$DiskErrorException", 403),
    "IOException": ("java.io.IOException", 403),
    "IllegalArgumentException": ("java.lang.IllegalArgumentException", 400),
    "InvalidPathException": ("org.apache.hadoop.fs.InvalidPathException", 400),
    "UnsupportedOperationException": ("java.lang.UnsupportedOperationException", 400),
}


class RemoteError(Exception):
    """A Hadoop exception as WebHDFS reports it: ``{"RemoteException": {...}}`` with the mapped status."""

    def __init__(self, exception: str, message: str):
        super().__init__(message)
        self.exception = exception
        self.message = message
        self.java_class, self.status = _JAVA.get(exception, (f"java.io.{exception}", 500))

    def body(self) -> dict:
        return {"RemoteException": {"exception": self.exception, "javaClassName": self.java_class,
                                    "message": self.message}}


@dataclass
class Meta:
    owner: str
    group: str
    permission: str
    file_id: int
    replication: int = DEFAULT_REPLICATION
    block_size: int = DEFAULT_BLOCK_SIZE


def parse_permission(value: str | None, default: str) -> str:
    """Permission is radix-8 in 0..1777; ``493`` (a Python int 0o755 printed in decimal) is rejected."""
    if value is None or value == "":
        return default
    if not value.isdigit() or any(c in "89" for c in value):
        raise RemoteError("IllegalArgumentException",
                          f'Invalid value for webhdfs parameter "permission": java.lang.IllegalArgumentException: '
                          f'Failed to parse "{value}" as a radix-8 short integer.')
    if int(value, 8) > 0o1777:
        raise RemoteError("IllegalArgumentException",
                          f'Invalid value for webhdfs parameter "permission": Invalid value: "{value}" '
                          f'does not belong to the domain [0, 1777] (radix 8)')
    return format(int(value, 8), "o")


class Namespace:
    """Thread-safe file system state shared by a namenode, its datanode and (for HA) a standby namenode."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._meta: dict[str, Meta] = {}
        self._ids = itertools.count(16386)  # HDFS inode ids start just above the root's 16385

    # -- paths -------------------------------------------------------------------------------------------
    @staticmethod
    def normalize(path: str) -> str:
        if not path.startswith("/"):
            raise RemoteError("InvalidPathException", f"Invalid path name Path is not absolute: {path}")
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or ":" in p for p in parts):
            raise RemoteError("InvalidPathException", f"Invalid path name Invalid file name: {path}")
        return "/" + "/".join(parts)

    def real(self, path: str) -> Path:
        return self.root.joinpath(*[p for p in path.split("/") if p])

    def meta(self, path: str) -> Meta:
        with self.lock:
            found = self._meta.get(path)
            if found is None:
                # the root is the superuser's, drwxr-xr-x, as on a freshly formatted HDFS; anything created
                # outside the emulator (a test hook) is the superuser's and open to everyone
                is_dir = self.real(path).is_dir()
                mode = "755" if path == "/" else "777" if is_dir else "644"
                found = Meta(SUPERUSER, SUPERGROUP, mode, next(self._ids))
                self._meta[path] = found
            return found

    def set_meta(self, path: str, *, owner: str | None = None, permission: str | None = None) -> None:
        """Test hook (like ``hdfs dfs -chown/-chmod``)."""
        m = self.meta(self.normalize(path))
        if owner is not None:
            m.owner = owner
        if permission is not None:
            m.permission = parse_permission(permission, m.permission)

    # -- permissions -------------------------------------------------------------------------------------
    def _allowed(self, user: str, path: str, bit: int) -> bool:
        if user == SUPERUSER:
            return True
        m = self.meta(path)
        mode = int(m.permission, 8)
        shift = 6 if user == m.owner else 0
        return bool((mode >> shift) & bit)

    def _check(self, user: str, path: str, access: str) -> None:
        """Traverse (x) every ancestor, then ``access`` (r/w) on ``path`` itself; AccessControlException if not."""
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts)):
            ancestor = "/" + "/".join(parts[:i])
            if self.real(ancestor).is_dir() and not self._allowed(user, ancestor, 1):
                self._denied(user, "EXECUTE", ancestor)
        bit = {"r": 4, "w": 2}[access]
        if self.real(path).exists() and not self._allowed(user, path, bit):
            self._denied(user, "READ" if access == "r" else "WRITE", path)

    def _denied(self, user: str, access: str, path: str) -> None:
        m = self.meta(path)
        kind = "d" if self.real(path).is_dir() else "-"
        mode = int(m.permission, 8)
        rwx = "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
        raise RemoteError("AccessControlException",
                          f'Permission denied: user={user}, access={access}, inode="{path}":'
                          f"{m.owner}:{m.group}:{kind}{rwx}")

    def _parent_writable(self, user: str, path: str) -> None:
        parent = posixpath.dirname(path)
        while not self.real(parent).exists():
            parent = posixpath.dirname(parent)
        self._check(user, parent, "w")

    # -- status ------------------------------------------------------------------------------------------
    def _status(self, path: str, suffix: str) -> dict:
        real = self.real(path)
        st = real.stat()
        m = self.meta(path)
        is_dir = real.is_dir()
        return {
            "accessTime": 0 if is_dir else int(st.st_atime * 1000),
            "blockSize": 0 if is_dir else m.block_size,
            "childrenNum": len(list(real.iterdir())) if is_dir else 0,
            "fileId": m.file_id,
            "group": m.group,
            "length": 0 if is_dir else st.st_size,
            "modificationTime": int(st.st_mtime * 1000),
            "owner": m.owner,
            "pathSuffix": suffix,
            "permission": m.permission,
            "replication": 0 if is_dir else m.replication,
            "storagePolicy": 0,
            "type": "DIRECTORY" if is_dir else "FILE",
        }

    def get_status(self, user: str, path: str) -> dict:
        with self.lock:
            self._check_traverse(user, path, None if user == SUPERUSER else "AccessControlException")
            if not self.real(path).exists():
                raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
            return self._status(path, "")

    def _check_traverse(self, user: str, path: str, not_dir: str | None = "AccessControlException") -> None:
        """Execute permission on every ancestor. A file among them is an error as HDFS reports it with
        permissions on (AccessControlException "<file> (is not a directory)"; ParentNotDirectoryException
        when creating); ``not_dir=None`` stops quietly there (the superuser's GETFILESTATUS: not found)."""
        parts = [p for p in path.split("/") if p]
        for i in range(len(parts)):
            ancestor = "/" + "/".join(parts[:i])
            real = self.real(ancestor)
            if not real.is_dir():
                if real.exists() and not_dir:
                    raise RemoteError(not_dir, f"{ancestor} (is not a directory)")
                return
            if not self._allowed(user, ancestor, 1):
                self._denied(user, "EXECUTE", ancestor)

    def list_status(self, user: str, path: str) -> list[dict]:
        with self.lock:
            real = self.real(path)
            self._check_traverse(user, path)
            if not real.exists():
                raise RemoteError("FileNotFoundException", f"File {path} does not exist.")
            if not real.is_dir():
                return [self._status(path, "")]
            self._check(user, path, "r")
            return [self._status(posixpath.join(path, child.name), child.name) for child in sorted(real.iterdir())]

    # -- mutations ---------------------------------------------------------------------------------------
    def _parent_dirs(self, user: str, path: str) -> None:
        """Create missing parents (createparent=true); a file in the way is ParentNotDirectoryException."""
        parts = [p for p in path.split("/") if p][:-1]
        for i in range(1, len(parts) + 1):
            ancestor = "/" + "/".join(parts[:i])
            real = self.real(ancestor)
            if real.is_dir():
                continue
            if real.exists():
                raise RemoteError("ParentNotDirectoryException", f"{ancestor} (is not a directory)")
            self._check(user, posixpath.dirname(ancestor), "w")
            real.mkdir()
            self._meta[ancestor] = Meta(user, SUPERGROUP, "755", next(self._ids))

    def mkdirs(self, user: str, path: str, permission: str | None) -> bool:
        perm = parse_permission(permission, "755")
        with self.lock:
            self._check_traverse(user, path, "ParentNotDirectoryException")
            real = self.real(path)
            if real.is_dir():
                return True
            if real.exists():
                raise RemoteError("FileAlreadyExistsException", f"Path is not a directory: {path}")
            self._parent_dirs(user, path)
            self._parent_writable(user, path)
            real.mkdir()
            self._meta[path] = Meta(user, SUPERGROUP, perm, next(self._ids))
            return True

    def create(self, user: str, path: str, *, overwrite: bool, permission: str | None,
               replication: int | None, block_size: int | None) -> BinaryIO:
        """Open a new file for writing (the datanode's half of CREATE); the caller streams into it."""
        perm = parse_permission(permission, "644")
        with self.lock:
            self._check_traverse(user, path, "ParentNotDirectoryException")
            real = self.real(path)
            if real.is_dir():
                raise RemoteError("FileAlreadyExistsException", f"{path} already exists as a directory")
            if real.exists() and not overwrite:
                raise RemoteError("FileAlreadyExistsException",
                                  f"{path} for client 127.0.0.1 already exists")
            if real.exists():
                self._check(user, path, "w")
            self._parent_dirs(user, path)
            self._parent_writable(user, path)
            fh = real.open("wb")
            self._meta[path] = Meta(user, SUPERGROUP, perm, next(self._ids), replication or DEFAULT_REPLICATION,
                                    block_size or DEFAULT_BLOCK_SIZE)
            return fh

    def append(self, user: str, path: str) -> BinaryIO:
        with self.lock:
            real = self._existing_file(user, path, "w")
            return real.open("ab")

    def _existing_file(self, user: str, path: str, access: str, missing: str = "File does not exist: {path}") -> Path:
        self._check_traverse(user, path)
        real = self.real(path)
        if not real.exists():
            raise RemoteError("FileNotFoundException", missing.format(path=path))
        if real.is_dir():
            raise RemoteError("FileNotFoundException", f"Path is not a file: {path}")
        self._check(user, path, access)
        return real

    def open_file(self, user: str, path: str) -> Path:
        with self.lock:
            return self._existing_file(user, path, "r", missing="File {path} not found.")

    def checksum(self, user: str, path: str) -> dict:
        with self.lock:
            real = self._existing_file(user, path, "r")
            block_size = self.meta(path).block_size
        return file_checksum(real, block_size)

    def rename(self, user: str, src: str, dst: str) -> bool:
        """HDFS rename: false (not an error) when src is missing, dst exists, or dst's parent is missing."""
        with self.lock:
            self._check_traverse(user, src)
            real_src = self.real(src)
            if src == "/" or not real_src.exists():
                return False
            real_dst = self.real(dst)
            if real_dst.is_dir():  # onto an existing folder: move inside it
                dst = posixpath.join(dst, posixpath.basename(src))
                real_dst = self.real(dst)
            if real_dst.exists() or not real_dst.parent.is_dir() or (dst + "/").startswith(src + "/"):
                return False
            self._check(user, posixpath.dirname(src), "w")
            self._check(user, posixpath.dirname(dst), "w")
            real_src.rename(real_dst)
            moved = {p: m for p, m in self._meta.items() if p == src or p.startswith(src + "/")}
            for p, m in moved.items():
                del self._meta[p]
                self._meta[dst + p[len(src):]] = m
            return True

    def rename2(self, user: str, src: str, dst: str, overwrite: bool = False) -> None:
        """HDFS rename2 (``renameoptions``): the destination is the new name itself, never a folder to move
        into; an existing destination is FileAlreadyExistsException unless OVERWRITE (then only an empty folder
        or a file of the same kind is replaced); a missing source or parent is FileNotFoundException."""
        with self.lock:
            self._check_traverse(user, src)
            real_src, real_dst = self.real(src), self.real(dst)
            if src == "/" or not real_src.exists():
                raise RemoteError("FileNotFoundException", f"rename source {src} is not found.")
            if not real_dst.parent.is_dir():
                raise RemoteError("FileNotFoundException", f"rename destination parent {posixpath.dirname(dst)} "
                                                           "not found.")
            if (dst + "/").startswith(src + "/"):
                raise RemoteError("IOException", f"Rename destination {dst} is a directory or file under source {src}")
            if real_dst.exists():
                if not overwrite:
                    raise RemoteError("FileAlreadyExistsException", f"rename destination {dst} already exists")
                if real_dst.is_dir() != real_src.is_dir():
                    raise RemoteError("IOException", f"Source {src} and destination {dst} must both be directories")
                if real_dst.is_dir() and any(real_dst.iterdir()):
                    raise RemoteError("IOException", f"rename destination directory is not empty: {dst}")
            self._check(user, posixpath.dirname(src), "w")
            self._check(user, posixpath.dirname(dst), "w")
            if real_dst.is_dir():
                real_dst.rmdir()
            real_src.replace(real_dst)
            moved = {p: m for p, m in self._meta.items() if p == src or p.startswith(src + "/")}
            for p, m in moved.items():
                del self._meta[p]
                self._meta[dst + p[len(src):]] = m

    def delete(self, user: str, path: str, recursive: bool) -> bool:
        with self.lock:
            self._check_traverse(user, path)
            real = self.real(path)
            if path == "/" or not real.exists():
                return False
            self._check(user, posixpath.dirname(path), "w")
            if real.is_dir():
                if any(real.iterdir()) and not recursive:
                    raise RemoteError("PathIsNotEmptyDirectoryException",
                                      f"`{path} is non empty': Directory is not empty")
                shutil.rmtree(real)
            else:
                real.unlink()
            for p in [p for p in self._meta if p == path or p.startswith(path + "/")]:
                del self._meta[p]
            return True
