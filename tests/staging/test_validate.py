import os

import pytest

from governance.errors import ValidationError
from governance.staging.validate import validate_repo
from tests.conftest import write_metadata


def problems_of(repo) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate_repo(repo)
    return [str(p) for p in info.value.problems]


def test_example_is_valid_and_hashed(example_repo):
    staged = validate_repo(example_repo)
    meta = staged.metadata
    assert (meta.name, meta.version, meta.owner, meta.owner_lob) == ("iris-classifier", "1.0", "Ana Müller",
                                                                      "retail-analytics")
    assert meta.version_number == 1_000_000
    assert meta.training_data == ("data/iris.csv",)
    assert meta.extra == {"model.sensitivity": "public"}
    assert "Classifies iris flowers" in meta.description and "\\" not in meta.description
    assert staged.executable == "executable/model.joblib"
    assert all(len(f.sha256) == 64 and f.size > 0 for f in staged.files)
    assert staged.example_request["inputs"][0]["shape"] == [2, 4]


def test_empty_and_missing_keys_name_the_line(example_repo):
    write_metadata(example_repo, model_version="", model_owner=None)
    problems = problems_of(example_repo)
    assert "metadata.txt:2: model.version is empty" in problems
    assert "metadata.txt: model.owner is missing" in problems


def test_bad_values_are_reported_together(example_repo):
    write_metadata(example_repo, model_name="Iris/Classifier", model_version="1.x",
                   model_training_data="data/nope.csv, ftp//bad")
    problems = "\n".join(problems_of(example_repo))
    assert "metadata.txt:1: model.name 'Iris/Classifier' must be at most 128 characters without '/'" in problems
    assert "metadata.txt:2: model.version '1.x' must be numeric" in problems
    assert "'ftp//bad' is neither a dataset URI" in problems


def test_training_data_file_must_exist(example_repo):
    write_metadata(example_repo, model_training_data="data/missing.csv")
    assert any("'data/missing.csv' is not a file in the staged repo" in p for p in problems_of(example_repo))


def test_duplicate_and_unknown_keys(example_repo):
    (example_repo / "metadata.txt").write_text((example_repo / "metadata.txt").read_text()
                                               + "model.name = other\nowner = x\n")
    problems = "\n".join(problems_of(example_repo))
    assert "model.name is set twice (first on line 2)" in problems
    assert "unknown key 'owner'" in problems


def test_legacy_metadata_file_name_is_accepted(example_repo):
    (example_repo / "metadata.txt").rename(example_repo / "modelMetadata.txt")
    assert validate_repo(example_repo).metadata_file == "modelMetadata.txt"


def test_executable_must_be_exactly_one_file(example_repo):
    (example_repo / "executable" / "second.pkl").write_bytes(b"x")
    assert any(p.startswith("executable/: must hold exactly one serialized model file, found 2")
               for p in problems_of(example_repo))
    for f in (example_repo / "executable").iterdir():
        f.unlink()
    assert any("found 0" in p for p in problems_of(example_repo))


def test_missing_readme_and_metadata(example_repo):
    (example_repo / "README.md").unlink()
    (example_repo / "metadata.txt").unlink()
    problems = problems_of(example_repo)
    assert any(p.startswith("README.md: is missing") for p in problems)
    assert any(p.startswith("metadata.txt: is missing") for p in problems)


def test_symlinks_are_refused(example_repo, tmp_path):
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", example_repo / "code" / "link")
    assert "code/link: is a symbolic link; staged repos must hold plain files" in problems_of(example_repo)


def test_bad_example_json_names_line(example_repo):
    (example_repo / "examples" / "request.json").write_text('{\n  "inputs": [\n}\n')
    assert any(p.startswith("examples/request.json:3: is not valid JSON") for p in problems_of(example_repo))


def test_non_utf8_metadata(example_repo):
    (example_repo / "metadata.txt").write_bytes("model.owner = J\xfcrgen\n".encode("latin-1"))
    assert any(p.startswith("metadata.txt: is not UTF-8") for p in problems_of(example_repo))
