"""Fetch a staged repo from a folder, a .zip/.tar.gz archive (path or http(s) URL), a git URL pinned to a commit,
or an MLflow model registry (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``; see ``mlflow_source``).

Archives are extracted safely: no absolute paths, no ``..``, no links or devices, and within the intake limits
(expanded size, entry count, compression ratio: ``governance.staging.limits``), counted while writing. A git
source is resolved to its commit SHA, which is recorded so a deployment traces to the exact code; its tree is
held to the same limits (files, total size; no links or submodules) from git's listing before checkout. Credentials never go on argv:
git reads them from its credential helpers or the environment.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlparse

from governance.checksums import CHUNK
from governance.errors import StagingError
from governance.http import build_session
from governance.secrets import refuse_credentials
from governance.staging.limits import RATIO_GRACE_BYTES, IntakeLimits, describe_bytes
from governance.staging.repo import FetchedSource, StagedRepo
from governance.staging.validate import validate_repo

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
MAX_DOWNLOAD_BYTES = 8 * 1024**3
GIT_TIMEOUT_S = 300


def parse_git_source(source: str) -> tuple[str, str] | None:
    """``git+URL@REF`` or ``URL.git#REF`` -> (url, ref); None when the source is not a git URL."""
    if source.startswith("git+"):
        body = source[4:]
        scheme_end = body.find("://") + 3
        at = body.rfind("@")
        if at > scheme_end and "/" not in body[at:]:
            return body[:at], body[at + 1:]
        return body, "HEAD"
    if "#" in source and source.split("#", 1)[0].endswith(".git"):
        url, ref = source.split("#", 1)
        return url, ref or "HEAD"
    return None


def fetch(source: str, workdir: Path | None = None, limits: IntakeLimits | None = None) -> FetchedSource:
    """Bring the staged repo to local disk. Raises StagingError naming the source on any failure (a source
    URL carrying a credential: CredentialInUrl, before anything is fetched). An archive is extracted within
    ``limits`` (default: ``IntakeLimits.load()``)."""
    refuse_credentials(source, "source")
    if source.startswith("models:"):
        from governance.staging.mlflow_source import fetch_mlflow

        return fetch_mlflow(source, workdir, limits=limits or IntakeLimits.load())
    git = parse_git_source(source)
    if git:
        return _fetch_git(source, *git, workdir=workdir, limits=limits or IntakeLimits.load())
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return _fetch_url(source, workdir, limits)
    path = Path(parsed.path if parsed.scheme == "file" else source).expanduser()
    if not path.exists():
        raise StagingError(f"{source}: no such folder or archive")
    if path.is_dir():
        return FetchedSource(path.resolve(), source, None)
    if path.name.endswith(ARCHIVE_SUFFIXES):
        work = _new_workdir(workdir)
        try:
            root = extract_archive(path, work / "repo", limits)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return FetchedSource(root, source, None, work)
    raise StagingError(f"{source}: not a folder, a git URL or an archive ({', '.join(ARCHIVE_SUFFIXES)})")


def fetch_and_validate(source: str, workdir: Path | None = None,
                       limits: IntakeLimits | None = None) -> tuple[StagedRepo, FetchedSource]:
    """Fetch and validate, both within ``limits`` (default: ``IntakeLimits.load()``, read once)."""
    limits = limits or IntakeLimits.load()
    fetched = fetch(source, workdir, limits)
    try:
        return validate_repo(fetched.root, source=fetched.source, commit=fetched.commit, limits=limits), fetched
    except BaseException:
        fetched.cleanup()
        raise


def _new_workdir(base: Path | None) -> Path:
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="modelgov-stage-", dir=base))


def _fetch_url(url: str, workdir: Path | None, limits: IntakeLimits | None) -> FetchedSource:
    name = PurePosixPath(urlparse(url).path).name
    if not name.endswith(ARCHIVE_SUFFIXES):
        raise StagingError(f"{url}: a URL source must point at an archive ({', '.join(ARCHIVE_SUFFIXES)})")
    work = _new_workdir(workdir)
    archive = work / name
    session = build_session(retries=3, timeout=(10.0, 120.0))
    try:
        with session.get(url, stream=True) as resp:
            if resp.status_code != 200:
                raise StagingError(f"{url}: download failed with HTTP {resp.status_code}")
            received = 0
            with archive.open("wb") as out:
                for chunk in resp.iter_content(1024 * 1024):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise StagingError(f"{url}: archive larger than {MAX_DOWNLOAD_BYTES} bytes")
                    out.write(chunk)
        root = extract_archive(archive, work / "repo", limits)
    except StagingError:
        shutil.rmtree(work, ignore_errors=True)
        raise
    except Exception as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise StagingError(f"{url}: download failed: {exc}") from exc
    finally:
        session.close()
    return FetchedSource(root, url, None, work)


def _check_member(name: str, archive: Path) -> None:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise StagingError(f"{archive}: member {name!r} would escape the extraction folder")


class _Budget:
    """What an archive may still expand to, counted while extracting: entries, bytes, and the ratio of
    bytes written to the archive's size. Crossing a limit stops the extraction at once."""

    def __init__(self, archive: Path, limits: IntakeLimits):
        self.archive, self.limits = archive, limits
        self.packed = max(archive.stat().st_size, 1)
        self.entries = self.written = 0

    def entry(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_archive_files:
            raise StagingError(f"{self.archive}: more than {self.limits.max_archive_files} entries (the limit "
                               f"max_archive_files; stopped at {name!r}); nothing was kept")

    def wrote(self, n: int, name: str) -> None:
        self.written += n
        limits = self.limits
        if self.written > limits.max_extracted_bytes:
            raise StagingError(f"{self.archive}: expands to more than {describe_bytes(limits.max_extracted_bytes)} "
                               f"(the limit max_extracted_bytes; stopped in {name!r}); nothing was kept")
        ratio = self.written / self.packed
        if self.written > RATIO_GRACE_BYTES and ratio > limits.max_compression_ratio:
            raise StagingError(f"{self.archive}: expands more than {limits.max_compression_ratio:g} times its "
                               f"size of {self.packed} bytes (the limit max_compression_ratio; {self.written} "
                               f"bytes by {name!r}); nothing was kept")


def _extract_member(stream: BinaryIO, dest: Path, name: str, budget: _Budget) -> None:
    """Copy one member's bytes to ``dest/name`` (a new file inside ``dest``), counting them as they come."""
    path = (dest / name)
    if not path.resolve().is_relative_to(dest.resolve()):
        raise StagingError(f"{budget.archive}: member {name!r} would escape the extraction folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        while chunk := stream.read(CHUNK):
            budget.wrote(len(chunk), name)
            out.write(chunk)


def extract_archive(archive: Path, dest: Path, limits: IntakeLimits | None = None) -> Path:
    """Extract safely into ``dest``; return the repo root (descending into a single top-level folder).

    Refused (StagingError naming the archive and the rule, ``dest`` removed): members that are absolute,
    climb with ``..``, are links or special files, and archives crossing ``limits`` (entries, expanded
    bytes, compression ratio), which are checked while the bytes are written, so a bomb stops early."""
    limits = limits or IntakeLimits.load()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _extract_into(archive, dest, _Budget(archive, limits))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    entries = [p for p in dest.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def _extract_into(archive: Path, dest: Path, budget: _Budget) -> None:
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    budget.entry(info.filename)
                    _check_member(info.filename, archive)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise StagingError(f"{archive}: member {info.filename!r} is a symbolic link")
                    name = info.filename.replace("\\", "/")
                    if info.is_dir():
                        (dest / name).mkdir(parents=True, exist_ok=True)
                        continue
                    with zf.open(info) as stream:
                        _extract_member(stream, dest, name, budget)
        else:
            with tarfile.open(archive) as tf:
                for member in tf:  # streamed: an archive of a million headers stops at the entry limit
                    budget.entry(member.name)
                    _check_member(member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise StagingError(f"{archive}: member {member.name!r} is a link or special file")
                    if member.isdir():
                        (dest / member.name).mkdir(parents=True, exist_ok=True)
                        continue
                    stream = tf.extractfile(member)
                    assert stream is not None  # a regular file always has a stream
                    with stream:
                        _extract_member(stream, dest, member.name, budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
        raise StagingError(f"{archive}: not a readable archive ({exc})") from exc
    except OSError as exc:
        raise StagingError(f"{archive}: extracting failed ({exc.strerror or exc})") from exc


def _git(args: list[str], cwd: Path, source: str) -> str:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError as exc:
        raise StagingError("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise StagingError(f"{source}: git {args[0]} timed out after {GIT_TIMEOUT_S}s") from exc
    if proc.returncode != 0:
        raise StagingError(f"{source}: git {args[0]} failed: {proc.stderr.strip().splitlines()[-1:] or ''}")
    return proc.stdout.strip()


def _check_tree(repo: Path, commit: str, source: str, limits: IntakeLimits) -> None:
    """The commit's tree within the intake limits (files, total size) and without links or submodules,
    from git's own listing, before a file is checked out; a StagingError naming the limit or the entry."""
    listing = _git(["ls-tree", "-r", "-l", "--full-tree", commit], repo, source)
    total = 0
    for files, line in enumerate(listing.splitlines(), start=1):
        meta, _, path = line.partition("\t")
        mode, kind, _obj, size = meta.split()
        if mode == "120000" or kind != "blob":
            what = "a symbolic link" if mode == "120000" else f"a {kind} (submodule)"
            raise StagingError(f"{source}: {path!r} at {commit[:12]} is {what}; a staged repo holds plain files "
                               "only; nothing was checked out")
        total += int(size)
        if files > limits.max_archive_files:
            raise StagingError(f"{source}: more than {limits.max_archive_files} files at {commit[:12]} (the "
                               "limit max_archive_files); nothing was checked out")
        if total > limits.max_extracted_bytes:
            raise StagingError(f"{source}: more than {describe_bytes(limits.max_extracted_bytes)} at "
                               f"{commit[:12]} (the limit max_extracted_bytes; reached at {path!r}); nothing "
                               "was checked out")


def _fetch_git(source: str, url: str, ref: str, *, workdir: Path | None, limits: IntakeLimits) -> FetchedSource:
    work = _new_workdir(workdir)
    repo = work / "repo"
    try:
        _git(["clone", "--quiet", "--no-checkout", url, str(repo)], work, source)
        try:
            commit = _git(["rev-parse", "--verify", f"{ref}^{{commit}}"], repo, source)
        except StagingError:
            commit = _git(["rev-parse", "--verify", f"origin/{ref}^{{commit}}"], repo, source)
        _check_tree(repo, commit, source, limits)
        _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], repo, source)
        shutil.rmtree(repo / ".git")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FetchedSource(repo, source, commit, work)
