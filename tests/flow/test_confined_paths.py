"""A manifest in a registry is data someone else wrote: a path in it that leaves the version folder is refused
when the manifest is read, so ``registry verify`` reports it and ``rollback`` writes nothing on the serving
host. Driven as an operator runs them (``modelgov registry verify``, ``modelgov rollback``)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from governance.cli.main import main
from governance.registries.file import FileRegistry
from governance.staging.validate import validate_repo
from tests.conftest import write_metadata
from tests.targets.conftest import make_release, mleap_server  # noqa: F401  (the MLeap stand-in, shared)

PAYLOAD = b"planted by a forged manifest\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def published(example_repo: Path, registry_dir: Path, name: str = "conf-model") -> FileRegistry:
    write_metadata(example_repo, model_name=name)
    registry = FileRegistry(f"file://{registry_dir}")
    registry.publish(validate_repo(example_repo))
    return registry


def forge(registry_dir: Path, name: str, change) -> Path:
    """Rewrite the committed manifest of NAME 1.0 with ``change(data)``, and put every file it lists where
    the file registry reads it (so the bytes match the forged manifest, as an attacker would arrange)."""
    version_dir = registry_dir / name / "1.0"
    manifest = version_dir / "MANIFEST.json"
    data = json.loads(manifest.read_text())
    change(data)
    for entry in data["files"]:
        stored = Path(os.path.normpath(version_dir / data.get("data_dir", "") / entry["path"]))
        if not stored.is_file():
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_bytes(PAYLOAD)
        body = stored.read_bytes()
        entry.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    manifest.write_text(json.dumps(data, indent=2))
    return manifest


def add_entry(path: str):
    def change(data: dict) -> None:
        data["files"].append({"path": path, "sha256": "", "size": 0})
    return change


def test_an_intact_version_still_verifies(example_repo, tmp_path, capsys):
    published(example_repo, tmp_path / "registry")
    assert main(["registry", "verify", f"file://{tmp_path / 'registry'}", "conf-model", "1.0"]) == 0
    assert "files match the manifest" in capsys.readouterr().out


@pytest.mark.parametrize(("field", "forged", "says"), [
    ("files[", "executable//{outside}/file", "has an empty segment"),
    ("files[", "executable/../../../x", "climbs out with .."),
    ("files[", "data/back\\slash", "contains a backslash"),
    ("files[", "data/bell\x07", "control character"),
    ("executable", "/{outside}/model.joblib", "is absolute"),
    ("data_dir", "../conf-other", "climbs out with .."),
])
def test_registry_verify_reports_a_manifest_path_that_leaves_the_version(example_repo, tmp_path, capsys,
                                                                           field, forged, says):
    registry_dir = tmp_path / "registry"
    published(example_repo, registry_dir)
    forged = forged.format(outside=str(tmp_path / "outside").lstrip("/"))
    if field == "files[":
        manifest = forge(registry_dir, "conf-model", add_entry(forged))
    elif field == "executable":
        manifest = forge(registry_dir, "conf-model", lambda d: d.update(executable=forged))
    else:
        shutil.copytree(registry_dir / "conf-model" / "1.0", registry_dir / "conf-other", ignore=lambda *_: [
            "MANIFEST.json"])
        manifest = forge(registry_dir, "conf-model", lambda d: d.update(data_dir=forged))

    assert main(["registry", "verify", f"file://{registry_dir}", "conf-model", "1.0"]) == 1
    err = capsys.readouterr().err
    assert str(manifest) in err and field in err and repr(forged) in err and says in err


def test_rollback_to_a_forged_manifest_writes_nothing_outside_the_mlserver_repository(
        example_repo, tmp_path, atlas_emulator, capsys):
    """The reproduction: an MLflow-format manifest (a folder is copied whole) with an entry that is absolute
    once the folder prefix is cut off. Before, MLServer's install wrote it at that absolute path, before the
    server was even asked to load anything."""
    registry_dir = tmp_path / "registry"
    published(example_repo, registry_dir, "conf-roll")
    outside = tmp_path / "outside" / "pwned"

    def as_mlflow_folder(data: dict) -> None:
        data["executable"] = "executable/MLmodel"
        data["files"].append({"path": "executable/MLmodel", "sha256": "", "size": 0})
        data["files"].append({"path": f"executable/{outside}", "sha256": "", "size": 0})  # executable//tmp/...

    manifest = forge(registry_dir, "conf-roll", as_mlflow_folder)
    repository = tmp_path / "mlserver-models"
    repository.mkdir()
    target = f"mlserver://127.0.0.1:{free_port()}?repository={repository}"  # nothing needs to answer

    code = main(["rollback", "conf-roll", "--to", "1.0", "--target", target, "--registry", f"file://{registry_dir}",
                 "--atlas", atlas_emulator.url, "--reason", "1.1 misbehaves"])

    err = capsys.readouterr().err
    assert code == 1
    assert str(manifest) in err and "has an empty segment" in err
    assert not outside.exists()
    assert list(repository.iterdir()) == []


@pytest.mark.parametrize("kind", ["mlserver", "mleap"])
def test_rollback_refuses_a_model_name_that_would_leave_the_target_folder(kind, tmp_path, atlas_emulator,
                                                                          mleap_server, capsys):  # noqa: F811
    """Manifest paths are fine, but the manifest's own description names the model ``../escaped``: every
    file a target writes is placed through one confining helper, so nothing lands beside its folder."""
    registry_dir = tmp_path / "registry"
    make_release(tmp_path, registry_dir=registry_dir, exe_name="model.zip", framework="sklearn")
    manifest = registry_dir / "price-model" / "1.2" / "MANIFEST.json"
    data = json.loads(manifest.read_text())
    data["metadata"]["name"] = "../escaped"
    manifest.write_text(json.dumps(data))
    folder = tmp_path / "serving" / "models"
    folder.mkdir(parents=True)
    target = (f"mlserver://127.0.0.1:{free_port()}?repository={folder}" if kind == "mlserver"
              else f"mleap://127.0.0.1:{mleap_server.port}?bundle_dir={folder}")

    code = main(["rollback", "price-model", "--to", "1.2", "--target", target, "--registry",
                 f"file://{registry_dir}", "--atlas", atlas_emulator.url, "--reason", "1.3 misbehaves"])

    err = capsys.readouterr().err
    assert code == 1
    assert "refusing to write '../escaped" in err and str(folder) in err
    assert sorted(p.name for p in (tmp_path / "serving").iterdir()) == ["models"]
