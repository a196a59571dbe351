"""``file://DIR`` registry: a local or mounted folder. Publish = copy to a temp folder, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from governance.checksums import CHUNK, HashingReader, iter_chunks
from governance.errors import ConfigError, IntegrityError, RegistryError
from governance.progress import copy_progress
from governance.registries.base import MANIFEST_NAME, Manifest, Registry, RegistryVersion
from governance.staging.repo import StagedRepo


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

    def lookup(self, name: str, version: str) -> RegistryVersion | None:
        manifest_path = self._dir(name, version) / MANIFEST_NAME
        if not manifest_path.is_file():
            return None
        text = manifest_path.read_text(encoding="utf-8", errors="replace")
        return RegistryVersion(self.uri, self.version_location(name, version),
                               Manifest.parse(text, str(manifest_path)), created=False)

    def publish(self, staged: StagedRepo, *, progress: bool = False) -> RegistryVersion:
        meta = staged.metadata
        final = self._dir(meta.name, meta.version)
        location = self.version_location(meta.name, meta.version)
        found = self.existing_version(staged)
        if found:
            return found
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise RegistryError(f"{final.parent} exists and is not a folder") from exc
        except PermissionError as exc:
            raise RegistryError(f"cannot create {final.parent}: permission denied") from exc
        if final.exists():
            # a folder without a manifest is an incomplete earlier attempt: replace it
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{meta.version}.tmp-", dir=final.parent))
        try:
            total = sum(f.size for f in staged.files)
            with copy_progress(total, f"publish {meta.name} {meta.version}", enabled=progress) as advance:
                for f in staged.files:
                    self._copy_one(staged.root / f.path, tmp / f.path, f.sha256, advance)
            manifest = Manifest.for_staged(staged)
            _write_synced(tmp / MANIFEST_NAME, manifest.to_json().encode())
            try:
                os.rename(tmp, final)  # atomic on one filesystem; fails if another publisher won the race
            except OSError as exc:
                raise RegistryError(f"{final} appeared while publishing; retry to compare content") from exc
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return RegistryVersion(self.uri, location, manifest, created=True)

    @staticmethod
    def _copy_one(src: Path, dst: Path, expected_sha: str, advance) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            with src.open("rb") as raw, dst.open("wb") as out:
                reader = HashingReader(raw)
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
                    advance(len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            raise RegistryError(f"copying {src} to {dst} failed: {exc.strerror or exc}") from exc
        if reader.sha256 != expected_sha:
            raise IntegrityError(f"{src} changed after validation (sha256 {reader.sha256}, expected {expected_sha})")

    def open_artifact(self, version: RegistryVersion, path: str) -> Iterator[bytes]:
        m = version.manifest
        target = self._dir(m.model_name, m.model_version) / path
        with target.open("rb") as fh:
            yield from iter_chunks(fh)

    def local_path(self, version: RegistryVersion, path: str) -> Path:
        return self._dir(version.manifest.model_name, version.manifest.model_version) / path


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


