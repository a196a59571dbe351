"""S3-specific behaviour, against real Ceph radosgw and moto (same tests, both servers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.awsrequest import AWSResponse

from governance.errors import RegistryError, RegistryUnavailable
from governance.registries.base import MANIFEST_NAME
from governance.registries.s3 import S3Registry

MiB = 1024 * 1024


def _keys(client, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def test_objects_carry_sha256_metadata_and_multipart_works(s3_env, bucket, make_staged):
    big = bytes(range(256)) * (9 * MiB // 256 + 1)  # > 8 MiB threshold: a 2-part multipart upload
    staged = make_staged(model=big)
    version = S3Registry(f"s3://{bucket}/reg").publish(staged)
    client = s3_env.client()
    assert version.manifest.data_dir.startswith("attempt-")
    head = client.head_object(Bucket=bucket, Key=f"reg/iris/1/{version.manifest.data_dir}/executable/model.joblib")
    assert head["Metadata"]["sha256"] == staged.executable_file.sha256
    assert head["ETag"].strip('"').endswith("-2")
    assert head["ContentLength"] == len(big)
    assert S3Registry(f"s3://{bucket}/reg").verify(version) == []


def test_prefixless_uri(s3_env, bucket, make_staged):
    version = S3Registry(f"s3://{bucket}").publish(make_staged())
    assert version.location == f"s3://{bucket}/iris/1"
    assert f"iris/1/{MANIFEST_NAME}" in _keys(s3_env.client(), bucket)


def test_missing_bucket_is_a_clear_error(s3_env, make_staged):
    with pytest.raises(RegistryError, match="bucket 'no-such-bucket' does not exist") as info:
        S3Registry("s3://no-such-bucket/models").publish(make_staged())
    assert not isinstance(info.value, RegistryUnavailable)  # a refusal: the flow does not retry it


def test_lost_answer_to_our_own_manifest_write_keeps_our_version(s3_env, bucket, make_staged):
    """The manifest PUT succeeded but its answer was lost; the retry got 412: that commit is ours, and the
    attempt it names must not be cleaned up as a loser's."""
    registry = S3Registry(f"s3://{bucket}/models")
    original = registry._commit

    def written_but_answer_lost(attempt, manifest):
        assert original(attempt, manifest) is True
        return original(attempt, manifest)  # what the retried PUT sees: 412

    registry._commit = written_but_answer_lost
    version = registry.publish(make_staged())
    assert version.created and registry.verify(version) == []
    assert registry.gc(older_than=timedelta(0)) == []


def test_gc_aborts_incomplete_multipart_uploads_and_drops_abandoned_attempts(s3_env, bucket, make_staged):
    registry = S3Registry(f"s3://{bucket}/models")
    committed = registry.publish(make_staged())
    client = s3_env.client()
    # what a publisher killed mid-copy leaves: an attempt with one object and an unfinished multipart upload
    client.put_object(Bucket=bucket, Key="models/iris/1/attempt-20260101T000000-dead/README.md", Body=b"x")
    upload = client.create_multipart_upload(Bucket=bucket,
                                            Key="models/iris/1/attempt-20260101T000000-dead/executable/big.bin")
    client.upload_part(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1,
                       Body=b"p" * 1024)
    planned = registry.gc(older_than=timedelta(0), dry_run=True)
    assert sorted(lo.kind for lo in planned) == ["abandoned publish attempt", "incomplete multipart upload"]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # dry run: nothing removed
    assert sorted(lo.uri for lo in registry.gc(older_than=timedelta(0))) == sorted(lo.uri for lo in planned)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert all("dead" not in k for k in _keys(client, bucket))
    assert registry.verify(registry.lookup("iris", "1")) == [] and committed.created


def test_store_failing_mid_upload_leaves_no_version(s3_env, bucket, make_staged):
    """The server starts failing after the first object: bounded retries, then a clear error, no manifest."""
    registry = S3Registry(f"s3://{bucket}/models")
    calls = {"n": 0}

    def fail_after_first(request, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            return AWSResponse(request.url, 500, {}, _Raw(b"<Error><Code>InternalError</Code>"
                                                          b"<Message>disk failure</Message></Error>"))
        return None

    registry.client.meta.events.register("before-send.s3.PutObject", fail_after_first)
    staged = make_staged(extra={"data/a.bin": b"a" * 1000, "data/b.bin": b"b" * 1000})
    with pytest.raises(RegistryUnavailable, match=rf"s3://{bucket}/models/iris/1/.*InternalError"):
        registry.publish(staged)
    assert 2 < calls["n"] <= 6  # retried, but boundedly
    assert registry.lookup("iris", "1") is None
    assert f"models/iris/1/{MANIFEST_NAME}" not in _keys(s3_env.client(), bucket)
    # the retry (server healthy again) completes the version
    registry.client.meta.events.unregister("before-send.s3.PutObject", fail_after_first)
    assert registry.publish(staged).created


class _Raw:
    """Just enough of urllib3's response for botocore to parse an error body."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, *args, **kwargs):
        yield self._body

    def read(self, *args, **kwargs):
        body, self._body = self._body, b""
        return body


def test_denied_credentials_on_radosgw(radosgw_server, monkeypatch, make_staged):
    """moto accepts any signature, so this one needs the real server."""
    name = "reg-denied"
    radosgw_server.client().create_bucket(Bucket=name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", radosgw_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", radosgw_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-key-123")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(RegistryError, match="access denied \\(SignatureDoesNotMatch\\)") as info:
        S3Registry(f"s3://{name}/models").publish(make_staged())
    assert "wrong-secret-key-123" not in str(info.value)
    assert not isinstance(info.value, RegistryUnavailable)
    assert _keys(radosgw_server.client(), name) == []


def test_bad_uri_is_a_config_error():
    from governance.errors import ConfigError

    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        S3Registry("s3:///nobucket")
