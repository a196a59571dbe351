"""The results table: ``python -m bench.table [RESULTS.jsonl] [--markdown]``.

One row per benchmark (the last line for each name), in the issue's order; a benchmark that failed shows its
error, one that never ran shows ``not run``, so a gap is never hidden.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
from pathlib import Path

from bench.common import results_path

ORDER = [
    "deploy_single_warm_vs_bare_script",
    "deploy_batch_100_vs_one_by_one",
    "deploy_batch_100_vs_bare_loop",
    "file_publish_vs_cp_sha256sum",
    "s3_publish_vs_boto3_upload_file",
    "hdfs_publish_vs_hdfs_upload",
    "peak_rss_publish_1gib_file",
    "peak_rss_publish_1gib_s3",
    "peak_rss_publish_1gib_hdfs",
    "atlas_bulk_vs_per_entity",
    "atlas_calls_per_deployment_report",
    "atlas_calls_per_model_batch",
    "mlflow_peer_s3_publish_register",
]
COLUMNS = ["bench", "value", "baseline", "ratio", "spread", "target", "ok"]


def load(path: Path) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                key = row["bench"] + (f" ({row['server']})" if row.get("server") and row["bench"].startswith("atlas")
                                      else "")
                rows[key] = row
    return rows


def cells(name: str, row: dict | None) -> list[str]:
    if row is None:
        return [name, "not run", "", "", "", "", ""]
    if "error" in row:
        return [name, "FAILED", "", "", "", "", row["error"][:120]]
    unit = row["unit"]
    target = row.get("target")
    return [name, f"{row['value']:g} {unit}", f"{row['baseline']:g} {unit} ({row['baseline_name']})",
            f"{row['ratio']:g}", f"±{row['spread_pct'] / 2:g}% ({row['runs']} runs)",
            f"{target['on']} {target['op']} {target['bound']:g}" if target else "",
            "" if row.get("ok") is None else ("yes" if row["ok"] else "NO")]


def table_rows(rows: dict[str, dict]) -> list[list[str]]:
    out = []
    for name in ORDER:
        variants = sorted(k for k in rows if k == name or k.startswith(name + " ("))
        if not variants:
            out.append(cells(name, None))
        for key in variants:
            out.append(cells(key, rows[key]))
    out += [cells(k, v) for k, v in rows.items() if k.split(" (")[0] not in ORDER]
    return out


def machine() -> str:
    mem = cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        kb = int(next(li.split()[1] for li in Path("/proc/meminfo").read_text().splitlines()
                      if li.startswith("MemTotal:")))
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(li.split(":", 1)[1].strip() for li in Path("/proc/cpuinfo").read_text().splitlines()
                   if li.startswith("model name"))
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}"


def markdown(rows: dict[str, dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in table_rows(rows)]
    return "\n".join(lines)


def print_rich(rows: dict[str, dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"modelgov benchmarks: {machine()}")
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for r in table_rows(rows):
        table.add_row(*r)
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=None)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    rows = load(args.results or results_path())
    if args.markdown:
        print(f"Machine: {machine()}\n")
        print(markdown(rows))
    else:
        print_rich(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
