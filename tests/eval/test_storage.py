"""Storage round trips on local paths, file:// URIs and a real S3 server (moto) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from podium import storage
from podium.errors import NotFound, StorageError
from podium.uri import parse
from tests.helpers import free_port

BUCKET = "podium-test"


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.delenv("PODIUM_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = storage._client(*storage._settings())
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    return f"s3://{BUCKET}"


def test_s3_round_trip(s3: str, tmp_path: Path) -> None:
    source = tmp_path / "labels.csv"
    source.write_text("label\na\nb\n")
    uri = storage.upload(source, f"{s3}/holdouts/p1/")
    assert uri == f"{s3}/holdouts/p1/labels.csv"
    assert storage.exists(uri)
    assert storage.read_bytes(uri) == source.read_bytes()
    copy = storage.download(uri, tmp_path / "staged")  # a new path, not a directory
    assert copy.read_bytes() == source.read_bytes()
    (tmp_path / "into").mkdir()
    assert storage.download(uri, tmp_path / "into") == tmp_path / "into" / "labels.csv"


def test_s3_write_and_read_bytes(s3: str) -> None:
    uri = storage.write_bytes(f"{s3}/scores/1/scores.json", b'{"ok": true}')
    assert storage.read_bytes(uri) == b'{"ok": true}'


def test_s3_missing_object(s3: str, tmp_path: Path) -> None:
    assert not storage.exists(f"{s3}/nothing/here")
    with pytest.raises(NotFound, match="does not exist") as raised:
        storage.download(f"{s3}/nothing/here", tmp_path / "x")
    assert "Fix:" in str(raised.value)
    with pytest.raises(NotFound):
        storage.read_bytes("s3://no-such-bucket/key")


def test_s3_endpoint_from_podium_variable_wins(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_S3_ENDPOINT", s3_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert storage._settings()[0] == s3_server


def test_unreachable_store_is_reported_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_S3_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(StorageError, match="cannot reach the object store") as raised:
        storage.read_bytes("s3://bucket/key")
    assert raised.value.field == "endpoint" and "PODIUM_S3_ENDPOINT" in str(raised.value)


def test_local_paths_and_file_uris(tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"\x00\x01")
    uri = f"file://{tmp_path}/nested/b.bin"
    assert storage.upload(source, uri) == uri
    assert storage.exists(uri) and storage.read_bytes(uri) == b"\x00\x01"
    assert storage.download(uri, tmp_path / "c.bin").read_bytes() == b"\x00\x01"
    assert storage.download(str(source), source) == source  # already in place: no copy
    storage.write_bytes(tmp_path / "d.bin", b"x")
    assert storage.read_bytes(str(tmp_path / "d.bin")) == b"x"
    assert not storage.exists(tmp_path / "missing")
    with pytest.raises(NotFound):
        storage.download(tmp_path / "missing", tmp_path / "out")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://example.com/x", "unsupported URI scheme"),  # http(s):// is a presigned URL now
        ("https:///x", "no host"),
        ("http://127.0.0.1:1/", "names no object"),
        ("s3:///key", "no bucket"),
        ("s3://bucket", "no object"),
        ("file://otherhost/x", "names host"),
    ],
)
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(StorageError, match=message):
        storage.read_bytes(uri)


def test_endpoint_must_be_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_S3_ENDPOINT", "ftp://store")
    with pytest.raises(StorageError, match="not an http"):
        storage.exists("s3://bucket/key")


# --- Presigned URLs, against local mode's store (which verifies signatures as S3 does) --------------

@pytest.fixture(scope="module")
def signing_store() -> Iterator[object]:
    from podium_operator.local.objectstore import ObjectStore

    with ObjectStore(bucket="podium-presign") as store:
        yield store


@pytest.fixture
def signed(signing_store, monkeypatch: pytest.MonkeyPatch) -> str:
    for key, value in signing_store.env().items():
        monkeypatch.setenv(key, value)
    return "s3://podium-presign"


def test_presigned_urls_round_trip_with_no_credentials(signed: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    put = storage.presign(f"{signed}/uploads/a/preds.csv", method="PUT", expires=timedelta(minutes=2))
    get = storage.presign(f"{signed}/uploads/a/preds.csv")
    source = tmp_path / "preds.csv"
    source.write_bytes(b"y\n1\n2\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # a URL needs none
    assert storage.upload(source, put) == put
    assert storage.read_bytes(get) == b"y\n1\n2\n" and storage.exists(get)
    (tmp_path / "into").mkdir()
    assert storage.download(get, tmp_path / "into").read_bytes() == b"y\n1\n2\n"
    assert (tmp_path / "into" / "preds.csv").is_file() and not list((tmp_path / "into").glob("*.part"))
    assert storage.write_bytes(put, b"replaced") == put
    assert storage.read_bytes(get, limit=8) == b"replaced"
    with pytest.raises(StorageError, match="larger than 4 bytes") as raised:
        storage.read_bytes(get, limit=4)
    assert raised.value.field == "uri" and "X-Amz-Signature" not in str(raised.value)


def test_presigned_url_failures_name_the_uri_and_hide_the_signature(signed: str, signing_store, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    storage.write_bytes(f"{signed}/uploads/b/x.bin", b"x")
    get = storage.presign(f"{signed}/uploads/b/x.bin")
    expired = signing_store.minio_client().presigned_get_object(
        "podium-presign", "uploads/b/x.bin", expires=timedelta(seconds=30),
        request_date=datetime.now(UTC) - timedelta(minutes=1))
    attempts = {
        "tampered": lambda: storage.read_bytes(get.replace("/x.bin", "/y.bin")),
        "wrong method": lambda: storage.write_bytes(get, b"evil"),
        "expired": lambda: storage.read_bytes(expired),
        "download": lambda: storage.download(get.replace("/x.bin", "/y.bin"), tmp_path / "out.bin"),
    }
    for name, attempt in attempts.items():
        with pytest.raises(StorageError, match="denied") as raised:
            attempt()
        assert raised.value.field == "uri", name
        assert "X-Amz-Signature" not in str(raised.value) and "<signature>" in str(raised.value), name
    assert not (tmp_path / "out.bin").exists() and not (tmp_path / "out.bin.part").exists()
    missing = storage.presign(f"{signed}/uploads/b/missing.bin")
    with pytest.raises(NotFound) as raised:
        storage.read_bytes(missing)
    assert raised.value.field == "uri" and not storage.exists(missing)
    assert storage.read_bytes(f"{signed}/uploads/b/x.bin") == b"x"  # the tampering wrote nothing


def test_presign_refuses_what_it_cannot_sign(signed: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="only an s3:// object") as raised:
        storage.presign(tmp_path / "file.bin")
    assert raised.value.field == "uri"
    with pytest.raises(StorageError) as method:
        storage.presign(f"{signed}/k", method="DELETE")  # type: ignore[arg-type]
    assert method.value.field == "method"
    with pytest.raises(StorageError) as expiry:
        storage.presign(f"{signed}/k", expires=timedelta(days=8))
    assert expiry.value.field == "expires"
    with pytest.raises(StorageError, match="nothing to list"):
        storage.list_uris(storage.presign(f"{signed}/k"))


def test_a_url_is_classified_and_named_by_its_key() -> None:
    url = "http://127.0.0.1:9000/podium/uploads/a/model%20v1.tar.gz?X-Amz-Signature=ab&X-Amz-Expires=60"
    location = parse(url)
    assert location.url and not location.is_local and location.path is None
    assert location.name == "model v1.tar.gz" and location.key == "podium/uploads/a/model v1.tar.gz"
    assert not parse("s3://b/k").url and not parse("/tmp/x").url
