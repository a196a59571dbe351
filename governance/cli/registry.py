"""``modelgov registry verify | gc``: re-read a registry version and check every sha256; remove what
interrupted publishes left, never a committed version."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from governance.cli.common import EXIT_FAILED, EXIT_OK, say
from governance.errors import ConfigError

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` or ``0``; a bad value is a ConfigError saying the format."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match:
        raise ConfigError(f"--older-than {text!r}: use a number with a unit s, m, h, d or w (e.g. 12h, 7d)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return timedelta(**{_UNITS[unit]: value})


def cmd_registry_verify(args: argparse.Namespace) -> int:
    from governance.registries import get_registry

    registry = get_registry(args.registry)
    version = registry.lookup(args.name, args.version)
    if version is None:
        say(f"{registry.version_location(args.name, args.version)}: no complete version (no manifest)",
            stderr=True)
        return EXIT_FAILED
    problems = registry.verify(version)
    against = ""
    if args.atlas:
        problems += _against_record(version, args.atlas, args.namespace)
        against = " and the manifest is the version Atlas recorded"
    signature = _signature_state(registry, version, problems)
    approvals = _kept_approvals(registry, version, problems)
    for problem in problems:
        say(problem, stderr=True)
    if problems:
        return EXIT_FAILED
    say(f"{version.location}: {len(version.manifest.files)} files match the manifest{against}; {signature}")
    for line in approvals:
        say(f"  approval {line}")
    return EXIT_OK


def _kept_approvals(registry, version, problems: list[str]) -> list[str]:
    """Each signed approval kept beside the version, checked offline (``governance.trust.approvals``); one that
    does not hold (rewritten, made for other bytes, signed by someone who is not an approver) joins ``problems``."""
    from governance.trust.approvals import check_kept_approval
    from governance.trust.signing import TrustPolicy

    approvers = TrustPolicy.from_env().approvers
    m = version.manifest
    lines = []
    for uri, data in registry.kept_approvals(version):
        kept = check_kept_approval(uri, data, m.model_name, m.model_version, m.content_digest, approvers)
        if kept.problem:
            problems.append(f"approval {kept.describe()}")
        else:
            lines.append(kept.describe())
    return lines


def _signature_state(registry, version, problems: list[str]) -> str:
    """The signature's state under the trust policy (``governance.trust.signing``); a failure joins ``problems``."""
    from governance.trust.signing import TRUSTED_CA_ENV, TRUSTED_KEYS_ENV, SignatureError, TrustPolicy

    try:
        signer, checked = registry.signature_of(version, TrustPolicy.from_env())
    except SignatureError as exc:
        problems.append(str(exc))
        return "signature refused"
    if signer and not checked:
        return (f"signed by {signer.describe()}, not checked (set {TRUSTED_KEYS_ENV} to the public keys you "
                f"trust, or {TRUSTED_CA_ENV})")
    return f"signature valid, by trusted {signer.describe()}" if signer else "unsigned"


def _against_record(version, atlas_url: str, namespace: str | None) -> list[str]:
    """How the registry version differs from Atlas's record of its name and version (the reference)."""
    from governance.atlas.client import AtlasClient, AtlasSettings
    from governance.atlas.constants import DEFAULT_NAMESPACE
    from governance.deploy.reference import recorded_build

    manifest = version.manifest
    client = AtlasClient(AtlasSettings.from_env(atlas_url))
    try:
        build = recorded_build(client, namespace or DEFAULT_NAMESPACE, manifest.model_name, manifest.model_version)
    finally:
        client.close()
    if build is None:
        return [f"{version.location}: Atlas at {atlas_url} records no build of {manifest.model_name} "
                f"{manifest.model_version}; nothing to compare with"]
    return [f"{version.location}: differs from Atlas's record {build.qualified_name} (first registered at "
            f"{build.registry_uri}): {d}" for d in build.differences(manifest)]


def cmd_registry_gc(args: argparse.Namespace) -> int:
    from governance.registries import get_registry

    registry = get_registry(args.registry)
    older_than = parse_duration(args.older_than)
    leftovers = registry.gc(older_than=older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for leftover in leftovers:
        say(f"{verb} {leftover.kind}: {leftover.uri} (last modified {leftover.modified:%Y-%m-%d %H:%M:%S}Z)")
    say(f"{registry.uri}: {verb} {len(leftovers)} leftover(s) older than {args.older_than}; "
        "committed versions are never touched", stderr=True)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("registry", help="model registry operations")
    registry_sub = p.add_subparsers(dest="registry_command", required=True)
    p = registry_sub.add_parser("verify", help="re-read a registry version and check every sha256")
    p.add_argument("registry")
    p.add_argument("name")
    p.add_argument("version")
    p.add_argument("--atlas", default=None, help="also compare the manifest with what this Atlas recorded for the "
                                                 "version (the reference): files, owner, content digest")
    p.add_argument("--namespace", default=None, help="Atlas namespace of the records (default modelgov)")
    p.set_defaults(func=cmd_registry_verify)
    p = registry_sub.add_parser("gc", help="remove abandoned publish attempts, temp folders and incomplete "
                                           "S3 multipart uploads (never a committed version)")
    p.add_argument("registry")
    p.add_argument("--older-than", default="1d",
                   help="only leftovers last modified this long ago (default 1d; a running publish is younger)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    p.set_defaults(func=cmd_registry_gc)
