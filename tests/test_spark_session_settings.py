"""What a Spark session is given for s3:// locations (governance.spark.session), without starting Spark: the S3A
jars named by MODELGOV_SPARK_JARS, S3A's settings from the registries' environment, and never a key."""

from __future__ import annotations

import pytest

from governance.errors import ConfigError
from governance.spark.session import extra_jars, hadoop_uri, s3a_settings


def test_the_jars_are_files_and_folders_of_jars_and_a_missing_one_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "s3a"
    folder.mkdir()
    for name in ("b.jar", "a.jar", "README"):
        (folder / name).write_text("x")
    single = tmp_path / "extra.jar"
    single.write_text("x")
    monkeypatch.setenv("MODELGOV_SPARK_JARS", f"{folder}:{single}")
    assert extra_jars() == [str(folder / "a.jar"), str(folder / "b.jar"), str(single)]
    monkeypatch.setenv("MODELGOV_SPARK_JARS", f"{folder},{tmp_path / 'nope'}")
    with pytest.raises(ConfigError, match=f"MODELGOV_SPARK_JARS: {tmp_path / 'nope'} is neither a jar"):
        extra_jars()


def test_s3a_follows_the_registries_endpoint_and_never_holds_a_key(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.company.example:8443")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPLANTEDKEYID0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "planted-secret-for-spark-settings")
    settings = s3a_settings()
    assert settings["fs.s3a.endpoint"] == "https://s3.company.example:8443"
    assert settings["fs.s3a.path.style.access"] == "true" and settings["fs.s3a.connection.ssl.enabled"] == "true"
    assert settings["fs.s3a.endpoint.region"] == "eu-central-1"
    assert settings["fs.s3a.attempts.maximum"] == "0"  # one retry layer: S3A's, not the SDK's beneath it too
    text = repr(settings)
    assert "planted-secret-for-spark-settings" not in text and "AKIAPLANTEDKEYID0001" not in text
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert "fs.s3a.endpoint" not in s3a_settings()  # AWS itself: S3A's own endpoint resolution


def test_s3_locations_are_s3a_to_hadoop_and_others_unchanged():
    assert hadoop_uri("s3://bucket/in/iris.csv") == "s3a://bucket/in/iris.csv"
    assert hadoop_uri("hdfs://nn:8020/x") == "hdfs://nn:8020/x"
    assert hadoop_uri("file:///tmp/s3://x") == "file:///tmp/s3://x"
