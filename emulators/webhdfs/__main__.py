"""``python -m emulators.webhdfs --host 127.0.0.1 --port 9870 --root DIR [--datanode-port P] [--standby]``."""

from __future__ import annotations

import argparse

from emulators.webhdfs.server import WebHdfsEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.webhdfs", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9870, help="namenode HTTP port (0 = any free port)")
    parser.add_argument("--datanode-port", type=int, default=0, help="datanode HTTP port (0 = any free port)")
    parser.add_argument("--root", required=True, help="folder holding the emulated file system")
    parser.add_argument("--standby", action="store_true", help="answer every call with StandbyException")
    args = parser.parse_args(argv)
    emu = WebHdfsEmulator(args.root, args.host, args.port, datanode_port=args.datanode_port,
                          standby=args.standby).start()
    emu.serve_until_signalled("webhdfs emulator")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
