"""``modelgov outbox list|sync``: Atlas records kept locally while Atlas was unreachable, and their replay."""

from __future__ import annotations

import argparse
import json

from governance.cli.common import EXIT_FAILED, EXIT_OK, say


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from governance.deploy.outbox import Outbox

    outbox = Outbox()
    rows = [entry.to_row() for entry in outbox.pending()]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return EXIT_OK
    if not rows:
        say(f"the outbox ({outbox.folder}) is empty: every record reached Atlas")
        return EXIT_OK
    for row in rows:
        say(f"{row['created']}  {row['kind']:<10}  {row['atlas']}  {row['description']}  [{row['id']}]")
    say(f"{len(rows)} record(s) pending in {outbox.folder}; `modelgov outbox sync` replays them", stderr=True)
    return EXIT_OK


def cmd_outbox_sync(args: argparse.Namespace) -> int:
    """Replay pending records in order, exactly once (upserts by qualifiedName), into the given Atlas."""
    from governance.atlas.client import AtlasClient
    from governance.deploy.outbox import Outbox

    outbox = Outbox()
    client = AtlasClient.from_env(args.atlas)
    try:
        client.status()  # an unreachable Atlas is an AtlasUnavailable naming it and how long we waited
        replayed, pending = outbox.sync(client, only_url=None if args.all else client.settings.url)
    finally:
        client.close()
    for entry in replayed:
        say(f"replayed {entry.kind}: {entry.description}")
    if pending:
        say(f"{len(pending)} record(s) still pending in {outbox.folder} (`modelgov outbox list`)", stderr=True)
        return EXIT_FAILED
    say(f"{len(replayed)} record(s) replayed; the outbox is empty", stderr=True)
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
