"""Deploy benchmarks: ``modelgov deploy`` as users run it, against a bare script doing the same work.

    python -m bench.deploy [--runs 5] [--quick] [--batch 100] [--one-by-one 10]

Servers (started once, through ``testbed``): a Prefect server on PostgreSQL (the "running Prefect server"),
the Atlas emulator and a real MLServer. Every case runs as its own process, the way an operator runs it:

- ``deploy_single_warm_vs_bare_script``: one ``modelgov deploy`` of a small model (a new version each run)
  against ``bench/bare_deploy.sh`` (copy + sha256, MLServer load, smoke inference, one Atlas bulk post).
  Target: at most 2.5 s.
- ``deploy_batch_100_vs_one_by_one``: one ``modelgov deploy --from-file`` of 100 models (one flow run)
  against 100 separate ``modelgov deploy`` runs. The separate runs are measured on ``--one-by-one`` of them
  per run and scaled to the batch size (each is an independent process; the JSON says how many ran).
  Target: ratio at most 0.1 (10x faster).
- ``deploy_batch_100_vs_bare_loop``: the same batch against a shell loop of ``bare_deploy.sh`` over 100 models.
  Target: ratio at most 3.
- ``atlas_calls_per_model_batch`` (issue 23): the Atlas calls a ``deploy --from-file`` of new models adds per
  model (the growth from 10 to 40 models, through ``testbed.counting_proxy`` in front of the emulator) against
  the calls per model of separate ``modelgov deploy`` runs. Target: at most 4 calls per model.
The cases of one run go in a rotating order; every run deploys new versions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, Target, alternate, emit, failed, log, result

EXAMPLE = ROOT / "staging_template" / "example"
BARE = ROOT / "bench" / "bare_deploy.sh"
MODELGOV = [sys.executable, "-m", "governance"]


class Bench:
    def __init__(self, work: Path, prefect: dict, atlas: dict, mlserver: dict):
        self.work = work
        self.target = mlserver["target_uri"]
        self.mlserver_url = mlserver["url"]
        self.repository = self.target.split("repository=", 1)[1]
        self.atlas_url = atlas["url"]
        self.registry = f"file://{work / 'registry'}"
        self.env = {**os.environ, "PREFECT_API_URL": prefect["url"], "ATLAS_URL": atlas["url"],
                    "ATLAS_USERNAME": atlas["username"], "ATLAS_PASSWORD": atlas["password"],
                    "PREFECT_HOME": str(work / "prefect-home"), "MODELGOV_STATE_DIR": str(work / "state"),
                    "DO_NOT_TRACK": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
        self.env.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)

    def staged(self, name: str, version: int) -> Path:
        """A copy of the example with its own name and version (MLServer orders versions as integers)."""
        path = self.work / "staged" / f"{name}-{version}"
        if not path.exists():
            shutil.copytree(EXAMPLE, path)
            meta = [line for line in (EXAMPLE / "metadata.txt").read_text().splitlines()
                    if not line.replace(" ", "").startswith(("model.name=", "model.version="))]
            (path / "metadata.txt").write_text("\n".join([f"model.name = {name}", f"model.version = {version}",
                                                          *meta]) + "\n")
        return path

    def _run(self, cmd: list[str], what: str) -> float:
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=3600)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{what} exited {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}")
        return seconds

    def modelgov_deploy(self, sources: list[Path], atlas_url: str | None = None) -> float:
        """Seconds of one `modelgov deploy` of ``sources`` (a batch when several), to ``atlas_url`` if given."""
        if len(sources) == 1:
            args = [str(sources[0])]
        else:
            listing = self.work / f"batch-{time.monotonic_ns()}.txt"
            listing.write_text("\n".join(str(s) for s in sources) + "\n")
            args = ["--from-file", str(listing)]
        atlas = ["--atlas", atlas_url] if atlas_url else []
        return self._run([*MODELGOV, "deploy", *args, "--target", self.target, "--registry", self.registry,
                          "--environment", "staging", "--json", *atlas], f"modelgov deploy of {len(sources)}")

    def bare(self, name: str, version: int) -> float:
        return self._run(["sh", str(BARE), str(self.staged(name, version)), str(self.work / "bare-registry"),
                          self.repository, self.mlserver_url, self.atlas_url, name, str(version)], "bare_deploy.sh")

    def bare_loop(self, names: list[str], version: int) -> float:
        script = "; ".join(f'sh "{BARE}" "{self.staged(n, version)}" "{self.work / "bare-registry"}" '
                           f'"{self.repository}" "{self.mlserver_url}" "{self.atlas_url}" "{n}" {version}'
                           for n in names)
        return self._run(["sh", "-ec", script], "bare loop")


PREFECT_FLOOR = """
import sys
from prefect import flow, task
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

@task
def step(x: int) -> int:
    return x + 1

@flow
def floor(x: int) -> int:
    return step(x)

with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
    floor(1)
"""


def start_servers(work: Path, stack: ExitStack) -> Bench:
    """A Prefect server on PostgreSQL, the Atlas emulator and a real MLServer, stopped when ``stack`` closes."""
    from testbed.service import service_class

    infos = {}
    for name in ("prefect-server", "atlas-emulator", "mlserver"):
        (work / name).mkdir()
        service = service_class(name)(work / name)
        infos[name] = service.start()
        stack.callback(service.stop)
    return Bench(work, infos["prefect-server"], infos["atlas-emulator"], infos["mlserver"])


def bench_single(b: Bench, runs: int) -> None:
    b.modelgov_deploy([b.staged("bench-single", 1)])  # warm-up: types installed, the flow registered
    b.bare("bare-single", 1)
    ours, bare, floor = [], [], []
    for run in range(runs):
        version = run + 2
        cases = [(ours, lambda v=version: b.modelgov_deploy([b.staged("bench-single", v)])),
                 (bare, lambda v=version: b.bare("bare-single", v)),
                 (floor, lambda: b._run([sys.executable, "-c", PREFECT_FLOOR], "one-task Prefect flow"))]
        shift = run % len(cases)
        for bucket, fn in cases[shift:] + cases[:shift]:
            bucket.append(fn())
    emit(result("deploy_single_warm_vs_bare_script", ours, bare, unit="s", higher_is_better=False,
                baseline_name="bare_deploy.sh", target=Target("value", "<=", 2.5),
                prefect_floor_s=round(statistics.median(floor), 3),
                prefect_floor_range_s=[round(min(floor), 3), round(max(floor), 3)],
                note="whole `modelgov deploy` process on a running Prefect server (PostgreSQL), Atlas emulator, "
                     "real MLServer; a new version each run. prefect_floor_s: a fresh process running a flow "
                     "with one empty task (heartbeat off, as the CLI runs) against the same server"))


def bench_batch(b: Bench, runs: int, size: int, sample: int) -> None:
    batch_names = [f"bench-batch-{i:03d}" for i in range(size)]
    bare_names = [f"bare-batch-{i:03d}" for i in range(size)]
    single_names = [f"bench-one-{i:03d}" for i in range(sample)]
    batch, one_by_one, bare = [], [], []

    def run_batch(version: int) -> float:
        return b.modelgov_deploy([b.staged(n, version) for n in batch_names])

    def run_one_by_one(version: int) -> float:
        seconds = sum(b.modelgov_deploy([b.staged(n, version)]) for n in single_names)
        return seconds * size / sample

    def run_bare(version: int) -> float:
        return b.bare_loop(bare_names, version)

    cases = [(batch, run_batch), (one_by_one, run_one_by_one), (bare, run_bare)]
    for run in range(runs):
        version = run + 1
        for n in batch_names + bare_names + single_names:  # copies made outside the timed part
            b.staged(n, version)
        shift = run % len(cases)
        for bucket, fn in cases[shift:] + cases[:shift]:
            bucket.append(fn(version))
            log(f"batch run {run + 1}/{runs}: {fn.__name__} {bucket[-1]:.1f} s")
    emit(result("deploy_batch_100_vs_one_by_one", batch, one_by_one, unit="s", higher_is_better=False,
                baseline_name=f"{size} separate modelgov deploy runs", target=Target("ratio", "<=", 0.1),
                models=size, one_by_one_measured=sample,
                note=f"one flow run deploying {size} models to one MLServer (per-target limit 2); the separate runs "
                     f"are {sample} per run, scaled x{size / sample:g}"))
    emit(result("deploy_batch_100_vs_bare_loop", batch, bare, unit="s", higher_is_better=False,
                baseline_name=f"shell loop of bare_deploy.sh over {size} models", target=Target("ratio", "<=", 3.0),
                models=size))


def bench_batch_calls(b: Bench, runs: int, sizes: tuple[int, int], sample: int) -> None:
    """``atlas_calls_per_model_batch``: the Atlas calls a batch of new models adds per model, measured as the
    growth between two batch sizes through a counting proxy in front of the emulator (new model names each
    run); against the calls per model of separate ``modelgov deploy`` runs (``sample`` of them)."""
    from testbed.counting_proxy import CountingProxy

    small, large = sizes
    totals: dict[int, list[int]] = {small: [], large: []}
    by_endpoint: dict[str, int] = {}
    with CountingProxy(b.atlas_url) as proxy:
        def batch(run: int) -> float:
            nonlocal by_endpoint
            for size in sizes:
                proxy.reset()
                b.modelgov_deploy([b.staged(f"calls-r{run + 1}-{size}-{i:03d}", 1) for i in range(size)], proxy.url)
                totals[size].append(proxy.total)
            by_endpoint = dict(proxy.by_endpoint())  # the larger batch's
            return (totals[large][-1] - totals[small][-1]) / (large - small)

        def separate(run: int) -> float:
            proxy.reset()
            for i in range(sample):
                b.modelgov_deploy([b.staged(f"calls-one-r{run + 1}-{i:03d}", 1)], proxy.url)
            return proxy.total / sample

        # warm-up (uncounted): the first run against a fresh emulator installs the types, once
        ours, base = alternate(batch, separate, runs, warmup=True)
        totals = {size: counts[1:] for size, counts in totals.items()}
    emit(result("atlas_calls_per_model_batch", ours, base, unit="calls/model", higher_is_better=False,
                baseline_name=f"separate modelgov deploy runs ({sample} per run), calls per model",
                target=Target("value", "<=", 4.0), server="emulator", sizes=list(sizes),
                calls_small=round(statistics.median(totals[small])), calls_large=round(statistics.median(totals[large])),
                calls_by_endpoint_large=by_endpoint,
                note=f"`modelgov deploy --from-file` of {small} and of {large} new models to one MLServer, Atlas "
                     "emulator behind testbed.counting_proxy; value: (calls at the larger size - calls at the "
                     "smaller) / the models more, so the constant part of a run cancels out"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 runs, a batch of 10, 2 separate deploys")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--one-by-one", type=int, default=10, help="separate deploys measured per run")
    parser.add_argument("--only", choices=["single", "batch", "calls"], help="one of the benchmarks")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.batch, args.one_by_one = min(args.runs, 2), 10, 2
    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-deploy-"))
    with ExitStack() as stack:
        try:
            b = start_servers(work, stack)
        except Exception as exc:  # noqa: BLE001 - the table shows the gap
            for bench in ("deploy_single_warm_vs_bare_script", "deploy_batch_100_vs_one_by_one",
                          "deploy_batch_100_vs_bare_loop", "atlas_calls_per_model_batch"):
                failed(bench, f"servers did not start: {exc}")
            return 1
        status = 0
        for key, fn, bench_args, names in (
                ("single", bench_single, (args.runs,), ["deploy_single_warm_vs_bare_script"]),
                ("batch", bench_batch, (args.runs, args.batch, args.one_by_one),
                 ["deploy_batch_100_vs_one_by_one", "deploy_batch_100_vs_bare_loop"]),
                ("calls", bench_batch_calls, (args.runs, (5, 10) if args.quick else (10, 40), 2),
                 ["atlas_calls_per_model_batch"])):
            if args.only and args.only != key:
                continue
            try:
                fn(b, *bench_args)
            except Exception as exc:  # noqa: BLE001
                status = 1
                for name in names:
                    failed(name, f"{exc.__class__.__name__}: {exc}")
    shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
