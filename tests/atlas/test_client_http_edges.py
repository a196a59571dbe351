"""HTTP edge cases of the Atlas client (responses): auth shapes, retries, typed errors, pagination."""

import pytest
import requests
import responses

from governance.atlas.client import AtlasClient, AtlasSettings
from governance.errors import AtlasAuthError, AtlasConflict, AtlasError, AtlasNotFound, ConfigError

URL = "http://atlas.test:21000"
API = f"{URL}/api/atlas"


@pytest.fixture
def client():
    return AtlasClient(AtlasSettings(url=URL, username="admin", password="s3cret", retries=2,
                                     timeout=(0.5, 0.5)))


@responses.activate
def test_html_401_reads_as_bad_credentials(client):
    responses.get(f"{API}/v2/types/typedef/name/DataSet", status=401, content_type="text/html",
                  body="<html><head><title>Error 401 Unauthorized</title></head><body>...</body></html>")
    with pytest.raises(AtlasAuthError, match="rejected the credentials") as info:
        client.get_typedef("DataSet")
    assert info.value.status == 401
    assert "s3cret" not in str(info.value)


@responses.activate
def test_basic_auth_is_sent_preemptively(client):
    responses.get(f"{API}/admin/status", json={"Status": "ACTIVE"})
    assert client.status() == "ACTIVE"
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_bearer_token():
    responses.get(f"{API}/admin/status", json={"Status": "ACTIVE"})
    AtlasClient(AtlasSettings(url=URL, token="tok-123")).status()
    assert responses.calls[0].request.headers["Authorization"] == "Bearer tok-123"


@responses.activate
def test_5xx_is_retried_then_succeeds(client):
    responses.post(f"{API}/v2/entity/bulk", status=503, body="busy")
    responses.post(f"{API}/v2/entity/bulk", json={"guidAssignments": {"-1": "g1"},
                                                  "mutatedEntities": {"CREATE": [{"guid": "g1"}]}})
    result = client.upsert_entities([{"typeName": "t", "guid": "-1", "attributes": {}}])
    assert result.guid_assignments == {"-1": "g1"} and result.created == [{"guid": "g1"}]
    assert len(responses.calls) == 2


@responses.activate
def test_5xx_exhausts_bounded_retries(client):
    responses.post(f"{API}/v2/entity/bulk", status=500, body="There was an error processing your request.")
    with pytest.raises(AtlasError, match="HTTP 500"):
        client.upsert_entities([])
    assert len(responses.calls) == 3  # first try + 2 retries


@responses.activate
def test_4xx_is_not_retried_and_carries_error_code(client):
    responses.post(f"{API}/v2/entity/bulk", status=404, json={
        "errorCode": "ATLAS-404-00-007",
        "errorMessage": "Invalid instance creation/updation parameters passed : ml_model_deployment.build: "
                        "mandatory attribute value missing in type ml_model_deployment"})
    with pytest.raises(AtlasNotFound) as info:
        client.upsert_entities([])
    assert len(responses.calls) == 1
    assert info.value.error_code == "ATLAS-404-00-007"
    assert "mandatory attribute value missing" in info.value.error_message


@responses.activate
def test_conflict_and_v1_style_error_body(client):
    responses.post(f"{API}/v2/types/typedefs", status=409,
                   json={"errorCode": "ATLAS-409-00-001", "errorMessage": "Given type x already exists"})
    with pytest.raises(AtlasConflict, match="ATLAS-409-00-001"):
        client.create_typedefs({})
    responses.put(f"{API}/v2/types/typedefs", status=400, json={"error": "Unexpected character ('}')"})
    with pytest.raises(AtlasError, match="Unexpected character"):
        client.update_typedefs({})


@responses.activate
def test_odd_success_body_is_a_typed_error(client):
    responses.get(f"{API}/v2/entity/guid/g1", body="<html>proxy page</html>", status=200)
    with pytest.raises(AtlasError, match="non-JSON body"):
        client.get_entity("g1")


@responses.activate
def test_connection_error_and_timeout_are_typed(client):
    responses.get(f"{API}/admin/status", body=requests.ConnectionError("refused"))
    with pytest.raises(AtlasError, match="not reachable"):
        client.status()
    responses.replace(responses.GET, f"{API}/admin/status", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(AtlasError, match=r"did not answer GET /admin/status \(ReadTimeout\): waited"):
        client.status()


@responses.activate
def test_missing_typedef_is_none(client):
    responses.get(f"{API}/v2/types/typedef/name/nope", status=404,
                  json={"errorCode": "ATLAS-404-00-001", "errorMessage": "Given typename nope was invalid"})
    assert client.get_typedef("nope") is None


@responses.activate
def test_search_pages_past_the_default_limit(client):
    def page(start, n):
        return {"queryType": "BASIC", "approximateCount": 250,
                "entities": [{"guid": f"g{i}", "attributes": {}} for i in range(start, start + n)]}
    responses.post(f"{API}/v2/search/basic", json=page(0, 100))
    responses.post(f"{API}/v2/search/basic", json=page(100, 100))
    responses.post(f"{API}/v2/search/basic", json=page(200, 50))
    found = list(client.search_basic({"typeName": "DataSet"}))
    assert [h["guid"] for h in found] == [f"g{i}" for i in range(250)]
    offsets = [__import__("json").loads(c.request.body)["offset"] for c in responses.calls]
    assert offsets == [0, 100, 200]


@responses.activate
def test_empty_search_without_entities_key(client):
    responses.post(f"{API}/v2/search/basic", json={"queryType": "BASIC", "approximateCount": 0})
    assert list(client.search_basic({"typeName": "DataSet"})) == []


def test_settings_from_env_hide_secrets(monkeypatch):
    monkeypatch.setenv("ATLAS_URL", "https://atlas.example:21443/")
    monkeypatch.setenv("ATLAS_USERNAME", "svc")
    monkeypatch.setenv("ATLAS_PASSWORD", "pw-value")
    monkeypatch.setenv("ATLAS_CA_BUNDLE", "/etc/ssl/corp.pem")
    settings = AtlasSettings.from_env()
    assert settings.url == "https://atlas.example:21443" and settings.verify == "/etc/ssl/corp.pem"
    assert "pw-value" not in repr(settings)


def test_kerberos_without_extra_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_kerberos(name, *args, **kwargs):
        if name in ("requests_gssapi", "gssapi"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kerberos)
    with pytest.raises(ConfigError, match=r"model-governance\[kerberos\]"):
        AtlasClient(AtlasSettings(url=URL, kerberos=True))
