"""CLI: python -m emulators.atlas --host 127.0.0.1 --port PORT [--state FILE] [--users u:p,...] [--tokens t,...]."""

from __future__ import annotations

import argparse
import sys

from .server import AtlasEmulator


def parse_pairs(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        user, _, pw = item.partition(":")
        out[user] = pw
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emulators.atlas", description="Apache Atlas v2 REST emulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=21000)
    ap.add_argument("--state", default=None, help="JSON file; loaded at start, saved within a second of a change and on stop")
    ap.add_argument("--users", default="admin:admin", help="comma list of user:password")
    ap.add_argument("--tokens", default="", help="comma list of accepted bearer tokens")
    args = ap.parse_args(argv)
    emu = AtlasEmulator(host=args.host, port=args.port, state_path=args.state, users=parse_pairs(args.users),
                        tokens=[t for t in args.tokens.split(",") if t])
    emu.start()
    emu.serve_until_signalled("atlas emulator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
