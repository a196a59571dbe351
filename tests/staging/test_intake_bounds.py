"""Bounded intake, through ``modelgov validate`` (and ``deploy --dry-run``) as an operator runs them: archives
have limits on expanded size, entry count and compression ratio, enforced while extracting; examples have a
size limit; local training data is hashed only under the staged repo or a configured data root."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from governance.cli.main import main
from tests.conftest import write_metadata

ZEROS = 8 * 1024 * 1024  # compresses to a few KiB: a ratio far above 200, without a multi-GB file


@pytest.fixture
def stage_tmp(tmp_path, monkeypatch) -> Path:
    """Where intake extracts archives (the system temp folder, made private), to see what is left behind."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def pack(repo: Path, archive: Path) -> Path:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(repo.rglob("*")):
                zf.write(f, f"repo/{f.relative_to(repo)}")
    else:
        with tarfile.open(archive, "w:gz") as tf:
            tf.add(repo, arcname="repo")
    return archive


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "modelgov.yaml"
    path.write_text(text)
    return str(path)


def validate(*args: str) -> int:
    return main(["validate", *args])


@pytest.mark.parametrize("suffix", [".tar.gz", ".zip"])
def test_an_archive_that_expands_far_beyond_its_size_stops_while_extracting(example_repo, tmp_path, stage_tmp,
                                                                             capsys, suffix):
    (example_repo / "data" / "zeros.bin").write_bytes(bytes(ZEROS))
    archive = pack(example_repo, tmp_path / f"bomb{suffix}")
    assert archive.stat().st_size < 100_000

    assert validate(str(archive)) == 1

    err = capsys.readouterr().err
    assert str(archive) in err and "max_compression_ratio" in err and "200 times" in err
    written = int(err.split("; ")[-2].split(" bytes")[0])
    assert written < ZEROS  # stopped at the limit, not after expanding everything
    assert list(stage_tmp.iterdir()) == []  # what was extracted is gone


def test_the_example_archive_fits_the_default_limits(example_repo, tmp_path, stage_tmp, capsys):
    archive = pack(example_repo, tmp_path / "repo.tar.gz")
    assert validate(str(archive)) == 0
    assert "valid: iris-classifier 1.0" in capsys.readouterr().out


def test_a_configured_size_limit_refuses_a_larger_archive(example_repo, tmp_path, stage_tmp, capsys):
    (example_repo / "data" / "noise.bin").write_bytes(os.urandom(300 * 1024))  # incompressible: ratio ~1
    archive = pack(example_repo, tmp_path / "repo.zip")
    path = config(tmp_path, "limits:\n  max_extracted_bytes: 200KiB\n")

    assert validate(str(archive), "--config", path) == 1

    err = capsys.readouterr().err
    assert str(archive) in err and "more than 200 KiB" in err and "max_extracted_bytes" in err
    assert list(stage_tmp.iterdir()) == []


def test_a_configured_entry_limit_refuses_an_archive_with_more_entries(example_repo, tmp_path, stage_tmp, capsys,
                                                                       monkeypatch):
    archive = pack(example_repo, tmp_path / "repo.tar.gz")
    path = config(tmp_path, "limits:\n  max_archive_files: 5\n")

    assert validate(str(archive), "--config", path) == 1
    err = capsys.readouterr().err
    assert str(archive) in err and "more than 5 entries" in err and "max_archive_files" in err

    monkeypatch.setenv("MODELGOV_MAX_ARCHIVE_FILES", "100")  # the environment wins over the file
    assert validate(str(archive), "--config", path) == 0


def test_deploy_dry_run_applies_the_limits_of_its_config(example_repo, tmp_path, stage_tmp, capsys):
    archive = pack(example_repo, tmp_path / "repo.tar.gz")
    path = config(tmp_path, f"""
registries: {{reg: "file://{tmp_path / 'registry'}"}}
targets: {{local: "mlserver://127.0.0.1:1?repository={tmp_path / 'models'}"}}
defaults: {{registry: reg, target: local}}
limits: {{max_archive_files: 5}}
""")
    assert main(["deploy", str(archive), "--dry-run", "--config", path]) == 1
    assert "max_archive_files" in capsys.readouterr().err
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize(("setting", "says"), [
    ("limits: {max_extracted_bytes: lots}", "limits.max_extracted_bytes = 'lots': expected a size"),
    ("limits: {max_compression_ratio: 0}", "limits.max_compression_ratio = '0': must be greater than 0"),
    ("limits: {max_files: 3}", "limits.max_files is not a limit"),
    ("data_roots: [relative/data]", "data root 'relative/data'"),
])
def test_a_bad_limit_is_a_usage_error_naming_it(example_repo, tmp_path, capsys, setting, says):
    assert validate(str(example_repo), "--config", config(tmp_path, setting + "\n")) == 2
    assert says in capsys.readouterr().err


def test_an_example_larger_than_the_limit_is_refused_naming_file_and_limit(example_repo, tmp_path, capsys,
                                                                           monkeypatch):
    rows = [[5.1, 3.5, 1.4, 0.2]] * 60_000  # ~1.4 MB of valid JSON
    (example_repo / "examples" / "request.json").write_text(json.dumps({"inputs": rows}))

    assert validate(str(example_repo)) == 1
    err = capsys.readouterr().err
    size = (example_repo / "examples" / "request.json").stat().st_size
    assert f"examples/request.json: is {size} bytes; the limit for an example is 1048576 bytes (1 MiB" in err

    monkeypatch.setenv("MODELGOV_MAX_EXAMPLE_BYTES", "100B")
    assert validate(str(example_repo)) == 1
    err = capsys.readouterr().err
    assert "examples/response.json: is 105 bytes; the limit for an example is 100 bytes" in err


def test_local_training_data_outside_the_repo_and_the_data_roots_is_not_read(example_repo, tmp_path, capsys):
    secret = tmp_path / "elsewhere" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:$6$salt$hash:19000:0:99999:7:::\n")
    write_metadata(example_repo, model_training_data=secret.as_uri())

    assert validate(str(example_repo), "--json") == 1
    err = capsys.readouterr().err
    assert f"metadata.txt: model.training.data entry '{secret.as_uri()}': {secret} is outside the staged repo" in err
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in err

    # a link inside a data root that points outside it is judged by where it points
    roots = tmp_path / "datasets"
    roots.mkdir()
    (roots / "train.csv").symlink_to(secret)
    write_metadata(example_repo, model_training_data=(roots / "train.csv").as_uri())
    path = config(tmp_path, f"data_roots: [{roots}]\n")
    assert validate(str(example_repo), "--config", path) == 1
    assert "is outside the staged repo and every configured data root" in capsys.readouterr().err

    (roots / "train.csv").unlink()
    (roots / "train.csv").write_text("a,b\n1,2\n")
    assert validate(str(example_repo), "--config", path, "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out)["valid"] is True


def _commit_all(repo: Path) -> None:
    import subprocess

    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@x",
                                                               "commit", "-qm", "v1"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


@pytest.mark.parametrize("limit, says", [("max_archive_files: 5", "more than 5 files"),
                                         ("max_extracted_bytes: 200KiB", "more than 200 KiB")])
def test_a_git_source_over_the_limits_is_refused_before_checkout(example_repo, tmp_path, stage_tmp, capsys,
                                                                 limit, says):
    """Issue 20: the limits held for archives only; a git source was cloned and checked out whole."""
    (example_repo / "data" / "noise.bin").write_bytes(os.urandom(300 * 1024))
    _commit_all(example_repo)
    source = f"git+file://{example_repo}@main"

    assert validate(source, "--config", config(tmp_path, f"limits:\n  {limit}\n")) == 1
    err = capsys.readouterr().err
    assert source in err and says in err and limit.split(":")[0] in err and "nothing was checked out" in err
    assert list(stage_tmp.iterdir()) == []
    assert validate(source) == 0  # the defaults fit it


def test_a_git_source_with_a_symbolic_link_is_refused(example_repo, tmp_path, stage_tmp, capsys):
    """A link in the tree would make the deploy host read (and hash, and publish) whatever it points to; it is
    refused from git's listing, before checkout (validation also refuses one found after checkout)."""
    (example_repo / "data" / "shadow").symlink_to("/etc/shadow")
    _commit_all(example_repo)

    assert validate(f"git+file://{example_repo}@main") == 1
    err = capsys.readouterr().err
    assert "'data/shadow'" in err and "symbolic link" in err
    assert list(stage_tmp.iterdir()) == []
