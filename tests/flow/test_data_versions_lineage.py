"""Two builds trained on two snapshots of one Iceberg table show two dataset versions in Atlas lineage."""

from __future__ import annotations

import pytest

from flows.deploy_model import deploy_model
from tests.conftest import write_metadata

pytestmark = pytest.mark.slow
TABLE = "iceberg://prod/sales.orders"


def training_inputs(atlas_client, build_guid: str) -> list[dict]:
    """The datasets Atlas's own lineage shows feeding the build (through the train process)."""
    lineage = atlas_client.lineage(build_guid, "INPUT", depth=2)
    process = [e for e in lineage["guidEntityMap"].values() if e["typeName"] == "modelgov_train_build_process"]
    assert len(process) == 1
    feeding = {r["fromEntityId"] for r in lineage["relations"] if r["toEntityId"] == process[0]["guid"]}
    return [atlas_client.get_entity(g)["entity"] for g in sorted(feeding)]


def test_two_snapshots_of_one_table_are_two_dataset_versions(prefect_api, example_repo, mlserver, atlas,
                                                             atlas_client, tmp_path):
    builds = {}
    for version, snapshot in (("1.0", "5123456789012345678"), ("2.0", "6234567890123456789")):
        write_metadata(example_repo, model_name="iceberg-trained", model_version=version,
                       model_training_data=f"{TABLE}@{snapshot}")
        summary = deploy_model(source=str(example_repo), target=mlserver.target_uri(),
                               registry=f"file://{tmp_path / 'registry'}", atlas_url=atlas.url)
        assert summary["status"] == "deployed"
        [data] = training_inputs(atlas_client, summary["atlas"]["build"]["guid"])
        builds[version] = data

    first, second = builds["1.0"], builds["2.0"]
    assert first["guid"] != second["guid"]
    for data, snapshot in ((first, "5123456789012345678"), (second, "6234567890123456789")):
        assert data["typeName"] == "modelgov_dataset"
        attrs = data["attributes"]
        assert attrs["qualifiedName"] == f"{TABLE}@{snapshot}@modelgov"
        assert (attrs["location"], attrs["dataVersion"], attrs["dataVersionKind"]) == \
            (TABLE, snapshot, "iceberg_snapshot")
    # every version of the table is found by its location
    found = list(atlas_client.search_basic({"typeName": "modelgov_dataset", "excludeDeletedEntities": True,
                                            "entityFilters": {"attributeName": "location", "operator": "eq",
                                                              "attributeValue": TABLE}}))
    assert sorted(e["attributes"]["qualifiedName"] for e in found) == \
        sorted(d["attributes"]["qualifiedName"] for d in (first, second))
