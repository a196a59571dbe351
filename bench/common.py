"""What every benchmark shares: alternating runs, medians and spreads, one JSON line per result, the table.

Every result line has the same fields, each with one meaning:

- ``value``: the median of our measurement, in ``unit``;
- ``baseline``: the median of the alternative (a plain tool, a peer, the old way), same unit;
- ``ratio``: value over baseline, the median of the per-run ratios (each run measures both cases back to back,
  so a machine that drifts between runs moves both);
- ``higher_is_better``: whether a larger ``value`` (and so a larger ``ratio``) is the better outcome;
- ``value_min``/``value_max``, ``baseline_min``/``baseline_max``, ``spread_pct`` ((max - min) / median of
  ``value``): how much the runs moved;
- ``target`` (``{"on": "ratio"|"value", "op": "<="|">=", "bound": x}``) and ``ok`` when the issue sets a goal.

Results are also appended to ``$MODELGOV_BENCH_RESULTS`` (default ``.modelgov/bench/results.jsonl``), which
``python -m bench.table`` turns into the table in ``bench/README.md``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
MiB = 1 << 20


def results_path() -> Path:
    return Path(os.environ.get("MODELGOV_BENCH_RESULTS") or ROOT / ".modelgov" / "bench" / "results.jsonl")


@dataclass
class Target:
    on: str  # "ratio" or "value"
    op: str  # "<=" or ">="
    bound: float

    def holds(self, result: Result) -> bool:
        got = result.ratio if self.on == "ratio" else result.value
        return got <= self.bound if self.op == "<=" else got >= self.bound

    def __str__(self) -> str:
        return f"{self.on} {self.op} {self.bound:g}"


@dataclass
class Result:
    bench: str
    value: float
    unit: str
    baseline: float
    ratio: float
    higher_is_better: bool
    runs: int
    value_min: float
    value_max: float
    baseline_min: float
    baseline_max: float
    spread_pct: float
    baseline_name: str
    target: Target | None = None
    ok: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("extra")
        out["target"] = asdict(self.target) if self.target else None
        out.update(self.extra)
        return out


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(ours: Callable[[int], float], baseline: Callable[[int], float], runs: int,
              warmup: bool = False) -> tuple[list[float], list[float]]:
    """Run both cases ``runs`` times, alternating which goes first (A B, B A, ...); each callable gets the run
    number and returns its measurement. ``warmup`` runs each once first, uncounted."""
    if warmup:
        ours(-1)
        baseline(-1)
    a: list[float] = []
    b: list[float] = []
    for run in range(runs):
        order = [(a, ours), (b, baseline)] if run % 2 == 0 else [(b, baseline), (a, ours)]
        for bucket, fn in order:
            bucket.append(fn(run))
    return a, b


def result(bench: str, ours: list[float], baseline: list[float], *, unit: str, higher_is_better: bool,
           baseline_name: str, target: Target | None = None, **extra: Any) -> Result:
    """Medians, paired ratio and spread of two equally long sample lists."""
    if not ours or not baseline:
        raise ValueError(f"{bench}: no samples")
    paired = [a / b for a, b in zip(ours, baseline, strict=False) if b]
    value, base = statistics.median(ours), statistics.median(baseline)
    res = Result(bench=bench, value=_round(value), unit=unit, baseline=_round(base),
                 ratio=_round(statistics.median(paired) if paired else float("nan")),
                 higher_is_better=higher_is_better, runs=len(ours), value_min=_round(min(ours)),
                 value_max=_round(max(ours)), baseline_min=_round(min(baseline)), baseline_max=_round(max(baseline)),
                 spread_pct=round(100 * (max(ours) - min(ours)) / value, 1) if value else 0.0,
                 baseline_name=baseline_name, target=target, extra=extra)
    if target is not None:
        res.ok = target.holds(res)
    return res


def emit(res: Result) -> Result:
    """Print the JSON line and append it to the results file."""
    line = json.dumps(res.to_json(), sort_keys=False)
    print(line, flush=True)
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(line + "\n")
    return res


def failed(bench: str, reason: str) -> None:
    """A benchmark that could not run still leaves a line, so the table shows the gap instead of hiding it."""
    line = json.dumps({"bench": bench, "error": reason[-800:]})
    print(line, flush=True)
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(line + "\n")


def throughput(total_bytes: int, seconds: list[float]) -> list[float]:
    """Seconds per run -> MB/s per run."""
    return [total_bytes / MB / s for s in seconds]


def peak_rss_mb_of_self() -> float:
    """This process image's peak RSS (VmHWM): ru_maxrss would carry a parent's peak over fork+exec."""
    status = Path("/proc/self/status").read_text()
    return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024, 1)


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def _round(x: float) -> float:
    return round(x, 4) if abs(x) < 10 else round(x, 2)
