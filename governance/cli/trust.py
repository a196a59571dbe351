"""``modelgov trust init NAME``: a signing key pair for a person or a service, and the lines that use it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from governance.cli.common import EXIT_OK, say


def cmd_trust_init(args: argparse.Namespace) -> int:
    from governance.trust.signing import (
        SIGNING_KEY_ENV,
        SIGNING_PASSWORD_ENV,
        TRUSTED_KEYS_ENV,
        create_key_pair,
    )

    password = os.environ.get(SIGNING_PASSWORD_ENV) or None
    private, public, fingerprint = create_key_pair(Path(args.dir).expanduser().resolve(), args.name, password)
    say(f"created {private} (private, mode 0600{', encrypted with ' + SIGNING_PASSWORD_ENV if password else ''}: "
        f"keep it where only {args.name} can read it) and {public}")
    say(f"fingerprint {fingerprint}")
    say("sign what this identity publishes (on the host or worker that deploys):")
    say(f"  export {SIGNING_KEY_ENV}={private}")
    say("trust it where deploys are checked (several keys: comma-separated), and require signatures:")
    say(f"  export {TRUSTED_KEYS_ENV}={public}")
    say("  export MODELGOV_REQUIRE_SIGNATURE=true")
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("trust", help="signing identities and the trust policy")
    trust_sub = p.add_subparsers(dest="trust_command", required=True)
    p = trust_sub.add_parser("init", help="create a signing key pair (ECDSA P-256) and print the lines that use it")
    p.add_argument("name", help="who the key is for: a person or a service (the files are NAME.key and NAME.pub)")
    p.add_argument("--dir", default=".", help="folder for the key files (default: the current folder)")
    p.set_defaults(func=cmd_trust_init)
