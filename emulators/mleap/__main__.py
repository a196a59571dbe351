"""``python -m emulators.mleap --host 127.0.0.1 --port 65327``: run the MLeap serving stand-in until killed."""

from __future__ import annotations

import argparse
import sys

from emulators.mleap.server import MleapServingEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.mleap", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65327, help="0 picks a free port (printed when ready)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    emulator = MleapServingEmulator(host=args.host, port=args.port, verbose=args.verbose)
    try:
        emulator.start()
    except OSError as exc:
        print(f"mleap serving emulator cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    emulator.serve_until_signalled("mleap serving emulator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
