"""Operations subcommands of ``modelgov``: batch deploys, approvals (and, with the ledger, rollback,
undeploy and reconcile). Registered from ``governance.cli``; the flows are imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from governance.errors import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


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


def print_batch_table(summaries: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    from governance import report

    ok = sum(1 for s in summaries if s.get("status") == "deployed")
    table = Table(title=f"{ok} of {len(summaries)} deployed", title_justify="left")
    for column in ("model", "version", "status", "target", "endpoint / error", "Atlas deployment"):
        table.add_column(column, overflow="fold")
    for summary in summaries:
        row = report.row(summary)
        detail = row["endpoint"] if row["status"] == "deployed" else f"{row['step']}: {row['error']}"
        table.add_row(row["model"] or row["source"] or "?", row["version"] or "", row["status"] or "",
                      row["target"] or "", detail or "", row["atlas_deployment_guid"] or "",
                      style=None if row["status"] == "deployed" else "red")
    Console(width=200).print(table)


def cmd_deploy_batch(args: argparse.Namespace, sources: list[str]) -> int:
    """``modelgov deploy SRC1 SRC2 ... [--from-file LIST]``: one ``deploy-models`` flow run."""
    from governance.cli import _prefect_defaults, _resolve
    from governance.staging.intake import refuse_embedded_credentials

    if args.dry_run:
        raise ConfigError("--dry-run takes one source")
    if args.per_target_limit < 1:
        raise ConfigError("--per-target-limit must be at least 1")
    _resolve(args)  # bad names fail before Prefect starts
    for source in sources:
        refuse_embedded_credentials(source)
    _prefect_defaults()
    from flows.batch import deploy_models

    summaries = deploy_models(sources=sources, target=args.target, registry=args.registry, atlas_url=args.atlas,
                              environment=args.environment, namespace=args.namespace, config=args.config,
                              per_target_limit=args.per_target_limit, progress=not args.json,
                              approval_timeout=args.approval_timeout)
    if args.json:
        for summary in summaries:
            print(json.dumps(summary, sort_keys=True, default=str))
    else:
        print_batch_table(summaries)
    failed = [s for s in summaries if s.get("status") != "deployed"]
    if failed:
        print(f"modelgov deploy: {len(failed)} of {len(summaries)} failed", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    """Resume a production run waiting at its approval gate, with the decision as the run's typed input."""
    if args.reject and not (args.reason or "").strip():
        raise ConfigError("--reject needs --reason TEXT (it is recorded in Atlas)")
    from flows.approval import decide

    decide(args.run_id, args.approver, approved=not args.reject, reason=args.reason or "")
    print(f"flow run {args.run_id}: {'rejected' if args.reject else 'approved'} by {args.approver}")
    return EXIT_OK


def add_operations_commands(sub: argparse._SubParsersAction,
                            atlas_opt: Callable[[argparse.ArgumentParser], None]) -> None:
    """The operations subcommands (added to ``modelgov``'s parser)."""
    p = sub.add_parser("approve", help="approve (or --reject) a production deploy waiting for approval")
    p.add_argument("run_id", metavar="RUN_ID", help="the flow run id the waiting run logged")
    p.add_argument("--approver", required=True, help="your name; recorded on the Atlas deployment")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=cmd_approve)
