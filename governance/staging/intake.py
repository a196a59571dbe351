"""Fetch a staged repo from a folder, a .zip/.tar.gz archive (path or http(s) URL), a git URL pinned to a commit,
or an MLflow model registry (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``; see ``mlflow_source``).

Archives are extracted safely: no absolute paths, no ``..``, no links or devices. A git source is resolved to
its commit SHA, which is recorded so a deployment traces to the exact code. Credentials never go on argv:
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
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from governance.errors import StagingError
from governance.http import build_session
from governance.secrets import refuse_credentials
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


def fetch(source: str, workdir: Path | None = None) -> FetchedSource:
    """Bring the staged repo to local disk. Raises StagingError naming the source on any failure (a source
    URL carrying a credential: CredentialInUrl, before anything is fetched)."""
    refuse_credentials(source, "source")
    if source.startswith("models:"):
        from governance.staging.mlflow_source import fetch_mlflow

        return fetch_mlflow(source, workdir)
    git = parse_git_source(source)
    if git:
        return _fetch_git(source, *git, workdir=workdir)
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return _fetch_url(source, workdir)
    path = Path(parsed.path if parsed.scheme == "file" else source).expanduser()
    if not path.exists():
        raise StagingError(f"{source}: no such folder or archive")
    if path.is_dir():
        return FetchedSource(path.resolve(), source, None)
    if path.name.endswith(ARCHIVE_SUFFIXES):
        work = _new_workdir(workdir)
        try:
            root = extract_archive(path, work / "repo")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return FetchedSource(root, source, None, work)
    raise StagingError(f"{source}: not a folder, a git URL or an archive ({', '.join(ARCHIVE_SUFFIXES)})")


def fetch_and_validate(source: str, workdir: Path | None = None) -> tuple[StagedRepo, FetchedSource]:
    fetched = fetch(source, workdir)
    try:
        return validate_repo(fetched.root, source=fetched.source, commit=fetched.commit), fetched
    except BaseException:
        fetched.cleanup()
        raise


def _new_workdir(base: Path | None) -> Path:
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="modelgov-stage-", dir=base))


def _fetch_url(url: str, workdir: Path | None) -> FetchedSource:
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
        root = extract_archive(archive, work / "repo")
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


def extract_archive(archive: Path, dest: Path) -> Path:
    """Extract safely into ``dest``; return the repo root (descending into a single top-level folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(info.filename, archive)
                    mode = info.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        raise StagingError(f"{archive}: member {info.filename!r} is a symbolic link")
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _check_member(member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise StagingError(f"{archive}: member {member.name!r} is a link or special file")
                tf.extractall(dest, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise StagingError(f"{archive}: not a readable archive ({exc})") from exc
    entries = [p for p in dest.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


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


def _fetch_git(source: str, url: str, ref: str, *, workdir: Path | None) -> FetchedSource:
    work = _new_workdir(workdir)
    repo = work / "repo"
    try:
        _git(["clone", "--quiet", "--no-checkout", url, str(repo)], work, source)
        try:
            commit = _git(["rev-parse", "--verify", f"{ref}^{{commit}}"], repo, source)
        except StagingError:
            commit = _git(["rev-parse", "--verify", f"origin/{ref}^{{commit}}"], repo, source)
        _git(["-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit], repo, source)
        shutil.rmtree(repo / ".git")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return FetchedSource(repo, source, commit, work)
