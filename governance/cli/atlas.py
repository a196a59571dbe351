"""``modelgov atlas install-types``: create or upgrade modelgov's Atlas typedefs (also done by every deploy)."""

from __future__ import annotations

import argparse

from governance.cli.common import EXIT_OK, atlas_opt, say


def cmd_install_types(args: argparse.Namespace) -> int:
    from governance.atlas.client import AtlasClient
    from governance.atlas.typedefs import install_types

    report = install_types(AtlasClient.from_env(args.atlas))
    say(f"Atlas types: {report.summary()}")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("atlas", help="Atlas administration")
    atlas_sub = p.add_subparsers(dest="atlas_command", required=True)
    p = atlas_sub.add_parser("install-types", help="create or upgrade modelgov's Atlas typedefs (idempotent)")
    atlas_opt(p)
    p.set_defaults(func=cmd_install_types)
