"""``modelgov``: the parser of every command group, and the one place errors become exit codes.

Exit status: 0 success, 1 a step failed (the message names the step), 2 bad usage or configuration.
Secrets are read from the environment (ATLAS_USERNAME/ATLAS_PASSWORD/ATLAS_TOKEN, AWS_*), never from flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from governance.cli import atlas, compliance, deploy, doctor, operations, outbox, registry, score, trust
from governance.cli.common import EXIT_FAILED, EXIT_USAGE, say
from governance.errors import ConfigError, GovernanceError

COMMAND_GROUPS = (deploy, compliance, atlas, registry, outbox, doctor, operations, trust, score)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelgov", description="Governed model deployments with Apache Atlas")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        say(f"modelgov: {exc}", stderr=True)
        return EXIT_USAGE
    except GovernanceError as exc:
        say(f"modelgov: {exc}", stderr=True)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
