"""``modelgov`` command line: validate, deploy, atlas install-types, registry verify, doctor, and the
compliance commands (search, history, trace, verify, report) from ``governance.cli_compliance``.

Exit status: 0 success, 1 a step failed (the message names the step), 2 bad usage or configuration.
Secrets are read from the environment (ATLAS_USERNAME/ATLAS_PASSWORD/ATLAS_TOKEN, AWS_*), never from flags.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence

from governance.errors import ConfigError, GovernanceError, StepFailed, ValidationError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def cmd_validate(args: argparse.Namespace) -> int:
    from governance.staging.intake import fetch_and_validate

    try:
        staged, fetched = fetch_and_validate(args.source)
    except ValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{args.source}: {len(exc.problems)} problem(s); not deployable", file=sys.stderr)
        return EXIT_FAILED
    try:
        meta = staged.metadata
        if args.json:
            _print_json({"valid": True, "model": meta.to_dict(), "commit": staged.commit,
                         "executable": staged.executable, "files": [f.to_dict() for f in staged.files]})
        else:
            shown = meta.name if meta.display_name == meta.name else f"{meta.display_name!r} (id {meta.name})"
            print(f"{args.source}: valid: {shown} {meta.version} ({meta.type}), owner {meta.owner} "
                  f"({meta.owner_lob}), executable {staged.executable}, {len(staged.files)} files"
                  + (f", commit {staged.commit}" if staged.commit else ""))
    finally:
        fetched.cleanup()
    return EXIT_OK


def _prefect_defaults() -> None:
    """Sane defaults for the ephemeral Prefect API on slow machines; explicit settings win."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@contextlib.contextmanager
def foreground_run() -> Iterator[None]:
    """Settings for a flow run the CLI runs in the foreground: Prefect's defaults, and no heartbeat thread.

    A sync flow joins its heartbeat thread at exit, which sleeps in 1 s steps: up to a second per deploy
    (0.9 s measured, a quarter of a warm deploy). Heartbeats let a server-side automation mark a silent run
    crashed; a foreground run has its operator watching the exit status, and a killed deploy's Atlas record is
    settled by the next deploy. Workers and served deployments keep their heartbeats; setting
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY keeps them here too."""
    _prefect_defaults()
    if os.environ.get("PREFECT_FLOWS_HEARTBEAT_FREQUENCY"):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _resolve(args: argparse.Namespace):
    """The library's one resolution (flags, then modelgov.yaml), done early so bad names fail before Prefect."""
    from governance.config import resolve_run

    return resolve_run(args.target, args.registry, args.atlas, args.environment, args.namespace, args.config)


def cmd_deploy(args: argparse.Namespace) -> int:
    from governance.cli_operations import batch_sources, cmd_deploy_batch
    from governance.secrets import refuse_credentials

    sources = batch_sources(args.sources, args.from_file)
    for source in sources:  # before Prefect stores the flow's parameters (and before a dry run prints)
        refuse_credentials(source, "source")
    settings = _resolve(args)  # refuses target, registry and Atlas URLs that carry credentials
    if len(sources) != 1 or args.from_file:
        return cmd_deploy_batch(args, sources)
    args.source = sources[0]
    if args.dry_run:
        from governance.pipeline import plan

        try:
            planned = plan(args.source, settings.target_uri, settings.registry_uri)
        except ValidationError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return EXIT_FAILED
        if args.json:
            _print_json(planned)
        else:
            print(planned["rendered"] or json.dumps(planned, indent=2, sort_keys=True))
        return EXIT_OK
    _prefect_defaults()  # before Prefect's import reads its settings
    from flows.deploy_model import deploy_model

    try:
        # names, not resolved URIs: the flow resolves them exactly as a worker or a scheduled run does
        with foreground_run():
            summary = deploy_model(source=args.source, target=args.target, registry=args.registry, atlas_url=args.atlas,
                                   environment=args.environment, namespace=args.namespace, config=args.config,
                                   progress=not args.json, approval_timeout=args.approval_timeout)
    except StepFailed as exc:
        if exc.step == "validate" and isinstance(exc.cause, ValidationError):
            for problem in exc.cause.problems:
                print(problem, file=sys.stderr)
        print(f"modelgov deploy: {exc.step} step failed: {exc.cause}", file=sys.stderr)
        if args.json:
            _print_json(exc.summary or {"status": "failed", "step": exc.step, "error": str(exc.cause)})
        return EXIT_FAILED
    if args.json:
        _print_json(summary)
    elif summary["status"] == "unchanged":
        print(f"unchanged: {summary['message']}; recorded as {summary['existing_deployment']['qualifiedName']}")
    else:
        print(f"deployed {summary['model']['name']} {summary['model']['version']} -> {summary['endpoint']}")
        print(f"  registry: {summary['registry_uri']}")
        if summary.get("record") == "pending":
            print(f"  atlas: record PENDING in the local outbox (Atlas unreachable): {summary['message']}")
        elif summary.get("atlas"):
            print(f"  atlas build: {summary['atlas']['build']['qualifiedName']} ({summary['atlas']['build']['guid']})")
            print(f"  atlas deployment: {summary['atlas']['deployment']['qualifiedName']} "
                  f"({summary['atlas']['deployment']['guid']})")
        if summary.get("prediction") is not None:
            print(f"  smoke prediction: {json.dumps(summary['prediction'])}")
        for name in summary.get("superseded") or []:
            print(f"  marked stopped: {name}")
    return EXIT_OK


def _atlas(args: argparse.Namespace):
    from governance.atlas.client import AtlasClient

    return AtlasClient.from_env(args.atlas)


def cmd_install_types(args: argparse.Namespace) -> int:
    from governance.atlas.typedefs import install_types

    report = install_types(_atlas(args))
    print(f"Atlas types: {report.summary()}")
    return EXIT_OK


def cmd_registry_verify(args: argparse.Namespace) -> int:
    from governance.registries import get_registry

    registry = get_registry(args.registry)
    version = registry.lookup(args.name, args.version)
    if version is None:
        print(f"{registry.version_location(args.name, args.version)}: no complete version (no manifest)",
              file=sys.stderr)
        return EXIT_FAILED
    problems = registry.verify(version)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return EXIT_FAILED
    print(f"{version.location}: {len(version.manifest.files)} files match the manifest")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from governance.doctor import run_checks

    results = run_checks(atlas_url=args.atlas, registry=args.registry, target=args.target)
    for check in results:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
    return EXIT_OK if all(c.ok for c in results) else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgov", description="Governed model deployments with Apache Atlas")
    sub = parser.add_subparsers(dest="command", required=True)

    def atlas_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--atlas", default=None, help="Atlas base URL (default $ATLAS_URL or http://localhost:21000)")

    p = sub.add_parser("validate", help="check a staged repo (folder, archive, or git+URL@REF)")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("deploy", help="validate, publish, deploy and record staged repos (several: one batch run)")
    p.add_argument("sources", nargs="*", metavar="SOURCE")
    p.add_argument("--from-file", metavar="LIST", help="more sources, one per line (# comments)")
    p.add_argument("--per-target-limit", type=int, default=2, help="batch: models deployed at once per target")
    p.add_argument("--approval-timeout", type=int, default=24 * 3600, help="targets marked production: seconds to wait for approval")
    p.add_argument("--target", help="a target name from modelgov.yaml, or mlserver://HOST:PORT?repository=DIR, "
                                    "mleap://HOST:PORT?bundle_dir=DIR, kserve://NAMESPACE?context=CTX")
    p.add_argument("--registry", help="a registry name from modelgov.yaml, or file:///DIR, s3://BUCKET/PREFIX, "
                                      "hdfs://NAMENODE:PORT/PATH")
    p.add_argument("--environment", choices=["production", "staging"], default=None)
    p.add_argument("--namespace", default=None, help="Atlas namespace suffix of qualifiedNames (default modelgov)")
    p.add_argument("--config", default=None, help="config file (default $MODELGOV_CONFIG or ./modelgov.yaml)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate and show what would be deployed (KServe: the manifest); writes nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    atlas_opt(p)
    p.set_defaults(func=cmd_deploy)

    from governance.cli_compliance import register as register_compliance

    register_compliance(sub, atlas_opt)  # search, history, trace, verify, report

    p = sub.add_parser("atlas", help="Atlas administration")
    atlas_sub = p.add_subparsers(dest="atlas_command", required=True)
    p2 = atlas_sub.add_parser("install-types", help="create or upgrade modelgov's Atlas typedefs (idempotent)")
    atlas_opt(p2)
    p2.set_defaults(func=cmd_install_types)

    p = sub.add_parser("registry", help="model registry operations")
    reg_sub = p.add_subparsers(dest="registry_command", required=True)
    p2 = reg_sub.add_parser("verify", help="re-read a registry version and check every sha256")
    p2.add_argument("registry")
    p2.add_argument("name")
    p2.add_argument("version")
    p2.set_defaults(func=cmd_registry_verify)
    from governance.cli_registry import add_gc_parser

    add_gc_parser(reg_sub)
    from governance.cli_outbox import add_outbox_parser

    add_outbox_parser(sub)

    p = sub.add_parser("doctor", help="check connectivity and credentials")
    p.add_argument("--registry")
    p.add_argument("--target")
    atlas_opt(p)
    p.set_defaults(func=cmd_doctor)

    from governance.cli_operations import add_operations_commands

    add_operations_commands(sub, atlas_opt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"modelgov: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GovernanceError as exc:
        print(f"modelgov: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
