"""The build record is the registered version: written from its immutable manifest, never rewritten."""

from __future__ import annotations

import shutil

import pytest

from flows.deploy_model import deploy_model
from governance.deploy import saga
from governance.deploy.ledger import Ledger
from governance.deploy.request import DeployRequest
from governance.registries import get_registry
from governance.staging.validate import validate_repo
from governance.targets import get_target
from tests.conftest import write_metadata

pytestmark = pytest.mark.slow


def test_later_deploys_never_rewrite_the_build(prefect_api, example_repo, tmp_path, mlserver, atlas, atlas_client):
    write_metadata(example_repo, model_name="immutable-build")
    (example_repo / "examples" / "response.json").unlink()  # the smoke answer must not become the example
    registry = f"file://{tmp_path / 'registry'}"
    first = deploy_model(source=str(example_repo), target=mlserver.target_uri(), registry=registry,
                         atlas_url=atlas.url)
    build = atlas_client.get_entity(first["atlas"]["build"]["guid"])["entity"]["attributes"]
    assert build["stagingRepoUri"] == str(example_repo)
    assert build.get("exampleResponse") is None

    # the same bytes staged elsewhere (another source URL) and recorded through the ledger again
    elsewhere = tmp_path / "same-bytes-other-place"
    shutil.copytree(example_repo, elsewhere)
    staged = validate_repo(elsewhere, source="https://files.example/other-copy.tar.gz", commit="ffff0000")
    registered = get_registry(registry).publish(staged)
    assert registered.created is False
    request = DeployRequest(source=staged.source, target_uri=mlserver.target_uri(), registry_uri=registry,
                            atlas_url=atlas.url, environment=None)
    record = saga.start_record(staged, registered, get_target(mlserver.target_uri()), request, "second-run")
    recorded = Ledger(atlas_client).record_intent(record)
    assert recorded.build.guid == first["atlas"]["build"]["guid"]
    again = atlas_client.get_entity(first["atlas"]["build"]["guid"])["entity"]["attributes"]
    for attribute in ("stagingRepoUri", "stagingCommit", "artifactChecksums", "executableSha256",
                      "exampleRequest", "exampleResponse", "createTime"):
        assert again.get(attribute) == build.get(attribute), attribute
