"""Spark benchmark (issue 24): one governed scoring run of 1 million rows against plain PySpark doing the same.

    python -m bench.spark [--runs N] [--quick] [--rows N]

Setup, outside the clock: the Atlas emulator, the iris table repeated to N rows (CSV), and the example model
deployed to ``spark://local?cores=2`` through the library's saga (the binding, its smoke scoring, the records).
Ours: ``governance.deploy.scoring_run.score`` as ``modelgov score`` runs it: the binding and Atlas checks, the input's
sha256, the intent record, the read, ``mapInPandas`` with the bound model, the write under a temporary name and
the rename, the row counts, the output's version and the final record. Baseline: plain PySpark in the same
session: read the CSV, ``mapInPandas`` with the same model broadcast, write the CSV. Both share one warm
SparkSession, alternate, and write a fresh output each run. Target: ratio <= 1.5 (governance costs one
extra pass over the input, the count, and one over the output, the read-back count and its hash).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.atlas import start_server
from bench.common import ROOT, Target, alternate, emit, failed, log, result

BENCH = "spark_score_1m_rows_vs_plain_pyspark"
EXAMPLE = ROOT / "staging_template" / "example"


def write_table(path: Path, rows: int) -> None:
    lines = (EXAMPLE / "data" / "iris.csv").read_text().splitlines()
    header, body = lines[0], lines[1:]
    with path.open("w") as out:
        out.write(header + "\n")
        for start in range(0, rows, len(body)):
            out.write("\n".join(body[: min(len(body), rows - start)]) + "\n")


def plain_pyspark(spark, table: Path, out: Path, model_bytes: bytes) -> None:
    """What a data engineer writes without governance: read, score with mapInPandas, write."""
    import joblib

    shared = spark.sparkContext.broadcast(model_bytes)
    frame = spark.read.option("header", "true").option("inferSchema", "true").csv(f"file://{table}")
    features = frame.columns[:4]
    schema = ", ".join([f"`{f.name}` {f.dataType.simpleString()}" for f in frame.schema.fields] + ["prediction bigint"])

    def predict(batches):
        model = joblib.load(io.BytesIO(shared.value))
        for batch in batches:
            batch = batch.copy()
            batch["prediction"] = model.predict(batch[features].to_numpy())
            yield batch

    frame.mapInPandas(predict, schema=schema).write.option("header", "true").csv(f"file://{out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    runs = min(args.runs, 2) if args.quick else args.runs
    work = Path(tempfile.mkdtemp(prefix="modelgov-bench-spark-"))
    svc = None
    try:
        from governance.atlas.client import AtlasClient, AtlasSettings
        from governance.deploy.request import resolve_request
        from governance.deploy.saga import run_deploy
        from governance.deploy.scoring_run import score
        from governance.spark.session import session
        from governance.targets import get_target

        os.environ.setdefault("ATLAS_USERNAME", "admin")
        os.environ.setdefault("ATLAS_PASSWORD", "admin")
        os.environ.setdefault("MODELGOV_STATE_DIR", str(work / "state"))
        svc, info = start_server("atlas-emulator", work)
        table = work / "in" / "table.csv"
        table.parent.mkdir()
        write_table(table, rows)
        target_uri = (f"spark://local?cores=2&input=file://{table}&output=file://{work}/ours/{{run_id}}"
                      f"&bindings={work / 'bindings'}")
        (work / "modelgov.yaml").write_text("{}\n")
        request = resolve_request(str(EXAMPLE), target_uri, f"file://{work / 'registry'}", info["url"],
                                  config=work / "modelgov.yaml")
        started = time.monotonic()
        run_deploy(request)
        log(f"deployed the example to {target_uri} in {time.monotonic() - started:.1f} s; table of {rows} rows")
        target = get_target(target_uri)
        client = AtlasClient(AtlasSettings(url=info["url"], username="admin", password="admin"))
        spark = session(target.master)
        model_bytes = (EXAMPLE / "executable" / "model.joblib").read_bytes()
        outcomes: list[dict] = []

        def ours(run: int) -> float:
            begin = time.perf_counter()
            outcomes.append(score(target, "iris-classifier", client).to_dict())
            return time.perf_counter() - begin

        def baseline(run: int) -> float:
            out = work / "plain" / f"run-{run}-{time.monotonic_ns()}"
            begin = time.perf_counter()
            plain_pyspark(spark, table, out, model_bytes)
            return time.perf_counter() - begin

        a, b = alternate(ours, baseline, runs, warmup=True)
        if any(o["rowsOut"] != rows or o["outcome"] != "succeeded" for o in outcomes):
            failed(BENCH, f"a governed run did not score every row: {outcomes[-1]}")
            return 1
        emit(result(BENCH, a, b, unit="s", higher_is_better=False, baseline_name="plain PySpark mapInPandas",
                    target=Target("ratio", "<=", 1.5), rows=rows, master=target.master))
        return 0
    except Exception as exc:  # noqa: BLE001 - the table shows the gap instead of hiding it
        failed(BENCH, f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        if svc is not None:
            svc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
