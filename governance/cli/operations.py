"""``modelgov approve | notify-push | rollback | undeploy | reconcile``: the operations commands. Approvals and
push events go to the Prefect server (``flows/``, imported only when such a command runs); rollback, undeploy and
reconcile run the library's fleet operations (``governance.deploy.fleet``) through the ledger.
"""

from __future__ import annotations

import argparse
import json
import os

from governance.cli.common import EXIT_FAILED, EXIT_OK, atlas_opt, config_opt, say
from governance.errors import ConfigError


def cmd_approve(args: argparse.Namespace) -> int:
    """Resume a production run waiting at its approval gate, with the decision as the run's typed input."""
    if args.reject and not (args.reason or "").strip():
        raise ConfigError("--reject needs --reason TEXT (it is recorded in Atlas)")
    from flows.approval import approval_subject, decide

    statement, approver = "", args.approver
    if args.key:
        from governance.trust.approvals import ApprovalSubject, sign_approval
        from governance.trust.signing import (
            SIGNING_CERT_ENV,
            SIGNING_CHAIN_ENV,
            SIGNING_KEY_ENV,
            SIGNING_PASSWORD_ENV,
            SigningIdentity,
        )

        identity = SigningIdentity.from_env({SIGNING_KEY_ENV: args.key, SIGNING_CERT_ENV: args.cert or "",
                                             SIGNING_CHAIN_ENV: args.chain or "",
                                             SIGNING_PASSWORD_ENV: os.environ.get(SIGNING_PASSWORD_ENV, "")})
        subject = ApprovalSubject.from_dict(approval_subject(args.run_id))
        statement = sign_approval(identity, subject, approved=not args.reject, reason=args.reason or "")  # type: ignore[arg-type]
        approver = approver or f"{identity.signer.kind} {identity.signer.fingerprint}"  # type: ignore[union-attr]
        say(f"signed the {'rejection' if args.reject else 'approval'} of {subject.model} {subject.version} "
            f"(content {subject.content_digest[:16]}...) on {subject.target} for run {subject.run_id}")
    elif args.cert or args.chain:
        raise ConfigError("--cert and --chain go with --key PATH (the certificate's private key)")
    if not approver:
        raise ConfigError("give --approver NAME, or --key PATH for a signed approval")
    decide(args.run_id, approver, approved=not args.reject, reason=args.reason or "", statement=statement)
    say(f"flow run {args.run_id}: {'rejected' if args.reject else 'approved'} by {approver}")
    return EXIT_OK


def cmd_notify_push(args: argparse.Namespace) -> int:
    """Announce a pushed staged repo to the shared Prefect server (git hook / CI step)."""
    from flows.relay import notify_push

    sent = notify_push(args.source, args.ref)
    if args.json:
        print(json.dumps(sent, sort_keys=True))
    else:
        say(f"sent {sent['event']} for {sent['source']} (event {sent['id']})")
    return EXIT_OK


def _target_and_ledger(args: argparse.Namespace):
    """The named or URI target, its environment, the ledger (Atlas checked) and the config."""
    from governance.atlas.constants import DEFAULT_NAMESPACE
    from governance.config import load_config
    from governance.deploy.ledger import Ledger
    from governance.targets import get_target

    cfg = load_config(args.config)
    named = cfg.target(args.target)
    target = get_target(named.uri)
    ledger = Ledger.open(args.atlas or cfg.atlas_url, args.namespace or cfg.namespace or DEFAULT_NAMESPACE)
    return target, named.environment, ledger, cfg


def cmd_rollback(args: argparse.Namespace) -> int:
    """Serve an earlier registered version again, from the registry, recorded with its reason."""
    from governance.deploy.fleet import registry_of, rollback
    from governance.registries import get_registry

    if not args.reason.strip():
        raise ConfigError("--reason TEXT is required (it is recorded in Atlas)")
    target, environment, ledger, cfg = _target_and_ledger(args)
    try:
        if args.registry or cfg.default_registry:
            registry = get_registry(cfg.registry_uri(args.registry))
        else:  # the registry the model's current deployment came from
            current = ledger.deployed_on(target.host_detail, args.name)
            if not current:
                raise ConfigError(f"{args.name} has no deployment on {target.host_detail}: pass --registry")
            registry = registry_of(current[0], None)
        governed = rollback(target, ledger, registry, args.name, args.to, args.reason, environment=environment,
                            trust=cfg.trust_for(args.target, environment), signing=cfg.signing)
    finally:
        ledger.close()
    out = governed.summary()
    if args.json:
        print(json.dumps(out.to_dict(), sort_keys=True, default=str))
    elif governed.noop:
        say(out.message)
    else:
        say(f"rolled back {args.name} to {args.to} on {target.kind}://{target.host_detail} -> {out.endpoint}")
        if out.atlas:
            say(f"  atlas deployment: {out.atlas['deployment']['qualifiedName']}")
        else:
            say(f"  atlas: record PENDING in the local outbox (Atlas unreachable): {out.message}")
        for name in out.superseded:
            say(f"  marked stopped: {name}")
    return EXIT_OK


def cmd_undeploy(args: argparse.Namespace) -> int:
    """Take a model (or one version) out of service; its deployments are recorded stopped with the reason."""
    from governance.deploy.fleet import undeploy

    if not args.reason.strip():
        raise ConfigError("--reason TEXT is required (it is recorded in Atlas)")
    target, _, ledger, _ = _target_and_ledger(args)
    try:
        stopped = undeploy(target, ledger, args.name, args.version, args.reason)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps({"model": args.name, "version": args.version, "stopped": stopped}, sort_keys=True))
    else:
        say(f"undeployed {args.name}{' ' + args.version if args.version else ''} from "
            f"{target.kind}://{target.host_detail}")
        for name in stopped:
            say(f"  marked stopped: {name}")
    return EXIT_OK


def print_findings(report) -> None:
    from rich.console import Console
    from rich.table import Table

    from governance.safe_output import plain

    table = Table(title=plain(f"reconcile: {len(report.findings)} finding(s) on {', '.join(report.checked)}"),
                  title_justify="left")
    for column in ("target", "finding", "model", "version", "action", "detail"):
        table.add_column(column, overflow="fold")
    for f in report.findings:  # what a target serves is named by whoever put it there: plain text
        table.add_row(*(plain(c) for c in (f.target, f.kind, f.model, f.version, f.action, f.detail)),
                      style="red" if f.action == "failed" else None)
    Console(width=200).print(table)


def cmd_reconcile(args: argparse.Namespace) -> int:
    """Make every target serve what Atlas records (see governance.deploy.fleet)."""
    from governance.deploy.fleet import reconcile_targets

    report = reconcile_targets([args.target] if args.target else None, args.registry, args.atlas, args.namespace,
                               args.config, dry_run=args.dry_run)
    if args.json:
        for finding in report.findings:
            print(json.dumps(finding.to_dict(), sort_keys=True))
    elif report.findings:
        print_findings(report)
    else:
        say(f"reconcile: {', '.join(report.checked)} serve exactly what Atlas records")
    return EXIT_FAILED if report.failed else EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The operations subcommands (added to ``modelgov``'s parser)."""
    p = sub.add_parser("approve", help="approve (or --reject) a production deploy waiting for approval")
    p.add_argument("run_id", metavar="RUN_ID", help="the flow run id the waiting run logged")
    p.add_argument("--approver", default=None, help="your name; recorded on the Atlas deployment (unverified "
                   "unless signed with --key)")
    p.add_argument("--key", default=None, metavar="PATH",
                   help="sign the decision with your ECDSA key (modelgov trust init), bound to the version's bytes, "
                        "target and run; required where the policy names approvers")
    p.add_argument("--cert", default=None, metavar="PATH",
                   help="with --key: sign as this certificate (PEM) of the key; approvers pinned by certificate "
                        "(trust.approver_identities) need it")
    p.add_argument("--chain", default=None, metavar="PATH[,PATH]", help="with --cert: intermediate certificates")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--reason", default=None)
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("notify-push", help="tell the shared Prefect server a staged repo was pushed (git hook, CI)")
    p.add_argument("source", help="the staged repo, e.g. git+https://git.corp/models/churn.git")
    p.add_argument("--ref", default=None, help="the pushed branch, tag or commit (pins a git source)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_notify_push)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--registry", help="registry name or URI (default: the one the deployment came from)")
        p.add_argument("--namespace", default=None)
        config_opt(p)
        p.add_argument("--json", action="store_true")
        atlas_opt(p)

    p = sub.add_parser("rollback", help="serve an earlier registered version again (from the registry)")
    p.add_argument("name")
    p.add_argument("--to", required=True, metavar="VERSION")
    p.add_argument("--target", required=True)
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("undeploy", help="take a model out of service; recorded stopped with the reason")
    p.add_argument("name")
    p.add_argument("--version", default=None, help="only this version (default: every version)")
    p.add_argument("--target", required=True)
    p.add_argument("--reason", required=True)
    common(p)
    p.set_defaults(func=cmd_undeploy)

    p = sub.add_parser("reconcile", help="make targets serve what Atlas records; report ungoverned models")
    p.add_argument("--target", default=None, help="one target (default: every target in modelgov.yaml)")
    p.add_argument("--dry-run", action="store_true", help="report findings, change nothing")
    common(p)
    p.set_defaults(func=cmd_reconcile)
