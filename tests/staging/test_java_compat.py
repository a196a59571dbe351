"""Staged repos prepared for the original (Java) framework are read exactly as it read them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from governance.errors import ValidationError
from governance.registries import get_registry
from governance.staging.properties import parse_properties
from governance.staging.validate import METADATA_SIZE_LIMIT, validate_repo
from tests.conftest import ROOT, write_metadata


def problems_of(repo) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate_repo(repo)
    return [str(p) for p in info.value.problems]


def test_only_java_line_terminators_end_a_line():
    text = "a = one\x85still one\u2028and\u2029this\ftoo\x0bend\rb = two\r\nc = three\nd = four"
    values = {p.key: (p.value, p.line) for p in parse_properties(text)}
    assert values == {"a": ("one\x85still one\u2028and\u2029this\ftoo\x0bend", 1), "b": ("two", 2),
                      "c": ("three", 3), "d": ("four", 4)}


def test_form_feed_at_line_start_is_whitespace_as_in_java():
    assert [(p.key, p.value) for p in parse_properties("\f  key = v\n")] == [("key", "v")]


def test_metadata_over_the_size_limit_is_refused_with_size_and_limit(example_repo):
    write_metadata(example_repo)
    with (example_repo / "metadata.txt").open("a") as fh:
        fh.write("# padding\n" * (METADATA_SIZE_LIMIT // 10 + 1))
    size = (example_repo / "metadata.txt").stat().st_size
    assert f"metadata.txt: is {size} bytes; the limit for a metadata file is 1048576 bytes (1 MiB)" \
        in problems_of(example_repo)


def test_a_folder_under_executable_is_named_as_such(example_repo):
    (example_repo / "executable" / "bundle" / "root").mkdir(parents=True)
    (example_repo / "executable" / "bundle" / "root" / "model.json").write_text("{}")
    problems = problems_of(example_repo)
    assert any(p.startswith("executable/bundle/: is a folder; executable/ must hold exactly one file")
               for p in problems), problems


def test_legacy_metadata_file_in_iso_8859_1(example_repo):
    (example_repo / "metadata.txt").unlink()
    (example_repo / "modelMetadata.txt").write_bytes(
        "model.owner = Ana M\u00fcller\nmodel.owner.lob = pricing\nmodel.name = rental pricing prediction\n"
        "model.type = gradient boosting regression\nmodel.version = 1.1\n"
        "model.description = pr\u00e9dit les prix\nmodel.microservice.endpoint=target\n".encode("iso-8859-1"))
    staged = validate_repo(example_repo)
    meta = staged.metadata
    assert staged.metadata_file == "modelMetadata.txt"
    assert (meta.owner, meta.description) == ("Ana M\u00fcller", "pr\u00e9dit les prix")
    assert (meta.display_name, meta.name) == ("rental pricing prediction", "rental-pricing-prediction")


def test_names_as_people_write_them_get_a_stable_slug(example_repo, tmp_path):
    write_metadata(example_repo, model_name="Rental Pricing  Prédiction (EU)")
    staged = validate_repo(example_repo)
    assert staged.metadata.display_name == "Rental Pricing  Prédiction (EU)"
    assert staged.metadata.name == "rental-pricing-prediction-eu"
    assert validate_repo(example_repo).metadata.name == staged.metadata.name  # stable
    version = get_registry(f"file://{tmp_path / 'reg'}").publish(staged)
    assert version.location.endswith("/reg/rental-pricing-prediction-eu/1.0")
    proc = subprocess.run([sys.executable, "-m", "governance", "validate", str(example_repo)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "'Rental Pricing  Prédiction (EU)' (id rental-pricing-prediction-eu)" in proc.stdout
    as_json = subprocess.run([sys.executable, "-m", "governance", "validate", str(example_repo), "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    model = json.loads(as_json.stdout)["model"]
    assert (model["name"], model["display_name"]) == ("rental-pricing-prediction-eu", "Rental Pricing  Prédiction (EU)")
