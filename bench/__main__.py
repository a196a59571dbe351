"""``make bench`` = ``python -m bench``: every benchmark, each module in its own process, then the table.

    python -m bench [--runs N] [--only MODULE ...] [--quick]

Modules: deploy (single, batch), registry (file, S3, HDFS, peak RSS), atlas (bulk vs per entity, emulator and
real Atlas), compliance (Atlas calls of a report, emulator and real Atlas), fleet (report and impact over
100 to 10,000 records on real Atlas: seconds, calls, peak RSS), spark, mlflow_peer. Each starts the servers it needs once (``testbed``). Results go to a fresh
``.modelgov/bench/results-<time>.jsonl`` (also copied to ``results.jsonl``); the table ends the run.
Run it on an idle machine: the numbers are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

from bench.common import ROOT, log, results_path
from bench.table import load, print_rich

MODULES = ["deploy", "registry", "atlas", "compliance", "fleet", "spark", "mlflow_peer"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="alternating runs per benchmark (at least 5 for a report)")
    parser.add_argument("--only", nargs="*", choices=MODULES, default=None)
    parser.add_argument("--quick", action="store_true", help="small sizes and counts: checks that every bench runs")
    args = parser.parse_args(argv)
    out = results_path().with_name(f"results-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MODELGOV_BENCH_RESULTS": str(out)}
    status = 0
    for module in args.only or MODULES:
        cmd = [sys.executable, "-m", f"bench.{module}", "--runs", str(args.runs)] + (["--quick"] if args.quick else [])
        log(f"{' '.join(cmd[1:])}")
        started = time.monotonic()
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        log(f"bench.{module}: exit {rc} after {time.monotonic() - started:.0f} s")
        status = status or rc
    shutil.copyfile(out, results_path()) if out.exists() else None
    print_rich(load(out))
    log(f"results: {out}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
