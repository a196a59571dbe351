"""``modelgov outbox list|sync|drop|retarget|requeue``: Atlas records kept locally while Atlas was unreachable,
their replay, and an operator's way out for records Atlas refuses or that were meant for a retired Atlas."""

from __future__ import annotations

import argparse
import json

from governance.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, say


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from governance.deploy.outbox import Outbox

    outbox = Outbox()
    rows = [entry.to_row() for entry in outbox.pending() + outbox.dead()]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return EXIT_OK
    if not rows:
        say(f"the outbox ({outbox.folder}) is empty: every record reached Atlas")
        return EXIT_OK
    for row in rows:
        why = f"  ({row['reason']})" if row["reason"] else ""
        say(f"{row['created']}  {row['state']:<7}  {row['kind']:<10}  {row['atlas']}  {row['description']}  "
            f"[{row['id']}]{why}")
    dead = sum(1 for r in rows if r["state"] == "dead")
    say(f"{len(rows) - dead} record(s) pending, {dead} dead letter(s) in {outbox.folder}; `modelgov outbox sync` "
        f"replays the pending ones; `drop`, `retarget` and `requeue` resolve the others", stderr=True)
    return EXIT_OK


def cmd_outbox_sync(args: argparse.Namespace) -> int:
    """Replay pending records in order, exactly once (upserts by qualifiedName), into the given Atlas; report
    what was skipped (meant for another Atlas), held, moved to the dead letters, or left because Atlas is down."""
    from governance.atlas.client import AtlasClient
    from governance.deploy.outbox import Outbox

    outbox = Outbox()
    client = AtlasClient.from_env(args.atlas)
    try:
        client.status()  # an unreachable Atlas is an AtlasUnavailable naming it and how long we waited
        result = outbox.sync(client, only_url=None if args.all else client.settings.url)
    finally:
        client.close()
    for entry in result.replayed:
        say(f"replayed {entry.kind}: {entry.description}")
    for entry in result.skipped:
        say(f"skipped {entry.kind}: {entry.description}: meant for {entry.atlas_url} "
            f"(`modelgov outbox retarget {entry.path.stem} --atlas URL` or `drop`)")
    for entry in result.held:
        say(f"held {entry.kind}: {entry.description}: {entry.reason or 'waits behind a refused record'} "
            f"(refused {entry.refusals} time(s))")
    for entry in result.dead:
        say(f"dead letter {entry.kind}: {entry.description}: {entry.reason} [{entry.path.stem}]")
    if result.pending:
        say(f"Atlas failed ({result.error}); {len(result.pending)} record(s) for it still pending in "
            f"{outbox.folder}", stderr=True)
        return EXIT_FAILED
    say(f"{len(result.replayed)} replayed, {len(result.skipped)} skipped (another Atlas), {len(result.held)} held, "
        f"{len(result.dead)} moved to dead letters", stderr=True)
    return EXIT_OK


def cmd_outbox_drop(args: argparse.Namespace) -> int:
    from governance.deploy.outbox import Outbox

    if not args.reason.strip():
        say("--reason is required: it is logged", stderr=True)
        return EXIT_USAGE
    entry = Outbox().drop(args.id, args.reason.strip())
    say(f"dropped {entry.kind}: {entry.description} (was for {entry.atlas_url}); logged")
    return EXIT_OK


def cmd_outbox_retarget(args: argparse.Namespace) -> int:
    from governance.deploy.outbox import Outbox
    from governance.secrets import refuse_credentials

    refuse_credentials(args.atlas, "--atlas")
    entry = Outbox().retarget(args.id, args.atlas)
    say(f"retargeted {entry.kind}: {entry.description} -> {entry.atlas_url}; `modelgov outbox sync --atlas "
        f"{entry.atlas_url}` replays it")
    return EXIT_OK


def cmd_outbox_requeue(args: argparse.Namespace) -> int:
    from governance.deploy.outbox import Outbox

    entry = Outbox().requeue(args.id)
    say(f"requeued {entry.kind}: {entry.description} for {entry.atlas_url}")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("outbox", help="Atlas records kept locally while Atlas was unreachable")
    outbox_sub = p.add_subparsers(dest="outbox_command", required=True)
    p2 = outbox_sub.add_parser("list", help="show the pending records, oldest first")
    p2.add_argument("--json", action="store_true")
    p2.set_defaults(func=cmd_outbox_list)
    p2 = outbox_sub.add_parser("sync", help="replay pending records into Atlas in order, exactly once")
    p2.add_argument("--atlas", default=None, help="Atlas base URL (default $ATLAS_URL or modelgov.yaml)")
    p2.add_argument("--all", action="store_true",
                    help="also replay records written for another Atlas URL into this one (after a move)")
    p2.set_defaults(func=cmd_outbox_sync)
    p2 = outbox_sub.add_parser("drop", help="remove one record for good (e.g. meant for a retired Atlas); logged")
    p2.add_argument("id")
    p2.add_argument("--reason", required=True)
    p2.set_defaults(func=cmd_outbox_drop)
    p2 = outbox_sub.add_parser("retarget", help="send one record (pending or dead) to another Atlas; logged")
    p2.add_argument("id")
    p2.add_argument("--atlas", required=True)
    p2.set_defaults(func=cmd_outbox_retarget)
    p2 = outbox_sub.add_parser("requeue", help="put a dead letter back in line for its Atlas; logged")
    p2.add_argument("id")
    p2.set_defaults(func=cmd_outbox_requeue)
