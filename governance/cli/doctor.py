"""``modelgov doctor``: connectivity and credential checks, in plain words."""

from __future__ import annotations

from dataclasses import dataclass

from governance.cli.common import EXIT_FAILED, EXIT_OK, atlas_opt, say
from governance.errors import GovernanceError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _atlas_checks(atlas_url: str | None) -> list[Check]:
    from governance.atlas.client import AtlasClient
    from governance.atlas.typedefs import ML_BASE_TYPES

    client = AtlasClient.from_env(atlas_url)
    where = client.settings.url
    try:
        status = client.status()
    except GovernanceError as exc:
        return [Check("atlas reachable", False, f"{where}: {exc}")]
    checks = [Check("atlas reachable", status == "ACTIVE", f"{where} status {status}")]
    try:
        missing = [t for t in ML_BASE_TYPES if client.get_typedef(t) is None]
        checks.append(Check("atlas credentials", True, f"authenticated as {client.settings.username or 'token'}"))
    except GovernanceError as exc:
        return [*checks, Check("atlas credentials", False, str(exc))]
    checks.append(Check("atlas ML base types", not missing,
                        "present" if not missing else f"missing {', '.join(missing)}"))
    ours = client.get_typedef("modelgov_model_deployment")
    checks.append(Check("modelgov types", ours is not None,
                        "installed" if ours else "not installed: run `modelgov atlas install-types`"))
    return checks


def _registry_check(uri: str) -> Check:
    from governance.registries import get_registry

    try:
        registry = get_registry(uri)
        registry.lookup("modelgov-doctor-probe", "0")
        return Check("registry", True, f"{registry.uri} answers")
    except Exception as exc:  # noqa: BLE001 - doctor reports, never raises
        return Check("registry", False, f"{uri}: {exc}")


def _target_check(uri: str) -> Check:
    from governance.targets import get_target

    try:
        target = get_target(uri)
        state = target.status("modelgov-doctor-probe", "0")
        return Check("target", True, f"{target.host_detail} answers (probe model {state})")
    except Exception as exc:  # noqa: BLE001
        return Check("target", False, f"{uri}: {exc}")


def run_checks(*, atlas_url: str | None, registry: str | None, target: str | None) -> list[Check]:
    checks = _atlas_checks(atlas_url)
    if registry:
        checks.append(_registry_check(registry))
    if target:
        checks.append(_target_check(target))
    return checks


def cmd_doctor(args) -> int:
    results = run_checks(atlas_url=args.atlas, registry=args.registry, target=args.target)
    for check in results:
        say(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok for c in results) else EXIT_FAILED


def add_parsers(sub) -> None:
    p = sub.add_parser("doctor", help="check connectivity and credentials")
    p.add_argument("--registry")
    p.add_argument("--target")
    atlas_opt(p)
    p.set_defaults(func=cmd_doctor)
