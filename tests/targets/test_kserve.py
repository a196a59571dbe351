"""KServeTarget: the rendered InferenceService, and kubectl driven end to end through the fake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from governance.errors import ConfigError, TargetError
from governance.targets.kserve import KServeTarget, isvc_name, label_value, storage_uri
from tests.targets.conftest import as_remote as remote
from tests.targets.conftest import make_release

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
S3 = "s3://models-bucket/registry/price-model/1.2"
V2_REQUEST = {"inputs": [{"name": "predict", "shape": [1, 2], "datatype": "FP64", "data": [[1.0, 2.0]]}]}
URI = "kserve://ml-prod?context=prod-east&runtime=kserve-mlserver&service_account=models-sa&protocol=v2"


def target(uri: str = URI, **kwargs) -> KServeTarget:
    kwargs.setdefault("ready_timeout", 5)
    kwargs.setdefault("poll_interval", 0.01)
    return KServeTarget(uri, retries=2, backoff=0.01, **kwargs)


@pytest.fixture
def release(tmp_path: Path):
    return remote(make_release(tmp_path, exe_name="model.joblib", framework="SKLearn"), S3)


def test_manifest_structure(release) -> None:
    doc = yaml.safe_load(target().render_manifest(release))
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    assert doc["metadata"]["name"] == "price-model" and DNS_1035.match(doc["metadata"]["name"])
    assert doc["metadata"]["namespace"] == "ml-prod"
    predictor = doc["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "models-sa"
    assert predictor["model"] == {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2",
                                  "runtime": "kserve-mlserver", "storageUri": f"{S3}/executable"}
    labels, annotations = doc["metadata"]["labels"], doc["metadata"]["annotations"]
    assert labels["modelgov.io/model"] == "price-model" and labels["modelgov.io/version"] == "1.2"
    assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in labels.values())
    assert annotations["modelgov.io/registry-location"] == S3
    assert annotations["modelgov.io/serialized-object"] == f"{S3}/executable/model.joblib"
    exe = next(f for f in release.registered.manifest.files if f.path == "executable/model.joblib")
    assert annotations["modelgov.io/executable-sha256"] == exe.sha256


def test_manifest_defaults_omit_optional_fields(tmp_path: Path) -> None:
    rel = remote(make_release(tmp_path), S3)
    model = yaml.safe_load(target("kserve://ns1?context=c").render_manifest(rel))["spec"]["predictor"]
    assert "serviceAccountName" not in model
    assert model["model"]["modelFormat"] == {"name": "sklearn"} and "runtime" not in model["model"]
    assert model["model"]["protocolVersion"] == "v2"


def test_mlflow_format_model_is_served_as_mlflow_from_its_folder(tmp_path: Path) -> None:
    rel = remote(make_release(tmp_path, exe_name="MLmodel", executable=b"flavors: {sklearn: {}}\n",
                              framework="sklearn"), S3)
    model = yaml.safe_load(target().render_manifest(rel))["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["storageUri"] == f"{S3}/executable"


def test_hostile_metadata_cannot_break_the_yaml(tmp_path: Path) -> None:
    rel = remote(make_release(tmp_path), S3)
    meta = rel.metadata.__class__(**{**rel.metadata.to_dict(), "owner": "x\n  evil: \"1\"\n# {{ }}",
                                     "training_data": (), "extra": {}})
    rel = rel.__class__(metadata=meta, registered=rel.registered, registry=rel.registry)
    doc = yaml.safe_load(target().render_manifest(rel))
    assert doc["metadata"]["annotations"]["modelgov.io/model-owner"] == meta.owner
    assert "evil" not in doc["metadata"]["annotations"]


@pytest.mark.parametrize(("location", "exe", "expected"), [
    ("s3://b/p/m/1.2", "executable/model.joblib", "s3://b/p/m/1.2/executable"),
    ("s3a://b/p/m/1.2", "executable/model.joblib", "s3://b/p/m/1.2/executable"),
    ("hdfs://nn1:8020/user/ml/registry/m/1.2", "executable/m.pkl", "hdfs://user/ml/registry/m/1.2/executable"),
    ("webhdfs://nn1:9870/user/ml/m/1", "executable/m.pkl", "webhdfs://user/ml/m/1/executable"),
    ("https://host/models/m/1", "executable/a/m.pkl", "https://host/models/m/1/executable/a"),
])
def test_storage_uri_rules(location: str, exe: str, expected: str) -> None:
    assert storage_uri(location, exe) == expected


def test_file_registry_cannot_feed_a_cluster(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cluster cannot read"):
        target().render_manifest(make_release(tmp_path))


@pytest.mark.parametrize("name", ["price-model", "a.b_c", "9lives", "x" * 64, "Price Model"])
def test_isvc_names_are_dns_labels_one_per_model(name: str) -> None:
    got = isvc_name(name)
    assert DNS_1035.match(got) and len(got) <= 63
    assert isvc_name(name) != isvc_name(name + "-other")


def test_label_values_are_safe() -> None:
    for raw in ("price-model", "1.2", "s3://bucket/x y", "-a-", "x" * 80, "é"):
        value = label_value(raw)
        assert LABEL_VALUE.match(value) and len(value) <= 63


def test_deploy_end_to_end(fake_kubectl, v2_stub, release) -> None:
    fake_kubectl.set(ready_after=3, url=f"http://127.0.0.1:{v2_stub.server_port}")
    expected = {"outputs": [{"name": "predict", "data": [9.0]}]}
    rel = release.__class__(metadata=release.metadata, registered=release.registered, registry=release.registry,
                            example_request=V2_REQUEST, example_response=expected)
    result = target().deploy(rel)

    calls = fake_kubectl.calls()
    assert calls[0]["argv"][4:] == ["get", "inferenceservice", "price-model", "-o", "json"]  # what was there
    assert calls[1]["argv"] == ["--context", "prod-east", "-n", "ml-prod", "apply", "-f", "-"]
    assert yaml.safe_load(calls[1]["stdin"])["metadata"]["name"] == "price-model"
    gets = [c["argv"] for c in calls[2:]]
    assert len(gets) == 3  # polled until the third get reported Ready
    assert all(a == ["--context", "prod-east", "-n", "ml-prod", "get", "inferenceservice", "price-model",
                     "-o", "json"] for a in gets)
    assert not any("secret" in " ".join(c["argv"]).lower() or "token" in " ".join(c["argv"]).lower()
                   for c in calls)

    assert result.target_kind == "kserve" and result.host_detail == "prod-east/ml-prod" == target().host_detail
    assert result.endpoint_url == f"http://127.0.0.1:{v2_stub.server_port}/v2/models/price-model/infer"
    assert result.serialized_object == f"{S3}/executable/model.joblib"
    assert (result.loaded_name, result.loaded_version) == ("price-model", "v1")  # as the server reports
    assert result.smoke is not None and result.smoke.matched_expected is True
    assert v2_stub.requests == [("/v2/models/price-model/infer", V2_REQUEST)]
    assert result.details["apply"] == "inferenceservice.serving.kserve.io/price-model created"
    assert result.details["storage_uri"] == f"{S3}/executable"

    kserve = target()
    assert kserve.status("price-model", "1.2") == "deployed"
    assert kserve.verify(rel) == []
    assert kserve.deploy(rel).details["apply"].endswith("unchanged")


def test_smoke_skipped_when_the_url_is_unreachable(fake_kubectl, release) -> None:
    rel = release.__class__(metadata=release.metadata, registered=release.registered, registry=release.registry,
                            example_request=V2_REQUEST)
    fake_kubectl.set(url="http://127.0.0.1:9")  # discard port: nothing listens
    result = target().deploy(rel)
    assert result.smoke is None and result.details["smoke"].startswith("skipped: http://127.0.0.1:9 is not reachable")
    assert (result.loaded_name, result.loaded_version) == ("price-model", "1.2")  # from the cluster's object


def test_never_ready_times_out_naming_the_target(fake_kubectl, release) -> None:
    fake_kubectl.set(mode="never")
    with pytest.raises(TargetError, match=r"kserve prod-east/ml-prod: inferenceservice price-model not Ready "
                                          r"after 0\.2s \(Ready=False reason=RevisionMissing"):
        target(ready_timeout=0.2, poll_interval=0.05).deploy(release)
    assert target().status("price-model", "1.2") == "stopped"  # the attempt was taken back: nothing was there
    assert ["delete", "inferenceservice", "price-model"] in [c["argv"][4:] for c in fake_kubectl.calls()]


def test_failed_model_load_fails_fast(fake_kubectl, release) -> None:
    fake_kubectl.set(mode="fail")
    with pytest.raises(TargetError, match="failed to load the model: ModelLoadFailed: no model.joblib"):
        target(ready_timeout=60).deploy(release)
    # what was there, apply, one get (no waiting), then the attempt is taken back
    assert [c["argv"][4] for c in fake_kubectl.calls()] == ["get", "apply", "get", "delete"]


def test_transient_api_errors_are_retried(fake_kubectl, release) -> None:
    fake_kubectl.set(fail_first=2)
    target().deploy(release)
    assert [c["argv"][4] for c in fake_kubectl.calls()][:4] == ["get", "get", "get", "apply"]


def test_persistent_api_errors_give_up_naming_the_target(fake_kubectl, release) -> None:
    fake_kubectl.set(fail_first=100)
    with pytest.raises(TargetError, match=r"kserve prod-east/ml-prod: kubectl get inferenceservice price-model failed "
                                          r"after 3 attempts: "
                                          r"Unable to connect"):
        target().deploy(release)


def test_unknown_context_is_reported(fake_kubectl, release) -> None:
    fake_kubectl.set(contexts="prod-west")
    with pytest.raises(TargetError, match=r'kserve prod-east/ml-prod: .*context "prod-east" does not exist'):
        target().deploy(release)
    assert len(fake_kubectl.calls()) == 1  # a refusal is not retried


def test_undeploy_and_status(fake_kubectl, release) -> None:
    kserve = target()
    assert kserve.status("price-model", "1.2") == "stopped"
    kserve.deploy(release)
    kserve.undeploy("price-model", "1.2")
    assert ["delete", "inferenceservice", "price-model"] in [c["argv"][4:] for c in fake_kubectl.calls()]
    assert kserve.status("price-model", "1.2") == "stopped"
    kserve.undeploy("price-model", "1.2")  # NotFound is fine: already gone
    assert kserve.verify(release) == ["kserve prod-east/ml-prod: inferenceservice price-model does not exist"]


def test_fake_kubectl_speaks_like_the_real_one(fake_kubectl) -> None:
    import subprocess

    from governance.targets.kserve import kubectl_path

    proc = subprocess.run([kubectl_path(), "--context", "c", "-n", "ns", "get", "inferenceservice", "x", "-o", "json"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'Error from server (NotFound): inferenceservices.serving.kserve.io "x" not found'


def test_missing_kubectl_is_a_target_error(monkeypatch, tmp_path: Path, release) -> None:
    monkeypatch.setenv("MODELGOV_KUBECTL", str(tmp_path / "no-kubectl"))
    with pytest.raises(TargetError, match="kubectl not found"):
        target().deploy(release)


@pytest.mark.parametrize("uri", ["kserve://ns", "kserve://NS?context=c", "kserve://ns?context=c&x=1",
                                 "kserve://ns?context=c&protocol=v3", "kserve://ns?context=c&ready_timeout=soon"])
def test_bad_uris_are_config_errors(uri: str) -> None:
    with pytest.raises(ConfigError):
        KServeTarget(uri)


def test_canary_serves_both_until_rollback_by_undeploy(fake_kubectl, tmp_path: Path) -> None:
    v1 = remote(make_release(tmp_path, version="1.0", exe_name="model.joblib"), "s3://b/r/price-model/1.0")
    v2 = remote(make_release(tmp_path, version="2.0", exe_name="model.joblib"), "s3://b/r/price-model/2.0")
    target().deploy(v1)
    canary = target(URI + "&canary_percent=25")
    canary.deploy(v2)
    assert {m.version: m.traffic_percent for m in canary.served("price-model")} == {"1.0": 75, "2.0": 25}
    [new] = [m for m in canary.served() if m.version == "2.0"]
    assert new.target_version.startswith("price-model/price-model-predictor-")
    canary.undeploy("price-model", new.target_version)  # as `modelgov undeploy` names it
    assert {m.version: m.traffic_percent for m in target().served("price-model")} == {"1.0": 100}
    assert target().status("price-model", "2.0") == "stopped"


def test_canary_percent_must_be_a_share(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="canary_percent must be a whole number from 1 to 99"):
        KServeTarget(URI + "&canary_percent=100")
    assert KServeTarget(URI).ready_timeout == 1800  # allows large models by default


def test_a_failed_compensation_is_reported_plainly(fake_kubectl, tmp_path: Path) -> None:
    from governance.errors import CompensationError

    v1 = remote(make_release(tmp_path, version="1.0", exe_name="model.joblib"), "s3://b/r/price-model/1.0")
    v2 = remote(make_release(tmp_path, version="2.0", exe_name="model.joblib"), "s3://b/r/price-model/2.0")
    target().deploy(v1)
    fake_kubectl.set(fail_storage="/r/price-model/")  # the new revision fails, and so does re-applying the old
    with pytest.raises(CompensationError, match=r"failed to load the model: .*; putting inferenceservice "
                                                r"price-model in kserve prod-east/ml-prod back failed: ") as info:
        target().deploy(v2)
    assert isinstance(info.value.cause, TargetError)
    # what serves is still the rolled-out v1 revision: the record can say so
    assert {m.version: m.traffic_percent for m in target().served("price-model")} == {"1.0": 100}


def test_smoke_against_an_untrusted_certificate_fails_and_is_never_skipped(fake_kubectl, release, tmp_path,
                                                                          monkeypatch) -> None:
    """requests' SSLError is a ConnectionError: it must not read as "not reachable from here" (issue 25)."""
    from emulators.atlas import AtlasEmulator
    from testbed.certs import TestCa

    monkeypatch.delenv("MODELGOV_CA_BUNDLE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    rel = release.__class__(metadata=release.metadata, registered=release.registered, registry=release.registry,
                            example_request=V2_REQUEST)
    with AtlasEmulator(tls=TestCa(tmp_path / "ca", "other").server("kserve").server_context()) as https:
        fake_kubectl.set(url=https.url)
        with pytest.raises(TargetError, match=rf"the certificate of 127.0.0.1:{https.port} is not trusted"):
            target().deploy(rel)
