"""Fast checks of issue 20's rules that need no serving target: version strings are ASCII digits, and the
audit-trail check that every Atlas-backed flow test runs after itself (``tests.record_invariant``) does find
a rewritten model version."""

from __future__ import annotations

from emulators.atlas import AtlasEmulator
from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import BUILD_TYPE, PROJECT_TYPE
from governance.atlas.typedefs import install_types
from governance.cli import main
from tests.conftest import write_metadata
from tests.record_invariant import rewritten_builds


def test_a_version_with_non_ascii_digits_is_refused(example_repo, capsys):
    write_metadata(example_repo, model_version="1\u0660")  # ARABIC-INDIC DIGIT ZERO: int() reads it as 10
    assert main(["validate", str(example_repo)]) == 1
    assert "model.version '1\u0660' must be numeric like 3, 1.2 or 1.2.0" in capsys.readouterr().err


def test_the_audit_check_finds_a_rewritten_build():
    with AtlasEmulator(host="127.0.0.1", port=0) as atlas:
        client = AtlasClient(AtlasSettings(url=atlas.url, username="admin", password="admin"))
        install_types(client)
        project = {"typeName": PROJECT_TYPE, "guid": "-2", "attributes": {"qualifiedName": "m@modelgov", "name": "m"}}
        build = {"typeName": BUILD_TYPE, "guid": "-1",
                 "attributes": {"qualifiedName": "m/1.0@modelgov", "name": "m v1.0", "owner": "Ana", "version": 1000000,
                                "executableSha256": "a" * 64},
                 "relationshipAttributes": {"project": {"guid": "-2", "relationshipType": "ml_project_model_build"}}}
        client.upsert_entities([project, build])
        client.upsert_entities([project, build])  # the same attributes again: no change
        assert rewritten_builds(client) == []
        client.upsert_entities([project, {**build, "attributes": {**build["attributes"], "owner": "Mallory"}}])
        assert rewritten_builds(client) == ["m/1.0@modelgov: ENTITY_UPDATE changed ['owner']"]
        client.close()
