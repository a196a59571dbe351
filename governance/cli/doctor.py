"""``modelgov doctor``: connectivity and credential checks, in plain words.

Per service it also says how modelgov authenticates (basic, token, Kerberos with the principal and the
ticket's expiry, HDFS simple auth with the user) and, over HTTPS, whose certificate the server presents, until
when, and whether the CA bundle in force (``governance.tls``) trusts it."""

from __future__ import annotations

from dataclasses import dataclass

from governance.cli.common import EXIT_FAILED, EXIT_OK, atlas_opt, say
from governance.errors import GovernanceError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _ticket_detail(ticket) -> str:  # noqa: ANN001 - governance.kerberos.Ticket
    expires = ticket.expires.strftime("%Y-%m-%d %H:%M:%S UTC") if ticket.expires else "unknown"
    return f"kerberos as {ticket.principal} (realm {ticket.realm}, {ticket.source}), ticket expires {expires}"


def _tls_check(service: str, url: str) -> list[Check]:
    """The certificate of an HTTPS endpoint: subject, issuer, expiry, trusted or not (none for plain HTTP)."""
    from governance.tls import server_certificate

    try:
        cert = server_certificate(url)
    except Exception as exc:  # noqa: BLE001 - doctor reports, never raises
        return [Check(f"{service} tls", False, f"{url}: cannot read the certificate ({exc})")]
    if cert is None:
        return [Check(f"{service} tls", True, f"{url}: plain HTTP, no TLS")]
    detail = (f"{cert.where} presents {cert.subject}, issued by {cert.issuer}, expires "
              f"{cert.expires.strftime('%Y-%m-%d %H:%M:%S UTC')}")
    return [Check(f"{service} tls", cert.trusted, detail + ("" if cert.trusted else f": NOT TRUSTED ({cert.problem})"))]


def _atlas_auth(client) -> str:  # noqa: ANN001 - AtlasClient
    if client.ticket is not None:
        return _ticket_detail(client.ticket)
    if client.settings.token:
        return "bearer token (ATLAS_TOKEN)"
    if client.settings.username is not None:
        return f"basic as {client.settings.username}"
    return "none (no ATLAS_USERNAME, ATLAS_TOKEN or ATLAS_AUTH=kerberos)"


def _atlas_checks(atlas_url: str | None) -> list[Check]:
    from governance.atlas.client import AtlasClient, AtlasSettings
    from governance.atlas.typedefs import ML_BASE_TYPES

    try:
        settings = AtlasSettings.from_env(atlas_url)
    except GovernanceError as exc:
        return [Check("atlas settings", False, str(exc))]
    tls = _tls_check("atlas", settings.url)
    try:
        client = AtlasClient(settings)
    except GovernanceError as exc:
        return [*tls, Check("atlas auth", False, str(exc))]
    tls.append(Check("atlas auth", True, _atlas_auth(client)))
    where = client.settings.url
    try:
        status = client.status()
    except GovernanceError as exc:
        return [*tls, Check("atlas reachable", False, f"{where}: {exc}")]
    checks = [*tls, Check("atlas reachable", status == "ACTIVE", f"{where} status {status}")]
    try:
        missing = [t for t in ML_BASE_TYPES if client.get_typedef(t) is None]
        checks.append(Check("atlas credentials", True, "accepted"))
    except GovernanceError as exc:
        return [*checks, Check("atlas credentials", False, str(exc))]
    checks.append(Check("atlas ML base types", not missing,
                        "present" if not missing else f"missing {', '.join(missing)}"))
    ours = client.get_typedef("modelgov_model_deployment")
    checks.append(Check("modelgov types", ours is not None,
                        "installed" if ours else "not installed: run `modelgov atlas install-types`"))
    return checks


def _registry_checks(uri: str) -> list[Check]:
    from governance.registries import get_registry

    checks: list[Check] = []
    try:
        registry = get_registry(uri)
        namenodes = getattr(registry, "namenodes", None)
        if namenodes is not None:  # HDFS: how we authenticate, and each namenode's certificate
            for namenode in namenodes:
                checks += _tls_check("registry", namenode)
            ticket = registry.ticket
            checks.append(Check("registry auth", True, _ticket_detail(ticket) if ticket else
                                f"simple (user.name={registry.client._session.params.get('user.name')})"))
        registry.lookup("modelgov-doctor-probe", "0")
        return [*checks, Check("registry", True, f"{registry.uri} answers")]
    except Exception as exc:  # noqa: BLE001 - doctor reports, never raises
        return [*checks, Check("registry", False, f"{uri}: {exc}")]


def _target_checks(uri: str) -> list[Check]:
    from governance.targets import get_target

    checks: list[Check] = []
    try:
        target = get_target(uri)
        base_url = getattr(target, "base_url", None)
        if isinstance(base_url, str):
            checks += _tls_check("target", base_url)
        state = target.status("modelgov-doctor-probe", "0")
        return [*checks, Check("target", True, f"{target.host_detail} answers (probe model {state})")]
    except Exception as exc:  # noqa: BLE001
        return [*checks, Check("target", False, f"{uri}: {exc}")]


def run_checks(*, atlas_url: str | None, registry: str | None, target: str | None) -> list[Check]:
    checks = _atlas_checks(atlas_url)
    if registry:
        checks.extend(_registry_checks(registry))
    if target:
        checks.extend(_target_checks(target))
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
