"""``modelgov validate`` and ``modelgov deploy`` (one source: the ``deploy-model`` flow; several: one
``deploy-models`` batch run). The request is resolved here, once, before Prefect starts: bad names and URLs
carrying credentials fail with exit 2 before a flow run (and its stored parameters) exists."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from governance.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    atlas_opt,
    config_opt,
    foreground_run,
    prefect_defaults,
    print_json,
    print_problems,
    say,
)
from governance.deploy.request import DeployRequest, resolve_request
from governance.deploy.summary import DeploySummary
from governance.errors import ConfigError, StepFailed, ValidationError


def cmd_validate(args: argparse.Namespace) -> int:
    from governance.staging.intake import fetch_and_validate
    from governance.staging.limits import IntakeLimits

    try:
        staged, fetched = fetch_and_validate(args.source, None, IntakeLimits.load(args.config))
    except ValidationError as exc:
        print_problems(exc)
        say(f"{args.source}: {len(exc.problems)} problem(s); not deployable", stderr=True)
        return EXIT_FAILED
    try:
        meta = staged.metadata
        if args.json:
            print_json({"valid": True, "model": meta.to_dict(), "commit": staged.commit,
                        "executable": staged.executable, "files": [f.to_dict() for f in staged.files]})
        else:
            shown = meta.name if meta.display_name == meta.name else f"{meta.display_name!r} (id {meta.name})"
            say(f"{args.source}: valid: {shown} {meta.version} ({meta.type}), owner {meta.owner} "
                f"({meta.owner_lob}), executable {staged.executable}, {len(staged.files)} files"
                + (f", commit {staged.commit}" if staged.commit else ""))
    finally:
        fetched.cleanup()
    return EXIT_OK


def batch_sources(positional: list[str], from_file: str | None) -> list[str]:
    """Sources from the command line, then from LIST (one per line; blank lines and ``#`` lines ignored)."""
    sources = list(positional)
    where = {s: "command line" for s in sources}
    if from_file:
        path = Path(from_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the source list ({exc.strerror or exc})") from exc
        for number, line in enumerate(lines, 1):
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            if entry in where:
                raise ConfigError(f"{path}:{number}: {entry} is listed twice (first on {where[entry]})")
            where[entry] = f"{path}:{number}"
            sources.append(entry)
    if not sources:
        raise ConfigError("no source given: pass SOURCE ... or --from-file LIST")
    return sources


def cmd_deploy(args: argparse.Namespace) -> int:
    sources = batch_sources(args.sources, args.from_file)
    request = resolve_request(sources[0], args.target, args.registry, args.atlas, args.environment,
                              args.namespace, args.config, progress=not args.json)
    if len(sources) != 1 or args.from_file:
        return _deploy_batch(args, request, sources)
    if args.dry_run:
        return _dry_run(args, request)
    prefect_defaults()  # before Prefect's import reads its settings
    from flows.deploy_model import deploy_model

    try:
        with foreground_run():
            summary = deploy_model(source=request.source, request=request, approval_timeout=args.approval_timeout)
    except StepFailed as exc:
        if exc.step == "validate" and isinstance(exc.cause, ValidationError):
            print_problems(exc.cause)
        say(f"modelgov deploy: {exc.step} step failed: {exc.cause}", stderr=True)
        if args.json:
            failed = exc.summary or DeploySummary.failed_before_record(request.source, exc.step, str(exc.cause))
            print_json(failed.to_dict())
        return EXIT_FAILED
    if args.json:
        print_json(summary.to_dict())
    else:
        print_deployed(summary)
    return EXIT_OK


def print_deployed(summary: DeploySummary) -> None:
    if summary.status == "unchanged":
        say(f"unchanged: {summary.message}; recorded as {(summary.existing_deployment or {}).get('qualifiedName')}")
        return
    say(f"deployed {summary.model_name} {summary.model_version} -> {summary.endpoint}")
    say(f"  registry: {summary.registry_uri}")
    if summary.record == "pending":
        say(f"  atlas: record PENDING in the local outbox (Atlas unreachable): {summary.message}")
    elif summary.atlas:
        build, deployment = summary.atlas["build"], summary.atlas["deployment"]
        say(f"  atlas build: {build['qualifiedName']} ({build['guid']})")
        say(f"  atlas deployment: {deployment['qualifiedName']} ({deployment['guid']})")
    if summary.has_prediction and summary.prediction is not None:
        say(f"  smoke prediction: {json.dumps(summary.prediction)}")
    for name in summary.superseded:
        say(f"  marked stopped: {name}")


def _dry_run(args: argparse.Namespace, request: DeployRequest) -> int:
    from governance.deploy.saga import plan

    try:
        planned = plan(request)
    except ValidationError as exc:
        print_problems(exc)
        return EXIT_FAILED
    if args.json:
        print_json(planned)
    else:
        for line in (planned["rendered"] or json.dumps(planned, indent=2, sort_keys=True)).splitlines():
            say(line)
    return EXIT_OK


def print_batch_table(summaries: list[DeploySummary]) -> None:
    from rich.console import Console
    from rich.table import Table

    ok = sum(1 for s in summaries if s.succeeded)
    from governance.safe_output import plain

    table = Table(title=f"{ok} of {len(summaries)} deployed", title_justify="left")
    for column in ("model", "version", "status", "target", "endpoint / error", "Atlas deployment"):
        table.add_column(column, overflow="fold")
    for summary in summaries:  # errors quote what repos and servers said: plain text
        detail = summary.endpoint if summary.succeeded else f"{summary.step}: {summary.reason}"
        cells = (summary.model_name or summary.shown_source or "?", summary.model_version, summary.status,
                 summary.target, detail, summary.atlas_guid("deployment"))
        table.add_row(*(plain(c) for c in cells), style=None if summary.succeeded else "red")
    Console(width=200).print(table)


def _deploy_batch(args: argparse.Namespace, request: DeployRequest, sources: list[str]) -> int:
    """``modelgov deploy SRC1 SRC2 ... [--from-file LIST]``: one ``deploy-models`` flow run."""
    if args.dry_run:
        raise ConfigError("--dry-run takes one source")
    if args.per_target_limit < 1:
        raise ConfigError("--per-target-limit must be at least 1")
    for source in sources:  # every source URL checked before the flow run stores them
        request.for_source(source)
    with foreground_run():
        from flows.batch import deploy_models

        summaries = deploy_models(sources=sources, request=request, per_target_limit=args.per_target_limit,
                                  progress=not args.json, approval_timeout=args.approval_timeout)
    if args.json:
        for summary in summaries:
            print(json.dumps(summary.to_dict(), sort_keys=True, default=str))
    else:
        print_batch_table(summaries)
    failed = [s for s in summaries if not s.succeeded]
    if failed:
        say(f"modelgov deploy: {len(failed)} of {len(summaries)} failed", stderr=True)
    return EXIT_FAILED if failed else EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a staged repo (folder, archive, or git+URL@REF)")
    p.add_argument("source")
    p.add_argument("--json", action="store_true")
    config_opt(p)  # its limits: and data_roots: apply
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("deploy", help="validate, publish, deploy and record staged repos (several: one batch run)")
    p.add_argument("sources", nargs="*", metavar="SOURCE")
    p.add_argument("--from-file", metavar="LIST", help="more sources, one per line (# comments)")
    p.add_argument("--per-target-limit", type=int, default=2, help="batch: models deployed at once per target")
    p.add_argument("--approval-timeout", type=int, default=24 * 3600,
                   help="targets marked production: seconds to wait for approval")
    p.add_argument("--target", help="a target name from modelgov.yaml, or mlserver://HOST:PORT?repository=DIR, "
                                    "mleap://HOST:PORT?bundle_dir=DIR, kserve://NAMESPACE?context=CTX")
    p.add_argument("--registry", help="a registry name from modelgov.yaml, or file:///DIR, s3://BUCKET/PREFIX, "
                                      "hdfs://NAMENODE:PORT/PATH")
    p.add_argument("--environment", choices=["production", "staging"], default=None)
    p.add_argument("--namespace", default=None, help="Atlas namespace suffix of qualifiedNames (default modelgov)")
    config_opt(p)
    p.add_argument("--dry-run", action="store_true",
                   help="validate and show what would be deployed (KServe: the manifest); writes nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    atlas_opt(p)
    p.set_defaults(func=cmd_deploy)
