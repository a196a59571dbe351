
import subprocess
import tarfile
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from governance.errors import StagingError
from governance.staging.intake import fetch, fetch_and_validate, parse_git_source


def make_zip(repo: Path, dest: Path, top: str = "staged-model-abc123") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for f in sorted(repo.rglob("*")):
            if f.is_file():
                zf.write(f, f"{top}/{f.relative_to(repo)}")
    return dest


def test_folder_source_is_used_in_place(example_repo):
    staged, fetched = fetch_and_validate(str(example_repo))
    assert fetched.root == example_repo.resolve() and fetched.workdir is None
    assert staged.commit is None


def test_zip_with_single_top_folder(example_repo, tmp_path):
    archive = make_zip(example_repo, tmp_path / "repo.zip")
    staged, fetched = fetch_and_validate(str(archive))
    try:
        assert staged.metadata.name == "iris-classifier"
        assert fetched.root.name == "staged-model-abc123"
    finally:
        fetched.cleanup()
    assert not fetched.workdir.exists()


def test_tar_gz(example_repo, tmp_path):
    archive = tmp_path / "repo.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(example_repo, arcname="repo")
    staged, fetched = fetch_and_validate(str(archive))
    fetched.cleanup()
    assert staged.executable == "executable/model.joblib"


def test_zip_path_escape_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../outside.txt", "x")
    with pytest.raises(StagingError, match="would escape"):
        fetch(str(archive), workdir=tmp_path / "work")
    assert not (tmp_path / "outside.txt").exists()


def test_tar_symlink_is_refused(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("repo/executable/model.joblib")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(StagingError, match="link or special file"):
        fetch(str(archive))


def test_corrupt_archive(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(StagingError, match="not a readable archive"):
        fetch(str(bad))


def test_missing_source():
    with pytest.raises(StagingError, match="no such folder or archive"):
        fetch("/nonexistent/repo")


def test_http_archive(example_repo, tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    make_zip(example_repo, served / "repo.zip")
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        staged, fetched = fetch_and_validate(f"{base}/repo.zip")
        fetched.cleanup()
        assert staged.source == f"{base}/repo.zip"
        with pytest.raises(StagingError, match="HTTP 404"):
            fetch(f"{base}/missing.zip")
    finally:
        server.shutdown()
        server.server_close()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@x", "PATH": "/usr/bin:/bin",
                               "HOME": str(cwd)}).stdout.strip()


def test_git_source_is_pinned_to_the_resolved_commit(example_repo):
    git("init", "-q", "-b", "main", cwd=example_repo)
    git("add", "-A", cwd=example_repo)
    git("commit", "-qm", "v1", cwd=example_repo)
    first = git("rev-parse", "HEAD", cwd=example_repo)
    git("tag", "v1.0", cwd=example_repo)
    (example_repo / "README.md").write_text("# changed after the tag\n")
    git("commit", "-qam", "later", cwd=example_repo)
    head = git("rev-parse", "HEAD", cwd=example_repo)

    staged, fetched = fetch_and_validate(f"git+file://{example_repo}@v1.0")
    try:
        assert staged.commit == first
        assert "changed after the tag" not in (fetched.root / "README.md").read_text()
        assert not (fetched.root / ".git").exists()
    finally:
        fetched.cleanup()
    staged, fetched = fetch_and_validate(f"file://{example_repo}/.git#main")
    fetched.cleanup()
    assert staged.commit == head
    with pytest.raises(StagingError, match="git rev-parse failed"):
        fetch(f"git+file://{example_repo}@no-such-ref")


def test_parse_git_source():
    assert parse_git_source("git+https://host/org/repo.git@v1.2") == ("https://host/org/repo.git", "v1.2")
    assert parse_git_source("git+ssh://git@host/org/repo.git") == ("ssh://git@host/org/repo.git", "HEAD")
    assert parse_git_source("https://host/org/repo.git#abc123") == ("https://host/org/repo.git", "abc123")
    assert parse_git_source("https://host/repo.zip") is None


@pytest.mark.parametrize("source", ["git+https://deployer:ghp_s3cr3t@git.example/org/repo.git@v1",
                                    "git+https://ghp_s3cr3t@git.example/org/repo.git@v1",
                                    "https://user:s3cr3t@files.example/repo.zip",
                                    "https://files.example/repo.tar.gz?token=s3cr3t",
                                    "https://bucket.s3.example/repo.zip?X-Amz-Credential=AK&X-Amz-Signature=s3cr3t",
                                    "https://blob.example/repo.zip?sv=2024&sig=s3cr3t"])
def test_credentials_in_source_urls_are_refused_without_echoing_them(source):
    with pytest.raises(StagingError, match="contains (user information|credential-like query)") as info:
        fetch(source)
    assert "s3cr3t" not in str(info.value)


def test_ssh_user_without_password_is_fine():
    assert parse_git_source("git+ssh://git@git.example/org/repo.git@v2") == ("ssh://git@git.example/org/repo.git",
                                                                                "v2")
