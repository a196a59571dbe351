"""``modelgov search | history | trace | verify | report | card | inventory | impact | bom | evidence``: compliance answers, one command each.

Each prints a table (or a readable tree) for people and ``--json`` (and ``--csv`` for lists) for
scripts; the logic lives in ``governance.compliance``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from governance.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    atlas_opt,
    config_opt,
    print_csv,
    print_json,
    say,
    show,
)
from governance.compliance.queries import DEPLOYMENT_FIELDS, Deployment, DeploymentFilter, TargetFilter
from governance.compliance.times import iso, parse_moment, to_millis
from governance.errors import ConfigError
from governance.safe_output import plain, write_csv

STATUSES = ["deploying", "deployed", "stopped"]


def _client(args: argparse.Namespace):
    from governance.atlas.client import AtlasClient
    from governance.config import load_config

    return AtlasClient.from_env(args.atlas or load_config(args.config).atlas_url)


def _target_filter(args: argparse.Namespace) -> TargetFilter | None:
    """--target as a name from modelgov.yaml, a target URI, host:port (or cluster/namespace), or a bare host."""
    text = getattr(args, "target", None)
    if not text:
        return None
    from governance.config import load_config
    from governance.targets import get_target

    config = load_config(args.config)
    if text in config.targets or "://" in text:
        return TargetFilter(detail=get_target(config.target(text).uri).host_detail)
    return TargetFilter.parse(text)


def print_deployments(rows: Sequence[Deployment], args: argparse.Namespace, *, title: str,
                      empty: str) -> None:
    """The rows as JSON, CSV or an aligned table (failure reasons shown when there are failed attempts); the
    table shows every value as plain text (``plain``): markup is printed, control characters escaped."""
    if args.json:
        print_json([d.to_dict() for d in rows], sort_keys=False)
        return
    if args.csv:
        print_csv([d.to_dict() for d in rows], DEPLOYMENT_FIELDS)
        return
    if not rows:
        say(empty)
        return
    from rich import box
    from rich.table import Table

    with_reason = any(d.failure_reason for d in rows)
    table = Table(title=plain(title), box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in ["model", "version", "target", "env", "status", "outcome", "deployed", "stopped", "by",
                   "owner", "lob", *(["reason"] if with_reason else [])]:
        table.add_column(column, no_wrap=column != "reason", overflow="fold")
    for d in rows:
        style = "red" if d.failed else ("green" if d.status == "deployed" else None)
        cells = [d.model_name, d.model_version, f"{d.target_kind}://{d.target_detail}", d.environment,
                 d.status, d.outcome, iso(d.deployed_ms), iso(d.stopped_ms), d.deployed_by, d.owner, d.owner_lob,
                 *([d.failure_reason] if with_reason else [])]
        table.add_row(*(plain(c) for c in cells), style=style)
    show(table)


# -- commands ------------------------------------------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    from governance.compliance.queries import find_deployments

    wanted = DeploymentFilter(
        name=args.name, version=args.version, owner=args.owner, lob=args.lob, target=_target_filter(args),
        status=args.status, environment=args.environment,
        since=parse_moment(args.since, option="--since") if args.since else None,
        until=parse_moment(args.until, option="--until", end_of_day=True) if args.until else None)
    rows = find_deployments(_client(args), wanted, newest_first=True, limit=args.limit)
    print_deployments(rows, args, title=f"{len(rows)} deployment(s), newest first", empty="no deployments recorded")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    from governance.compliance.timeline import history, serving_at

    client, target = _client(args), _target_filter(args)
    if args.at:
        moment = parse_moment(args.at, option="--at")
        rows = serving_at(client, args.name, moment, target)
        when = iso(to_millis(moment))
        print_deployments(rows, args, title=f"{args.name} serving at {when}",
                          empty=f"{args.name}: nothing recorded as serving at {when}")
    else:
        rows = history(client, args.name, target)
        print_deployments(rows, args, title=f"{args.name}: {len(rows)} deployment(s), oldest first",
                          empty=f"{args.name}: no deployments recorded")
    return EXIT_OK


def cmd_trace(args: argparse.Namespace) -> int:
    from governance.compliance.trace import trace

    client = _client(args)
    chain = trace(client, args.deployment, client.settings.url)
    if args.json:
        print_json(chain, sort_keys=False)
        return EXIT_OK
    from governance.compliance.render import trace_tree

    show(trace_tree(chain))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from governance.compliance.verify import verify_deployment

    outcome = verify_deployment(_client(args), args.deployment)
    if args.json:
        print_json(outcome.to_dict(), sort_keys=False)
    else:
        for line in outcome.checked:
            say(f"ok  {line}")
        for mismatch in outcome.mismatches:
            say(f"MISMATCH  {mismatch}")
        say(f"{outcome.deployment}: " + ("registry, target and Atlas agree" if outcome.agree
                                        else f"{len(outcome.mismatches)} mismatch(es)"))
    return EXIT_OK if outcome.agree else EXIT_FAILED


def cmd_report(args: argparse.Namespace) -> int:
    from governance.compliance.report import build_report, render, stream_csv

    client = _client(args)
    since = parse_moment(args.since, option="--since")
    until = parse_moment(args.until, option="--until", end_of_day=True)
    if args.format == "csv":  # streamed: a year of a fleet's deployments in flat memory
        with _document(args.output, "csv report") as out:
            stream_csv(client, since, until, client.settings.url, out)
        return EXIT_OK
    text = render(build_report(client, since, until, client.settings.url), args.format)
    _write(text, args.output, f"{args.format} report")
    return EXIT_OK


def cmd_card(args: argparse.Namespace) -> int:
    from governance.compliance.card import card, render

    client = _client(args)
    text = render(card(client, args.name, args.version, client.settings.url, _namespace(args)), args.format)
    _write(text, args.output, f"{args.format} model card")
    return EXIT_OK


def cmd_inventory(args: argparse.Namespace) -> int:
    from governance.compliance.inventory import FIELDS, TIME_FIELDS, inventory

    if args.format == "xlsx" and not args.output:
        raise ConfigError("--format xlsx writes a workbook: give --output FILE.xlsx")
    if args.retired_within < 0:
        raise ConfigError(f"--retired-within {args.retired_within}: a number of days, 0 or more")
    client = _client(args)
    moment = parse_moment(args.at, option="--at") if args.at else None
    rows = inventory(client, client.settings.url, moment, args.retired_within, _namespace(args))
    if args.format == "xlsx":
        from governance.compliance.xlsx import write_xlsx

        write_xlsx(Path(args.output), (r.values for r in rows), FIELDS, sheet="model inventory",
                   headers={f: f"{f} (UTC)" for f in TIME_FIELDS})
        say(f"wrote the model inventory ({len(rows)} versions) to {args.output}", stderr=True)
        return EXIT_OK
    if args.format == "json":
        text = json.dumps([r.to_dict() for r in rows], indent=2, ensure_ascii=False) + "\n"
    else:
        out = io.StringIO()
        write_csv(out, (r.to_dict() for r in rows), FIELDS)
        text = out.getvalue()
    _write(text, args.output, "the model inventory")
    return EXIT_OK


def cmd_impact(args: argparse.Namespace) -> int:
    from governance.compliance.impact import FIELDS, impact

    client = _client(args)
    moment = parse_moment(args.at, option="--at") if args.at else None
    rows = [r.to_dict() for r in impact(client, args.dataset, namespace=_namespace(args), at=moment)]
    if args.json:
        print_json(rows, sort_keys=False)
        return EXIT_OK
    if args.csv:
        print_csv(rows, FIELDS)
        return EXIT_OK
    when = f" serving at {iso(to_millis(moment))}" if moment else ""
    if not rows:
        say(f"{args.dataset}: no deployment{when} of a model trained on it")
        return EXIT_OK
    from rich import box
    from rich.table import Table

    table = Table(title=plain(f"{args.dataset}: {len(rows)} row(s){when}"), box=box.SIMPLE_HEAD,
                  title_justify="left", pad_edge=False)
    columns = ["dataVersion", "model", "modelVersion", "target", "environment", "owner", "deployedTime",
               "stoppedTime", "servesNow"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        style = "green" if row["servesNow"] == "yes" else ("yellow" if row["servesNow"] == "unknown" else None)
        table.add_row(*(plain(row[c]) for c in columns), style=style)
    show(table)
    return EXIT_OK


def cmd_bom(args: argparse.Namespace) -> int:
    from governance.compliance.bom import bom

    client = _client(args)
    document = bom(client, args.deployment, client.settings.url)
    _write(json.dumps(document, indent=2, ensure_ascii=False) + "\n", args.output, "CycloneDX ML-BOM")
    return EXIT_OK


def cmd_evidence(args: argparse.Namespace) -> int:
    """``evidence DEPLOYMENT|--model NAME --output PACK`` makes a pack; ``evidence verify PACK`` checks one offline."""
    if args.what == "verify":
        return _verify_pack(args)
    from governance.compliance.evidence import Scope, collect
    from governance.compliance.pack import write_pack
    from governance.config import load_config
    from governance.trust.signing import SigningIdentity

    if bool(args.what) == bool(args.model):
        raise ConfigError("evidence: give one DEPLOYMENT (guid or qualifiedName) or --model NAME")
    if args.pack:
        raise ConfigError(f"evidence {args.what}: unexpected {args.pack!r} (the pack is --output PACK)")
    if (args.since or args.until) and not args.model:
        raise ConfigError("--since/--until choose a model's deployments: use them with --model")
    if not args.output or not args.output.endswith((".tar.gz", ".tgz")):
        raise ConfigError("evidence: give --output PACK.tar.gz (the pack is one tar.gz)")
    identity = SigningIdentity.load(load_config(args.config).signing)
    scope = Scope(deployment=args.what, model=args.model,
                  since=parse_moment(args.since, option="--since") if args.since else None,
                  until=parse_moment(args.until, option="--until", end_of_day=True) if args.until else None)
    client = _client(args)
    files = collect(client, client.settings.url, scope)
    written = write_pack(Path(args.output), files, identity)
    signed = f"signed by {identity.signer.describe()}" if identity else "unsigned (no MODELGOV_SIGNING_KEY)"
    say(f"wrote evidence pack {args.output}: {len(written)} files, {signed}", stderr=True)
    return EXIT_OK


def _verify_pack(args: argparse.Namespace) -> int:
    """Check a pack from its own bytes only: no Atlas, no registry, no network."""
    from governance.compliance.pack import verify_pack

    if not args.pack:
        raise ConfigError("evidence verify PACK: give the pack to check")
    result = verify_pack(Path(args.pack), Path(args.trusted_key) if args.trusted_key else None)
    if args.json:
        print_json(result.to_dict(), sort_keys=False)
    else:
        for line in result.checked:
            say(f"ok  {line}")
        for problem in result.problems:
            say(f"FAILED  {problem}")
        say(f"{args.pack}: " + ("intact" if result.ok else f"{len(result.problems)} problem(s)"))
    return EXIT_OK if result.ok else EXIT_FAILED


def _namespace(args: argparse.Namespace) -> str:
    """--namespace, else modelgov.yaml's atlas.namespace, else modelgov."""
    from governance.atlas.constants import DEFAULT_NAMESPACE
    from governance.config import load_config

    return args.namespace or load_config(args.config).namespace or DEFAULT_NAMESPACE


def _write(text: str, output: str | None, what: str) -> None:
    """The document to ``output`` (saying so on stderr), or to stdout."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
        say(f"wrote {what} to {output}", stderr=True)
    else:
        sys.stdout.write(text)


@contextlib.contextmanager
def _document(output: str | None, what: str) -> Iterator[IO[str]]:
    """A document written as it is made: to stdout, or to a temporary sibling of ``output`` renamed into
    place once complete, so a failure half-way leaves no partial file where ``output`` should be."""
    if not output:
        yield sys.stdout
        return
    target = Path(output)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    say(f"wrote {what} to {output}", stderr=True)


# -- parsers -------------------------------------------------------------------------------------------------
def _formats(p: argparse.ArgumentParser, *, csv_too: bool = True) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="print JSON for scripts")
    if csv_too:
        group.add_argument("--csv", action="store_true", help="print CSV (the JSON fields as columns)")


def _common(p: argparse.ArgumentParser) -> None:
    config_opt(p)
    atlas_opt(p)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the compliance subcommands to ``modelgov``'s parser."""
    target_help = "a target name from modelgov.yaml, a target URI, HOST:PORT (or CLUSTER/NAMESPACE), or a HOST"
    p = sub.add_parser("search", help="find recorded deployments (newest first)")
    p.add_argument("--name", help="model name")
    p.add_argument("--version", help="model version as the owner wrote it (e.g. 1.2)")
    p.add_argument("--owner")
    p.add_argument("--lob", help="the owner's line of business (model.owner.lob)")
    p.add_argument("--target", help=target_help)
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--environment", choices=["production", "staging"])
    p.add_argument("--since", help="deployed at or after this ISO date/datetime (UTC unless an offset is given)")
    p.add_argument("--until", help="deployed before this datetime; a date includes that whole day")
    p.add_argument("--limit", type=int, default=None)
    _formats(p)
    _common(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("history", help="a model's deployments, oldest first; --at: what served at a moment")
    p.add_argument("name")
    p.add_argument("--target", help=target_help)
    p.add_argument("--at", help="ISO datetime: deployments with deployedTime <= AT < stoppedTime (or not stopped)")
    _formats(p)
    _common(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("trace", help="a deployment's chain: build, registry bytes, staging commit, data, people")
    p.add_argument("deployment", help="the deployment's Atlas guid or qualifiedName")
    _formats(p, csv_too=False)
    _common(p)
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("verify", help="re-hash the registry copy, ask the target, compare both with Atlas")
    p.add_argument("deployment", help="the deployment's Atlas guid or qualifiedName")
    _formats(p, csv_too=False)
    _common(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("report", help="audit report of the deployment events in a period")
    p.add_argument("--since", required=True, help="ISO date/datetime, inclusive")
    p.add_argument("--until", required=True, help="ISO datetime, exclusive; a date includes that whole day")
    p.add_argument("--format", choices=["html", "md", "csv"], default="md")
    p.add_argument("--output", help="write to this file instead of stdout")
    _common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("card", help="a model version's model card, from the record: purpose, risk, data, bytes, "
                                    "deployments")
    p.add_argument("name", help="the model name (as written in metadata.txt, or its identifier)")
    p.add_argument("version", help="the version as the owner wrote it (e.g. 1.2)")
    p.add_argument("--format", choices=["md", "html", "json"], default="md")
    p.add_argument("--output", help="write to this file instead of stdout")
    p.add_argument("--namespace", help="Atlas namespace of the record (default: modelgov.yaml's, else modelgov)")
    _common(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("inventory", help="the model inventory (SR 11-7): every version in use, recently retired or "
                                         "never deployed, with owner, purpose, validation and risk tier")
    p.add_argument("--at", help="ISO datetime of the inventory (default: now)")
    p.add_argument("--retired-within", type=int, default=90, metavar="DAYS",
                   help="list versions that stopped serving within this many days before --at (default 90)")
    p.add_argument("--format", choices=["csv", "xlsx", "json"], default="csv")
    p.add_argument("--output", help="write to this file instead of stdout (required for xlsx)")
    p.add_argument("--namespace", help="Atlas namespace of the records (default: modelgov.yaml's, else modelgov)")
    _common(p)
    p.set_defaults(func=cmd_inventory)

    p = sub.add_parser("impact", help="every model version trained on a dataset and every deployment of it, past "
                                      "and present, with its window and whether it serves now")
    p.add_argument("dataset", help="a training-data reference as in model.training.data (iceberg://CAT/DB.TBL"
                                   "[@SNAPSHOT], s3://B/K[?versionId=V], a path [#sha256=HEX], URI#digest=D), or "
                                   "a bare version (a file's sha256, an MLflow digest); without a version: every "
                                   "version of it")
    p.add_argument("--at", help="ISO datetime: only deployments in service at that moment")
    p.add_argument("--namespace", help="Atlas namespace of the records (default: modelgov.yaml's, else modelgov)")
    _formats(p)
    _common(p)
    p.set_defaults(func=cmd_impact)

    p = sub.add_parser("bom", help="a deployment's CycloneDX 1.6 ML-BOM (JSON): model, files, datasets, runtime, "
                                   "registry location, model card")
    p.add_argument("deployment", help="the deployment's Atlas guid or qualifiedName")
    p.add_argument("--output", help="write to this file instead of stdout")
    _common(p)
    p.set_defaults(func=cmd_bom)

    p = sub.add_parser("evidence", help="an evidence pack (card, BOM, history, audit report, Atlas audit events, "
                                        "registry manifests, signatures, approvals, SHA256SUMS); 'evidence verify "
                                        "PACK' checks one offline")
    p.add_argument("what", nargs="?", metavar="DEPLOYMENT|verify",
                   help="the deployment's Atlas guid or qualifiedName; or 'verify' to check PACK")
    p.add_argument("pack", nargs="?", metavar="PACK", help="with verify: the pack to check")
    p.add_argument("--model", help="every deployment of this model (within --since/--until)")
    p.add_argument("--since", help="with --model: deployments still serving at or after this ISO date/datetime")
    p.add_argument("--until", help="with --model: deployed before this datetime; a date includes that whole day")
    p.add_argument("--output", metavar="PACK", help="the pack to write (.tar.gz)")
    p.add_argument("--trusted-key", metavar="PATH", help="with verify: the PEM public key (or certificate) that must "
                                                         "have signed the pack")
    p.add_argument("--json", action="store_true", help="with verify: print the check as JSON")
    _common(p)
    p.set_defaults(func=cmd_evidence)
