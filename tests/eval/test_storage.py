"""Storage round trips on local paths, file:// URIs and a real S3 server (moto) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import storage
from podium.errors import NotFound, StorageError
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
        ("http://example.com/x", "unsupported URI scheme"),
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
