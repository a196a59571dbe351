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


def load_model(data: bytes, framework: str = "sklearn") -> Any:
    """The model object. ``sklearn``: a joblib or pickle file. ``mlflow-sklearn:skops`` (MLflow 3's default
    for the sklearn flavor): skops, trusting only the types skops trusts by default (scikit-learn's, NumPy's), so
    a model that needs anything else is refused instead of executing it. ``mlflow-sklearn:pickle`` or
    ``:cloudpickle``: plain pickle (joblib's unpickler refuses MLflow's files)."""
    if framework == "mlflow-sklearn:skops":
        from skops.io import get_untrusted_types, loads

        untrusted = get_untrusted_types(data=data)
        if untrusted:
            raise TargetError(f"the MLflow model's skops file holds types skops does not trust by default "
                              f"({', '.join(untrusted[:5])}); refusing to load it")
        return loads(data)
    if framework.startswith("mlflow-sklearn:"):
        import pickle

        return pickle.loads(data)  # noqa: S301 - the bytes are the registry version's, sha256-checked
    import joblib

    return joblib.load(io.BytesIO(data))


def checked_bytes(data: bytes, sha256: str, where: str) -> bytes:
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise TargetError(f"{where} has sha256 {actual}, the binding names {sha256}: refusing to score with it")
    return data


def model_feature_names(model: Any) -> list[str] | None:
    named = getattr(model, "feature_names_in_", None)
    return [str(c) for c in named] if named is not None else None


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


def score_frame(spark, frame, model_bytes: bytes, framework: str = "sklearn"):  # -> DataFrame
    """``frame`` with a ``prediction`` column, computed on the executors."""
    import numpy as np

    model = load_model(model_bytes, framework)
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
        loaded = load_model(shared.value, framework)
        named = getattr(loaded, "feature_names_in_", None) is not None
        for batch in batches:
            out = batch.copy()
            values = loaded.predict(batch[features] if named else batch[features].to_numpy())
            out[PREDICTION] = values if prediction_type != "string" else [str(v) for v in values]
            yield out

    return frame.mapInPandas(predict, schema=schema)


def v2_request_frame(spark, request: dict, names: list[str] | None):
    """An Open Inference Protocol (V2) request as a DataFrame (the smoke example): one 2-D input (rows of
    features, named ``names``: the model's feature names, when it has them), or one named input per column (what
    MLflow's input examples become, each of shape [rows] or [rows, 1])."""
    import pandas as pd

    try:
        inputs = request["inputs"]
        first = inputs[0]
        if len(inputs) == 1 and len(first["shape"]) == 2 and first["shape"][1] > 1:
            rows, width = first["shape"]
            data = first["data"]
            columns = names or [f"f{i}" for i in range(width)]
            frame = pd.DataFrame([data[i * width:(i + 1) * width] for i in range(rows)], columns=columns)
        else:
            frame = pd.DataFrame({str(i["name"]): list(i["data"]) for i in inputs})
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise TargetError("examples/request.json is not a V2 inference request with a 2-D input or one named "
                          "input per column") from exc
    return spark.createDataFrame(frame)


def v2_expected(response: dict) -> list:
    try:
        return list(response["outputs"][0]["data"])
    except (KeyError, IndexError, TypeError) as exc:
        raise TargetError("examples/response.json is not a V2 inference response") from exc
