"""``file://DIR`` registry: a local or mounted folder.

An attempt is a temp folder next to the version (``<name>/.<version>.tmp-<id>``); the commit writes the
manifest into it, fsyncs, and renames the folder onto ``<name>/<version>``. ``rename(2)`` refuses a non-empty
destination, so a committed version is never replaced. Folders and files get the process umask (readable by
serving processes under the usual 022), never 0700.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from governance.checksums import CHUNK, ArtifactFile, HashingReader, iter_chunks
from governance.durable import fsync_dir, write_synced
from governance.errors import ConfigError, RegistryError
from governance.registries.base import (
    APPROVALS_FOLDER,
    MANIFEST_NAME,
    Attempt,
    Leftover,
    Registry,
    RegistryVersion,
    new_attempt_id,
)

TMP_MARK = ".tmp-"


class FileRegistry(Registry):
    scheme = "file"

    def __init__(self, uri: str):
        parsed = urlparse(uri)
        if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
            raise ConfigError(f"file registry URI must look like file:///abs/path, got {uri!r}")
        if not parsed.path:
            raise ConfigError(f"file registry URI {uri!r} has no path")
        self.root = Path(unquote(parsed.path))
        super().__init__(f"file://{self.root}")

    def _dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    # -- primitives ----------------------------------------------------------------------------------------
    def _read_manifest(self, name: str, version: str) -> tuple[str, str] | None:
        manifest_path = self._dir(name, version) / MANIFEST_NAME
        try:
            return manifest_path.read_text(encoding="utf-8", errors="replace"), str(manifest_path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise RegistryError(f"cannot read {manifest_path}: {exc.strerror or exc}") from exc

    def _begin(self, name: str, version: str) -> Attempt:
        parent = self.root / name
        try:
            parent.mkdir(parents=True, exist_ok=True)  # mode 0o777 minus the umask
        except (FileExistsError, NotADirectoryError) as exc:
            raise RegistryError(f"{parent} exists and is not a folder") from exc
        except PermissionError as exc:
            raise RegistryError(f"cannot create {parent}: permission denied") from exc
        attempt_id = new_attempt_id()
        tmp = parent / f".{version}{TMP_MARK}{attempt_id}"
        try:
            tmp.mkdir()  # not tempfile.mkdtemp: that makes 0700 folders serving processes cannot read
        except OSError as exc:
            raise RegistryError(f"cannot create {tmp}: {exc.strerror or exc}") from exc
        return Attempt(name, version, attempt_id, str(tmp))

    def _put(self, attempt: Attempt, file: ArtifactFile, reader: HashingReader,
             advance: Callable[[int], None]) -> None:
        rel = file.path
        dst = Path(attempt.where) / rel
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with dst.open("wb") as out:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                    advance(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise RegistryError(f"copying {rel} to {dst} failed: {exc.strerror or exc}") from exc

    def _commit(self, attempt: Attempt, manifest: bytes) -> bool:
        tmp = Path(attempt.where)
        final = self._dir(attempt.name, attempt.version)
        try:
            write_synced(tmp / MANIFEST_NAME, manifest)
            for folder in sorted({p for p in tmp.rglob("*") if p.is_dir()} | {tmp}, reverse=True):
                fsync_dir(folder)
            os.rename(tmp, final)  # atomic; refuses a non-empty destination (another publisher's version)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return False
            raise RegistryError(f"committing {final} failed: {exc.strerror or exc}") from exc
        fsync_dir(final.parent)
        return True

    def _abandon(self, attempt: Attempt) -> None:
        shutil.rmtree(attempt.where, ignore_errors=True)

    def _open(self, name: str, version: str, path: str) -> Iterator[bytes]:
        with (self._dir(name, version) / path).open("rb") as fh:
            yield from iter_chunks(fh)

    def _put_once(self, name: str, rel: str, data: bytes) -> bool:
        """Written and fsynced under a temp name, then hard-linked onto the name: ``link(2)`` refuses an
        existing name, so the object appears complete or not at all and is never replaced."""
        final = self.root / name / rel
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.parent / f".{final.name}{TMP_MARK}{new_attempt_id()}"
            write_synced(tmp, data)
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
            fsync_dir(final.parent)
        except OSError as exc:
            raise RegistryError(f"cannot write {final}: {exc.strerror or exc}") from exc
        return True

    def _list_names(self, name: str, rel: str) -> list[str]:
        folder = self.root / name / rel
        try:
            return [p.name for p in folder.iterdir()
                    if TMP_MARK not in p.name and p.is_file() and not p.is_symlink()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            raise RegistryError(f"cannot list {folder}: {exc.strerror or exc}") from exc

    def _leftovers(self) -> Iterator[Leftover]:
        if not self.root.is_dir():
            return
        for model in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for entry in sorted(model.iterdir()):
                if not entry.is_dir() or entry.name == APPROVALS_FOLDER:
                    continue
                if entry.name.startswith(".") and TMP_MARK in entry.name:
                    yield Leftover("temporary folder of an interrupted publish", f"file://{entry}",
                                   _mtime(entry), entry)
                elif not (entry / MANIFEST_NAME).exists():
                    yield Leftover("version folder without a manifest (never committed)", f"file://{entry}",
                                   _mtime(entry), entry)

    def _remove(self, leftover: Leftover) -> None:
        path = Path(str(leftover.handle))
        if TMP_MARK not in path.name:
            # move it aside first: a commit may have replaced an empty folder since it was listed
            aside = path.parent / f".{path.name}{TMP_MARK}gc-{new_attempt_id()}"
            try:
                os.rename(path, aside)
            except OSError:
                return
            if (aside / MANIFEST_NAME).exists():
                os.rename(aside, path)  # committed meanwhile: put it back untouched
                return
            path = aside
        shutil.rmtree(path, ignore_errors=True)

    def local_path(self, version: RegistryVersion, path: str) -> Path:
        m = version.manifest
        return self._dir(m.model_name, m.model_version) / m.data_dir / path


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)

