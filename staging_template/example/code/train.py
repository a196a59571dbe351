"""Train the example iris classifier and write the staged repo's generated files.

Run with the serving environment's Python so the model is pickled by the same scikit-learn that serves it:
    .venv-mlserver/bin/python staging_template/example/code/train.py
Writes executable/model.joblib, data/iris.csv, examples/request.json and examples/response.json.
Uses only data that scikit-learn ships (no downloads); the fit is deterministic.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    iris = load_iris()
    data_dir = REPO / "data"
    data_dir.mkdir(exist_ok=True)
    with (data_dir / "iris.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*iris.feature_names, "target"])
        for row, target in zip(iris.data.tolist(), iris.target.tolist(), strict=True):
            writer.writerow([*row, target])

    model = LogisticRegression(max_iter=1000, random_state=0).fit(iris.data, iris.target)
    exe_dir = REPO / "executable"
    exe_dir.mkdir(exist_ok=True)
    joblib.dump(model, exe_dir / "model.joblib")

    samples = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    predictions = model.predict(samples).tolist()
    examples = REPO / "examples"
    examples.mkdir(exist_ok=True)
    request = {"inputs": [{"name": "measurements", "shape": [len(samples), 4], "datatype": "FP64",
                           "data": [v for row in samples for v in row]}]}
    response = {"outputs": [{"name": "predict", "data": predictions}]}
    (examples / "request.json").write_text(json.dumps(request, indent=2) + "\n")
    (examples / "response.json").write_text(json.dumps(response, indent=2) + "\n")
    print(f"trained iris-classifier: predictions for the examples {predictions}")


if __name__ == "__main__":
    main()
