"""The invariant of issue 20, checked the way an auditor would, from Atlas's own audit trail: the build of a
model name and version (``modelgov_model_build``) never changes after it is first written. Later deploys may
link new deployments to it (relationship updates), but its attributes stay exactly those of its creation."""

from __future__ import annotations

import json

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.atlas.constants import BUILD_TYPE
from governance.errors import AtlasError

# the audit events whose details are the entity itself (classification events carry the classification)
ENTITY_EVENTS = ("ENTITY_CREATE", "ENTITY_UPDATE", "ENTITY_PARTIAL_UPDATE", "ENTITY_IMPORT_CREATE",
                 "ENTITY_IMPORT_UPDATE")


def _attributes(event: dict) -> dict | None:
    details = event.get("details") or ""
    _, _, body = details.partition(": ")
    try:
        return (json.loads(body).get("attributes")) if body else None
    except ValueError:
        return None


def _is_default(value: object) -> bool:
    """Real Atlas 2.1 leaves an attribute's default value (0 for ``defaultCpuMillicores``) out of the
    ENTITY_CREATE audit and shows it in later events: not a change."""
    return value in (None, 0, "", False) or value == [] or value == {}


def rewritten_builds(client: AtlasClient) -> list[str]:
    """One line per build whose attributes changed after its creation, per Atlas's audit events."""
    problems: list[str] = []
    try:
        headers = list(client.search_basic({"typeName": BUILD_TYPE, "excludeDeletedEntities": False}))
    except AtlasError as exc:
        if exc.status == 400 and BUILD_TYPE in str(exc):  # our types were never installed: nothing recorded
            return problems
        raise
    for header in headers:
        events = sorted((e for e in client.audit(header["guid"], count=1000) if e.get("action") in ENTITY_EVENTS),
                        key=lambda e: e.get("timestamp") or 0)
        created = next((_attributes(e) for e in events if e.get("action") == "ENTITY_CREATE"), None)
        if created is None:
            continue
        for event in events:
            now = _attributes(event)
            if now is None:
                continue
            changed = sorted(k for k in set(now) | set(created) if now.get(k) != created.get(k)
                             and not (k not in created and _is_default(now.get(k))))
            if changed:
                problems.append(f"{created.get('qualifiedName')}: {event.get('action')} changed {changed}")
    return problems


def assert_no_build_rewritten(url: str, username: str = "admin", password: str = "admin") -> None:
    client = AtlasClient(AtlasSettings(url=url, username=username, password=password))
    try:
        problems = rewritten_builds(client)
    finally:
        client.close()
    assert not problems, "a recorded model version was rewritten:\n" + "\n".join(problems)
