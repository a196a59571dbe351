"""Apply a bound model to a table with Spark: scikit-learn models through ``mapInPandas``.

The driver reads the bound copy, checks its sha256 against the binding (the registry manifest's digest), and
broadcasts the bytes; each Python worker unpickles them once per partition stream. The features are the model's
own ``feature_names_in_`` when it was fitted on named columns, else the first ``n_features_in_`` columns of the
input, in order. The output is the input with one ``prediction`` column.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

from governance.errors import TargetError

PREDICTION = "prediction"
FORMATS = ("csv", "parquet")


def load_model(data: bytes) -> Any:
    import joblib

    return joblib.load(io.BytesIO(data))


def checked_bytes(data: bytes, sha256: str, where: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise TargetError(f"{where} has sha256 {actual}, the binding names {sha256}: refusing to score with it")
    return data


def feature_columns(model: Any, columns: list[str]) -> list[str]:
    """Which input columns the model reads (a TargetError naming what is missing)."""
    named = getattr(model, "feature_names_in_", None)
    if named is not None:
        missing = [c for c in named if c not in columns]
        if missing:
            raise TargetError(f"the input lacks the model's feature column(s) {', '.join(missing)} "
                              f"(it has {', '.join(columns)})")
        return [str(c) for c in named]
    count = int(getattr(model, "n_features_in_", len(columns)))
    if count > len(columns):
        raise TargetError(f"the model reads {count} features, the input has {len(columns)} columns")
    return columns[:count]


def _spark_type(kind: str) -> str:
    return {"i": "bigint", "u": "bigint", "f": "double", "b": "boolean"}.get(kind, "string")


def score_frame(spark, frame, model_bytes: bytes):  # (SparkSession, DataFrame, bytes) -> DataFrame
    """``frame`` with a ``prediction`` column, computed on the executors."""
    import numpy as np

    model = load_model(model_bytes)
    features = feature_columns(model, list(frame.columns))
    if PREDICTION in frame.columns:
        raise TargetError(f"the input already has a column named {PREDICTION!r}")
    # the prediction's type from the model, not from a sample job: a classifier predicts its classes_, anything
    # else (a regressor) numbers
    classes = getattr(model, "classes_", None)
    kind = np.asarray(classes).dtype.kind if classes is not None else "f"
    prediction_type = _spark_type(kind)
    schema = ", ".join([f"`{f.name}` {f.dataType.simpleString()}" for f in frame.schema.fields]
                       + [f"`{PREDICTION}` {prediction_type}"])
    shared = spark.sparkContext.broadcast(model_bytes)

    def predict(batches: Iterator) -> Iterator:
        loaded = load_model(shared.value)
        for batch in batches:
            out = batch.copy()
            values = loaded.predict(batch[features].to_numpy())
            out[PREDICTION] = values if prediction_type != "string" else [str(v) for v in values]
            yield out

    return frame.mapInPandas(predict, schema=schema)


def v2_request_frame(spark, request: dict, model: Any):
    """An Open Inference Protocol (V2) request's first input as a DataFrame (the smoke example)."""
    import pandas as pd

    try:
        first = request["inputs"][0]
        rows, width = first["shape"]
        data = first["data"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise TargetError("examples/request.json is not a V2 inference request with a 2-D first input") from exc
    names = [str(c) for c in getattr(model, "feature_names_in_", [f"f{i}" for i in range(width)])]
    values = [data[i * width:(i + 1) * width] for i in range(rows)]
    return spark.createDataFrame(pd.DataFrame(values, columns=names))


def v2_expected(response: dict) -> list:
    try:
        return list(response["outputs"][0]["data"])
    except (KeyError, IndexError, TypeError) as exc:
        raise TargetError("examples/response.json is not a V2 inference response") from exc
