"""The MLeap stand-in answers like MLeap classic serving (MleapResource.scala, reference §3.1), over raw HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from emulators.mleap import BundleError, load_bundle, write_linear_regression_bundle
from emulators.mleap.bundle import write_bundle_with_op
from tests.targets.conftest import leapframe


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return write_linear_regression_bundle(tmp_path / "lr.zip", ["a", "b"], [2.0, 3.0], 1.0,
                                          scaler_mean=[1.0, 1.0], scaler_std=[2.0, 4.0])


def test_bundle_has_mleap_layout_and_json_encodings(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        names = set(zf.namelist())
        meta = json.loads(zf.read("bundle.json"))
        root = json.loads(zf.read("root/model.json"))
        nodes = root["attributes"]["nodes"]["string"]
        lr_model = json.loads(zf.read(f"root/{nodes[-1]}.node/model.json"))
        lr_node = json.loads(zf.read(f"root/{nodes[-1]}.node/node.json"))
        va_node = json.loads(zf.read(f"root/{nodes[0]}.node/node.json"))
    assert {"bundle.json", "root/model.json", "root/node.json"} <= names
    assert meta["format"] == "json" and meta["name"].startswith("pipeline_") and meta["uid"]
    assert root["op"] == "pipeline" and root["attributes"]["nodes"]["type"] == "list"
    assert [n.split("_")[0] for n in nodes] == ["vecAssembler", "stdScal", "linReg"]
    assert lr_model == {"op": "linear_regression", "attributes": {
        "coefficients": {"double": [2.0, 3.0], "shape": {"dimensions": [{"size": 2, "name": ""}]}, "type": "tensor"},
        "intercept": {"double": 1.0}}}
    assert lr_node["shape"] == {"inputs": [{"name": "scaled_features", "port": "features"}],
                                "outputs": [{"name": "prediction", "port": "prediction"}]}
    assert [s["port"] for s in va_node["shape"]["inputs"]] == ["input0", "input1"]


def test_bundle_writer_is_deterministic(tmp_path: Path) -> None:
    a = write_linear_regression_bundle(tmp_path / "a.zip", ["x"], [1.5], 0.5).read_bytes()
    b = write_linear_regression_bundle(tmp_path / "b.zip", ["x"], [1.5], 0.5).read_bytes()
    assert a == b


def test_pipeline_scores_scaled_linear_regression(bundle: Path) -> None:
    frame = load_bundle(bundle).transform({"schema": {"fields": [{"name": "a", "type": "double"},
                                                                 {"name": "b", "type": "double"}]},
                                           "rows": [[3.0, 5.0], [1.0, 1.0]]})
    # scaled: ((3-1)/2, (5-1)/4) = (1, 1) -> 2*1 + 3*1 + 1 = 6; (0, 0) -> 1
    assert [row[-1] for row in frame["rows"]] == [6.0, 1.0]
    assert frame["rows"][0][2] == {"values": [3.0, 5.0], "dimensions": [2]}
    assert [f["name"] for f in frame["schema"]["fields"]] == ["a", "b", "features", "scaled_features", "prediction"]


@pytest.mark.parametrize("op", ["xgboost_regression", "random_forest_regression"])
def test_unsupported_op_refuses_to_load(tmp_path: Path, op: str) -> None:
    with pytest.raises(BundleError, match=f"unsupported op '{op}'"):
        load_bundle(write_bundle_with_op(tmp_path / "x.zip", op))


def test_model_routes(mleap_server, bundle: Path) -> None:
    url = mleap_server.url
    assert requests.get(f"{url}/model").status_code == 500  # nothing loaded yet
    transform = requests.post(f"{url}/transform", json=leapframe([[1.0, 2.0]]))
    assert transform.status_code == 500 and "no transformer loaded" in transform.text

    put = requests.put(f"{url}/model", json={"path": str(bundle)})
    assert (put.status_code, put.json()) == (200, {})
    schema = requests.get(f"{url}/model").json()
    assert [(f["name"], f["type"]) for f in schema["fields"]] == [
        ("a", "double"), ("b", "double"),
        ("features", {"type": "tensor", "base": "double", "dimensions": [2]}),
        ("scaled_features", {"type": "tensor", "base": "double", "dimensions": [2]}),
        ("prediction", {"type": "basic", "base": "double", "isNullable": False})]

    frame = {"schema": {"fields": [{"name": "a", "type": "double"}, {"name": "b", "type": "double"}]},
             "rows": [[3.0, 5.0]]}
    scored = requests.post(f"{url}/transform", json=frame, headers={"Accept": "application/json"})
    assert scored.status_code == 200 and scored.headers["Content-Type"] == "application/json"
    assert scored.json()["rows"][0][-1] == 6.0

    delete = requests.delete(f"{url}/model")
    assert (delete.status_code, delete.json()) == (200, {})
    assert requests.get(f"{url}/model").status_code == 500


def test_load_failures_are_500_and_keep_the_old_model(mleap_server, bundle: Path, tmp_path: Path) -> None:
    url = mleap_server.url
    assert requests.put(f"{url}/model", json={"path": str(bundle)}).status_code == 200
    assert requests.put(f"{url}/model", json={"path": "/tmp/unknown.json.zip"}).status_code == 500
    assert requests.put(f"{url}/model", json={}).status_code == 500
    bad = write_bundle_with_op(tmp_path / "bad.zip", "xgboost_regression")
    assert requests.put(f"{url}/model", json={"path": str(bad)}).status_code == 500
    assert requests.get(f"{url}/model").status_code == 200
    assert mleap_server.loaded_path == str(bundle)


def test_bad_frames_are_500(mleap_server, bundle: Path) -> None:
    url = mleap_server.url
    requests.put(f"{url}/model", json={"path": str(bundle)})
    missing = requests.post(f"{url}/transform", json={"schema": {"fields": [{"name": "a", "type": "double"}]},
                                                      "rows": [[1.0]]})
    assert missing.status_code == 500 and "'b'" in missing.text
    assert requests.post(f"{url}/transform", data=b"not json").status_code == 400


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("POST", "/model", "PUT, DELETE, GET"), ("PATCH", "/model", "PUT, DELETE, GET"),
    ("GET", "/transform", "POST"), ("PUT", "/transform", "POST")])
def test_wrong_method_is_405_with_akka_text(mleap_server, method: str, path: str, allowed: str) -> None:
    resp = requests.request(method, f"{mleap_server.url}{path}")
    assert resp.status_code == 405
    assert resp.text == f"HTTP method not allowed, supported methods: {allowed}"


def test_options_and_unknown_path(mleap_server) -> None:
    for path in ("/model", "/transform"):
        resp = requests.options(f"{mleap_server.url}{path}")
        assert (resp.status_code, resp.text) == (200, "ok")
    assert requests.get(f"{mleap_server.url}/models").status_code == 404


def test_command_line_prints_ready_line_and_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "emulators.mleap", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("mleap serving emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert requests.options(f"{url}/model", timeout=5).text == "ok"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
