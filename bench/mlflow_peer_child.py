"""The MLflow side of ``bench.mlflow_peer``, run with MLflow's own venv (``.venv-mlflow``), never modelgov's:

    .venv-mlflow/bin/python bench/mlflow_peer_child.py STAGED_DIR MODEL_NAME TRACKING_URI ARTIFACT_ROOT

What a user of MLflow does to publish and register an existing model folder: a run in an experiment whose
artifact location is ``ARTIFACT_ROOT`` (``s3://bucket/prefix``, reached through ``MLFLOW_S3_ENDPOINT_URL``),
the folder logged as a LoggedModel (``initialize_logged_model``, ``log_model_artifacts``, ``finalize_logged_model``:
MLflow 3 refuses to register plain ``log_artifacts`` output), then ``mlflow.register_model("models:/<id>", NAME)``.
Prints one JSON line: seconds (imports excluded, and the import time), peak RSS (VmHWM), what the
registry and the run recorded.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

started = time.perf_counter()
import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

imported = time.perf_counter()


def peak_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return round(int(next(li.split()[1] for li in status.splitlines() if li.startswith("VmHWM:"))) / 1024, 1)


def main() -> int:
    staged, name, tracking_uri, artifact_root = sys.argv[1:5]
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name("bench")
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment("bench", artifact_location=artifact_root))
    begin = time.perf_counter()
    with mlflow.start_run(experiment_id=experiment_id) as run:
        # MLflow 3 registers logged models only (``runs:/<run>/<path>`` of plain artifacts is refused):
        # a LoggedModel of the staged folder as it is, no flavor, no re-serialisation
        model = mlflow.initialize_logged_model(name=name, source_run_id=run.info.run_id,
                                               experiment_id=experiment_id)
        client.log_model_artifacts(model.model_id, staged)
        mlflow.finalize_logged_model(model.model_id, "READY")
    version = mlflow.register_model(f"models:/{model.model_id}", name)
    seconds = time.perf_counter() - begin
    fields = {k.lstrip("_"): v for k, v in vars(version).items()}
    print(json.dumps({"seconds": seconds, "import_seconds": imported - started, "peak_rss_mb": peak_rss_mb(),
                      "run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri,
                      "model_version": {k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v))
                                        for k, v in fields.items()},
                      "model_id": model.model_id, "model_artifact_location": model.artifact_location},
                     default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
