"""Where a warm ``modelgov deploy`` spends its time: ``python -m bench.profile_deploy`` (``make profile``).

Starts the same servers as ``bench.deploy`` (Prefect server on PostgreSQL, Atlas emulator, real MLServer),
deploys once to warm them, then runs one more ``modelgov deploy`` under pyinstrument (the ``bench`` extra) and
prints its call tree, import machinery folded away. ``bench/README.md`` explains the breakdown.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT
from bench.deploy import MODELGOV, start_servers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = parser.parse_args(argv)
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        print("pyinstrument is missing: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="modelgov-profile-"))
    with ExitStack() as stack:
        b = start_servers(work, stack)
        b.modelgov_deploy([b.staged("profiled", 1)])  # warm: types installed, flow and limit created
        deploy = ["deploy", str(b.staged("profiled", 2)), "--target", b.target, "--registry", b.registry,
                  "--environment", "staging", "--json"]
        out = args.html or work / "profile.txt"
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "html" if args.html else "text", "-o", str(out),
               "--hide-regex", ".*importlib.*", "-m", *MODELGOV[2:], *deploy]
        proc = subprocess.run(cmd, cwd=ROOT, env=b.env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"written {out}" if args.html else out.read_text())
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
