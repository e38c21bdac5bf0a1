"""The local object store: a real moto S3 server on loopback, used through minio and boto3."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import boto3
import pytest

from podium_operator.local.objectstore import ObjectStore


@pytest.fixture(scope="module")
def store() -> Iterator[ObjectStore]:
    with ObjectStore() as s:
        yield s


def test_bucket_exists_at_start(store: ObjectStore) -> None:
    assert store.endpoint.startswith("http://127.0.0.1:")
    assert store.bucket == "podium"
    assert store.minio_client().bucket_exists("podium")


def test_put_and_get_through_minio(store: ObjectStore) -> None:
    client = store.minio_client()
    client.put_object(store.bucket, "models/a.bin", io.BytesIO(b"weights"), length=7)
    response = client.get_object(store.bucket, "models/a.bin")
    try:
        assert response.read() == b"weights"
    finally:
        response.close()
        response.release_conn()


def test_put_and_get_through_boto3_with_the_env(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")  # configured by the environment alone, as a pod would be
    s3.put_object(Bucket=store.bucket, Key="data/holdout.csv", Body=b"x,y\n1,2\n")
    body = s3.get_object(Bucket=store.bucket, Key="data/holdout.csv")["Body"].read()
    assert body == b"x,y\n1,2\n"
    # Both clients see the same objects.
    assert store.minio_client().stat_object(store.bucket, "data/holdout.csv").size == len(body)


def test_env_names_everything_a_client_needs(store: ObjectStore) -> None:
    assert store.env() == {
        "AWS_ACCESS_KEY_ID": store.access_key,
        "AWS_SECRET_ACCESS_KEY": store.secret_key,
        "AWS_ENDPOINT_URL": store.endpoint,
        "AWS_DEFAULT_REGION": store.region,
        "PODIUM_S3_ENDPOINT": store.endpoint,
        "PODIUM_S3_BUCKET": "podium",
    }


def test_two_stores_get_different_ports(store: ObjectStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO), ObjectStore(bucket="other") as other:
        assert other.endpoint != store.endpoint
        assert other.minio_client().bucket_exists("other")
    assert not [r for r in caplog.records if r.name == "werkzeug"]  # request logging is silenced
    with pytest.raises(RuntimeError, match="not started"):
        _ = other.endpoint


def test_grants_register_extra_credentials_with_only_their_prefixes(store: ObjectStore) -> None:
    import minio
    from minio.error import S3Error

    from podium_operator.local.objectstore import Grant

    grant = store.add_grant(Grant("dave", "dave-secret", read_prefixes=("s3://podium/uploads/dave/",),
                                  write_prefixes=("uploads/dave/",)))
    assert grant.read_prefixes == grant.write_prefixes == ("uploads/dave/",)  # s3:// URIs become keys
    dave = minio.Minio(store.endpoint.removeprefix("http://"), access_key="dave", secret_key="dave-secret",
                       region=store.region, secure=False)
    dave.put_object(store.bucket, "uploads/dave/m.bin", io.BytesIO(b"m"), 1)  # granted while serving
    with pytest.raises(S3Error):
        dave.get_object(store.bucket, "models/a.bin")
    with pytest.raises(ValueError, match="not in this store's bucket"):
        store.add_grant(Grant("eve", "s", read_prefixes=("s3://elsewhere/x/",)))
    with pytest.raises(ValueError, match="store's own credential"):
        store.add_grant(Grant(store.access_key, "other", read_prefixes=("",)))
    with pytest.raises(S3Error):  # the store's own credential is still the store's
        minio.Minio(store.endpoint.removeprefix("http://"), access_key=store.access_key, secret_key="other",
                    region=store.region, secure=False).bucket_exists(store.bucket)
