"""Read and write MLeap bundle zips in MLeap's JSON serialization format, and score them.

The layout is what MLeap writes: ``bundle.json`` plus ``root/model.json`` and ``root/node.json``, with one
``root/<node>.node/{model.json,node.json}`` folder per pipeline stage. Only the ops needed to score a real
linear-regression pipeline are implemented (``pipeline``, ``vector_assembler``, ``standard_scaler``,
``linear_regression``); any other op refuses to load, as a real server lacking the op would.
"""

from __future__ import annotations

import json
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MLEAP_VERSION = "0.23.0"
SUPPORTED_OPS = ("pipeline", "vector_assembler", "standard_scaler", "linear_regression")


class BundleError(Exception):
    """The bundle cannot be loaded or cannot score the frame (the server answers 500)."""


def double_tensor(values: Sequence[float]) -> dict:
    """An attribute holding a 1-d double tensor, as MLeap's JSON format writes it."""
    return {"double": [float(v) for v in values], "shape": {"dimensions": [{"size": len(values), "name": ""}]},
            "type": "tensor"}


# ---------------------------------------------------------------------------------------------- transformers

def _as_vector(value: Any, column: str) -> list[float]:
    if isinstance(value, dict) and "values" in value:  # MLeap dense tensor JSON
        value = value["values"]
    if isinstance(value, bool) or value is None:
        raise BundleError(f"column {column!r}: expected a number or a tensor, got {value!r}")
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    raise BundleError(f"column {column!r}: expected a number or a tensor, got {value!r}")


def tensor_type(size: int) -> dict:
    return {"type": "tensor", "base": "double", "dimensions": [size]}


def tensor_value(values: list[float]) -> dict:
    return {"values": values, "dimensions": [len(values)]}


@dataclass(frozen=True)
class Stage:
    """One scoring node: its op, input and output column names and the op's parameters."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict

    def input_types(self) -> list[Any]:
        if self.op == "vector_assembler":
            shapes = self.params.get("input_shapes") or [{"base": "scalar"}] * len(self.inputs)
            return ["double" if s.get("base") == "scalar" else
                    tensor_type(s.get("tensorShape", {}).get("dimensions", [{"size": -1}])[0]["size"])
                    for s in shapes]
        return [tensor_type(self.width())]

    def output_types(self) -> list[Any]:
        if self.op == "linear_regression":
            return [{"type": "basic", "base": "double", "isNullable": False}]
        return [tensor_type(self.width())]

    def width(self) -> int:
        if self.op == "linear_regression":
            return len(self.params["coefficients"])
        if self.op == "standard_scaler":
            return len(self.params.get("mean") or self.params.get("std") or [])
        shapes = self.params.get("input_shapes") or [{"base": "scalar"}] * len(self.inputs)
        return sum(1 if s.get("base") == "scalar" else
                   s.get("tensorShape", {}).get("dimensions", [{"size": 1}])[0]["size"] for s in shapes)

    def apply(self, row: dict[str, Any]) -> Any:
        for col in self.inputs:
            if col not in row:
                raise BundleError(f"{self.name}: input column {col!r} is not in the frame")
        if self.op == "vector_assembler":
            out: list[float] = []
            for col in self.inputs:
                out.extend(_as_vector(row[col], col))
            return tensor_value(out)
        vec = _as_vector(row[self.inputs[0]], self.inputs[0])
        if self.op == "standard_scaler":
            mean, std = self.params.get("mean"), self.params.get("std")
            size = len(mean or std or vec)
            if len(vec) != size:
                raise BundleError(f"{self.name}: expected a tensor of size {size}, got {len(vec)}")
            if mean:
                vec = [v - m for v, m in zip(vec, mean, strict=True)]
            if std:
                vec = [v / s if s else 0.0 for v, s in zip(vec, std, strict=True)]
            return tensor_value(vec)
        coefficients = self.params["coefficients"]
        if len(vec) != len(coefficients):
            raise BundleError(f"{self.name}: features has size {len(vec)}, the model has {len(coefficients)} "
                              "coefficients")
        return sum(c * v for c, v in zip(coefficients, vec, strict=True)) + self.params["intercept"]


@dataclass(frozen=True)
class LoadedBundle:
    """A loaded bundle: its bundle.json metadata and its stages in execution order."""

    uid: str
    name: str
    version: str
    stages: tuple[Stage, ...]

    def schema(self) -> dict:
        """Inputs the pipeline consumes (not produced inside it), then every output, like MLeap's root schema."""
        fields: list[dict] = []
        produced: set[str] = set()
        seen: set[str] = set()
        for stage in self.stages:
            for col, typ in zip(stage.inputs, stage.input_types(), strict=False):
                if col not in produced and col not in seen:
                    fields.append({"name": col, "type": typ})
                    seen.add(col)
            for col, typ in zip(stage.outputs, stage.output_types(), strict=False):
                produced.add(col)
                if col not in seen:
                    fields.append({"name": col, "type": typ})
                    seen.add(col)
        return {"fields": fields}

    def transform(self, frame: Any) -> dict:
        """Score a LeapFrame JSON: the input columns plus one column per stage output."""
        if not isinstance(frame, dict) or not isinstance(frame.get("schema"), dict) \
                or not isinstance(frame["schema"].get("fields"), list) or not isinstance(frame.get("rows"), list):
            raise BundleError("a LeapFrame needs {\"schema\": {\"fields\": [...]}, \"rows\": [...]}")
        fields = list(frame["schema"]["fields"])
        names = [f.get("name") for f in fields]
        out_rows = []
        for raw in frame["rows"]:
            if not isinstance(raw, list) or len(raw) != len(names):
                raise BundleError(f"row {raw!r} does not have {len(names)} values")
            row = dict(zip(names, raw, strict=True))
            values = list(raw)
            for stage in self.stages:
                row[stage.outputs[0]] = result = stage.apply(row)
                values.append(result)
            out_rows.append(values)
        for stage in self.stages:
            fields.append({"name": stage.outputs[0], "type": stage.output_types()[0]})
        return {"schema": {"fields": fields}, "rows": out_rows}


# ---------------------------------------------------------------------------------------------- reading

def _read_json(zf: zipfile.ZipFile, name: str) -> dict:
    try:
        return json.loads(zf.read(name))
    except KeyError as exc:
        raise BundleError(f"bundle has no {name}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{name} is not JSON: {exc}") from exc


def _attr(model: dict, name: str, kind: str, *, required: bool = True) -> Any:
    attrs = model.get("attributes") or {}
    if name not in attrs:
        if required:
            raise BundleError(f"op {model.get('op')!r} lacks attribute {name!r}")
        return None
    value = attrs[name].get(kind)
    if value is None:
        raise BundleError(f"attribute {name!r} of op {model.get('op')!r} has no {kind!r} value")
    return value


def _stage(zf: zipfile.ZipFile, prefix: str) -> list[Stage]:
    model = _read_json(zf, f"{prefix}/model.json")
    node = _read_json(zf, f"{prefix}/node.json")
    op = model.get("op")
    if op == "pipeline":
        stages: list[Stage] = []
        for child in _attr(model, "nodes", "string"):
            stages.extend(_stage(zf, f"{prefix}/{child}.node"))
        return stages
    if op not in SUPPORTED_OPS:
        raise BundleError(f"unsupported op {op!r} in {prefix} (this server supports {', '.join(SUPPORTED_OPS)})")
    shape = node.get("shape") or {}
    ports_in = {s["port"]: s["name"] for s in shape.get("inputs", [])}
    ports_out = {s["port"]: s["name"] for s in shape.get("outputs", [])}
    name = node.get("name", prefix)
    if op == "vector_assembler":
        inputs = tuple(ports_in[f"input{i}"] for i in range(len(ports_in)) if f"input{i}" in ports_in)
        if not inputs or len(inputs) != len(ports_in):
            raise BundleError(f"{name}: vector_assembler inputs must be ports input0..inputN")
        shapes = _attr(model, "input_shapes", "data_shape", required=False)
        return [Stage(name, op, inputs, (ports_out["output"],), {"input_shapes": shapes})]
    if op == "standard_scaler":
        mean = _attr(model, "mean", "double", required=False)
        std = _attr(model, "std", "double", required=False)
        return [Stage(name, op, (ports_in["input"],), (ports_out["output"],), {"mean": mean, "std": std})]
    try:
        inputs, outputs = (ports_in["features"],), (ports_out["prediction"],)
    except KeyError as exc:
        raise BundleError(f"{name}: linear_regression needs ports 'features' and 'prediction'") from exc
    coefficients = [float(c) for c in _attr(model, "coefficients", "double")]
    intercept = float(_attr(model, "intercept", "double"))
    return [Stage(name, op, inputs, outputs, {"coefficients": coefficients, "intercept": intercept})]


def load_bundle(path: str | Path) -> LoadedBundle:
    """Load a JSON-format bundle zip; BundleError when missing, malformed or using an unsupported op."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            meta = _read_json(zf, "bundle.json")
            if meta.get("format", "json") != "json":
                raise BundleError(f"bundle format {meta.get('format')!r} is not supported (only json)")
            stages = _stage(zf, "root")
    except zipfile.BadZipFile as exc:
        raise BundleError(f"{path} is not a zip file") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"{path} is malformed: {exc!r}") from exc
    if not stages:
        raise BundleError(f"{path} has an empty pipeline")
    return LoadedBundle(uid=str(meta.get("uid", "")), name=str(meta.get("name", "")),
                        version=str(meta.get("version", "")), stages=tuple(stages))


# ---------------------------------------------------------------------------------------------- writing

def _node(name: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> dict:
    return {"name": name, "shape": {"inputs": [{"name": n, "port": p} for n, p in inputs],
                                    "outputs": [{"name": n, "port": p} for n, p in outputs]}}


def write_linear_regression_bundle(path: str | Path, feature_names: Sequence[str], coefficients: Sequence[float],
                                   intercept: float, *, scaler_mean: Sequence[float] | None = None,
                                   scaler_std: Sequence[float] | None = None,
                                   prediction_col: str = "prediction") -> Path:
    """Write a pipeline bundle zip: vector_assembler(features) [-> standard_scaler] -> linear_regression.

    The files and attribute encodings follow what MLeap's JSON serializer writes, so the same zip can be
    loaded by a real MLeap runtime. Returns the path of the zip.
    """
    if len(feature_names) != len(coefficients):
        raise ValueError("one coefficient per feature is needed")
    path = Path(path)
    # ids derive from the content so the same call writes the same bytes (publishing twice is then a no-op)
    seed = json.dumps([list(feature_names), list(coefficients), intercept, scaler_mean, scaler_std, prediction_col],
                      default=list)
    uid = uuid.uuid5(uuid.NAMESPACE_URL, "mleap-bundle:" + seed)
    suffix = uid.hex[:12]
    assembler, scaler, lr = f"vecAssembler_{suffix}", f"stdScal_{suffix}", f"linReg_{suffix}"
    pipeline = f"pipeline_{suffix}"
    files: dict[str, dict] = {
        "bundle.json": {"uid": str(uid), "name": pipeline, "format": "json", "version": MLEAP_VERSION,
                        "timestamp": "2020-01-01T00:00:00.000"},
        f"root/{assembler}.node/model.json": {"op": "vector_assembler", "attributes": {"input_shapes": {
            "data_shape": [{"base": "scalar", "isNullable": False} for _ in feature_names], "type": "list"}}},
        f"root/{assembler}.node/node.json": _node(assembler, [(n, f"input{i}") for i, n in enumerate(feature_names)],
                                                  [("features", "output")]),
    }
    nodes = [assembler]
    lr_input = "features"
    if scaler_mean is not None or scaler_std is not None:
        attrs = {}
        if scaler_mean is not None:
            attrs["mean"] = double_tensor(scaler_mean)
        if scaler_std is not None:
            attrs["std"] = double_tensor(scaler_std)
        files[f"root/{scaler}.node/model.json"] = {"op": "standard_scaler", "attributes": attrs}
        files[f"root/{scaler}.node/node.json"] = _node(scaler, [("features", "input")],
                                                       [("scaled_features", "output")])
        nodes.append(scaler)
        lr_input = "scaled_features"
    files[f"root/{lr}.node/model.json"] = {"op": "linear_regression", "attributes": {
        "coefficients": double_tensor(coefficients), "intercept": {"double": float(intercept)}}}
    files[f"root/{lr}.node/node.json"] = _node(lr, [(lr_input, "features")], [(prediction_col, "prediction")])
    nodes.append(lr)
    files["root/model.json"] = {"op": "pipeline", "attributes": {"nodes": {"type": "list", "string": nodes}}}
    files["root/node.json"] = _node(pipeline, [], [])
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, json.dumps(content, indent=2))
    return path


def write_bundle_with_op(path: str | Path, op: str) -> Path:
    """A single-node bundle using ``op`` as its root (used to show that unknown ops fail to load)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("bundle.json", json.dumps({"uid": str(uuid.uuid4()), "name": f"{op}_x", "format": "json",
                                               "version": MLEAP_VERSION, "timestamp": "2020-01-01T00:00:00.000"}))
        zf.writestr("root/model.json", json.dumps({"op": op, "attributes": {}}))
        zf.writestr("root/node.json", json.dumps(_node(f"{op}_x", [("a", "input")], [("b", "output")])))
    return path
