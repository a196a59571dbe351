"""`modelgov bom DEPLOYMENT`: a CycloneDX 1.6 ML-BOM of a deployment, from test_card's history (a signed, approved
MLeap model trained on an Iceberg snapshot, a versioned S3 object and a file shipped in the version, replaced by
a newer version), checked with cyclonedx-python-lib's strict JSON validator against the official schema."""

from __future__ import annotations

import copy
import json
import re

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from governance.compliance.bom import InvalidBom, validate
from tests.compliance.test_safe_output import cli
from tests.flow import test_card
from tests.flow.test_card import IMAGE, LIMITS, SCRIPT

pytestmark = pytest.mark.slow
history = test_card.history  # the card's deployed history (module-scoped fixture), built again for this module


def bom_of(history, deployment: str) -> dict:
    return bom_at(history.atlas_url, deployment)


def bom_at(atlas_url: str, deployment: str) -> dict:
    proc = cli("bom", deployment, "--atlas", atlas_url)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_ml_bom_is_valid_cyclonedx_1_6_and_holds_the_record(history):
    deployment = history.first.atlas["deployment"]
    document = bom_of(history, deployment["qualifiedName"])
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    assert document == bom_of(history, deployment["guid"]) | {k: document[k] for k in ("serialNumber", "metadata")}

    served = document["metadata"]["component"]
    assert (served["type"], served["name"]) == ("application", deployment["qualifiedName"])
    served_props = {p["name"]: p["value"] for p in served["properties"]}
    assert served_props["modelgov:environment"] == "production" and served_props["modelgov:status"] == "stopped"
    assert served_props["modelgov:approver"] == "Ana Approver"

    by_type: dict[str, list[dict]] = {}
    for component in document["components"]:
        by_type.setdefault(component["type"], []).append(component)
    [model] = by_type["machine-learning-model"]
    files = {f["path"]: f["sha256"] for f in history.manifest["files"]}
    assert (model["name"], model["version"], model["description"]) == ("credit-risk", "1.0", SCRIPT)
    assert model["hashes"] == [{"alg": "SHA-256", "content": files["executable/model.zip"]}]
    assert {c["name"]: c["hashes"][0]["content"] for c in model["components"]} == files
    assert {c["type"] for c in model["components"]} == {"file"}
    references = {r["type"]: r for r in model["externalReferences"]}
    assert references["distribution"]["url"].endswith("/registry/credit-risk/1.0")
    assert references["vcs"]["url"].startswith("git+file://") and history.commit in references["vcs"]["comment"]
    model_props = {p["name"]: p["value"] for p in model["properties"]}
    assert model_props["modelgov:signerFingerprint"] == history.fingerprint
    assert model_props["modelgov:owner"] == "Ana Müller"

    card = model["modelCard"]
    assert card["modelParameters"]["task"] == "linear regression"
    assert card["considerations"] == {"useCases": [IMAGE], "technicalLimitations": [LIMITS]}
    assert {p["name"]: p["value"] for p in card["properties"]} == {
        "modelgov:riskTier": "high", "modelgov:validationStatus": "conditional",
        "modelgov:validatedBy": "Model Risk Office", "modelgov:validationDate": "2026-11-30"}

    data = {c["bom-ref"]: c for c in by_type["data"]}
    assert sorted(ref["ref"] for ref in card["modelParameters"]["datasets"]) == sorted(data)
    versions = {c["name"]: c.get("version") for c in data.values()}
    assert versions["iceberg://prod/lending.loans"] == "5123"
    assert versions["s3://lake/loans/train.parquet"] == "v7"
    shipped = next(c for c in data.values() if c["name"].endswith("/data/train.csv"))
    assert shipped["version"] == files["data/train.csv"]  # the file shipped in the version: its registered sha256
    assert shipped["hashes"] == [{"alg": "SHA-256", "content": files["data/train.csv"]}]
    assert all(c["data"][0]["type"] == "dataset" for c in data.values())

    [runtime] = by_type["platform"]
    assert runtime["name"] == "mleap" and "version" not in runtime  # the MLeap record holds no server version
    depends = {d["ref"]: set(d.get("dependsOn") or []) for d in document["dependencies"]}
    assert depends[served["bom-ref"]] == {model["bom-ref"], runtime["bom-ref"]}
    assert depends[model["bom-ref"]] == set(data)


def test_the_check_refuses_what_the_schema_refuses(history):
    document = bom_of(history, history.second.atlas["deployment"]["guid"])
    validate(document)
    broken = copy.deepcopy(document)
    model = next(c for c in broken["components"] if c["type"] == "machine-learning-model")
    model["modelCard"]["considerations"]["useCases"] = "one string, not a list"
    with pytest.raises(InvalidBom, match="not valid CycloneDX 1.6"):
        validate(broken)
    missing = cli("bom", "no-such-deployment@modelgov", "--atlas", history.atlas_url)
    assert missing.returncode == 1 and "no modelgov_model_deployment" in missing.stderr


def test_the_runtime_version_is_the_mlserver_that_served(prefect_api, example_repo, mlserver, atlas, tmp_path):
    """MLServer says its version (GET /v2) at deploy; the BOM names it: the one installed in its environment."""
    from flows.deploy_model import deploy_model
    from tests.conftest import MLSERVER_BIN

    [installed] = MLSERVER_BIN.parent.parent.glob("lib/python*/site-packages/mlserver-*.dist-info")
    summary = deploy_model(source=str(example_repo), target=mlserver.target_uri(),
                           registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
    document = bom_at(atlas.url, summary["atlas"]["deployment"]["guid"])
    [runtime] = [c for c in document["components"] if c["type"] == "platform"]
    assert (runtime["name"], runtime["version"]) == ("mlserver", re.fullmatch(r"mlserver-(.+)\.dist-info",
                                                                              installed.name)[1])
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document)) is None
