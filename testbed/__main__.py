"""``python -m testbed SERVICE [--port P] [--workdir DIR]``: start one local service, print one JSON ready
line, serve until SIGTERM or SIGINT, stop everything it started and exit 0 (non-zero with the reason when
it cannot start)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path

from testbed import SERVICES
from testbed.service import ServiceError, service_class


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("--port", type=int, default=None, help="main port (default: a free one)")
    parser.add_argument("--workdir", default=None, help="state folder (default: a new temporary folder)")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a certificate of a testbed CA (its bundle: ca_bundle in the ready "
                             "line); the emulators support it")
    parser.add_argument("--kerberos", action="store_true",
                        help="hdfs, atlas: Kerberized (SPNEGO) against a KDC of its own, or --kdc's (realm, "
                             "krb5.conf and keytabs in the ready line)")
    parser.add_argument("--kdc", default=None, metavar="READY_LINE_FILE",
                        help="with --kerberos: use this running KDC (a file holding the ready line of "
                             "`python -m testbed kdc`) instead of starting one")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix=f"testbed-{args.service}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    done = threading.Event()
    starting = True

    def on_signal(signum: int, _frame: object) -> None:
        done.set()
        if starting:  # a slow start (Atlas: minutes) is abandoned, and what it started is stopped
            raise ServiceError(f"stopped by {signal.Signals(signum).name} before it was ready")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    cls = service_class(args.service)
    if args.kerberos and args.service not in ("hdfs", "atlas"):
        print(f"testbed {args.service}: --kerberos is supported by hdfs and atlas only", file=sys.stderr)
        return 2
    if args.kdc and not args.kerberos:
        print(f"testbed {args.service}: --kdc goes with --kerberos", file=sys.stderr)
        return 2
    kdc = json.loads(Path(args.kdc).read_text()) if args.kdc else None
    service = cls(workdir, args.port, kerberos=True, kdc=kdc) if args.kerberos else cls(workdir, args.port)
    if args.tls and not service.supports_tls:
        print(f"testbed {args.service}: --tls is not supported by this service", file=sys.stderr)
        return 2
    service.tls = args.tls
    try:
        info = service.start()
        starting = False
    except ServiceError as exc:
        service.stop()
        print(f"testbed {args.service}: cannot start: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps(info), flush=True)
        done.wait()
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
