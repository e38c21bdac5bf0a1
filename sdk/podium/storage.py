"""Move bytes between local paths, ``file://`` URIs and ``s3://bucket/key`` objects.

The object store is reached with the MinIO client, configured from the environment the AWS tools use:
``PODIUM_S3_ENDPOINT`` or ``AWS_ENDPOINT_URL`` (e.g. ``http://127.0.0.1:9000``; AWS S3 when unset),
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION``. ``minio`` is imported only
when an ``s3://`` URI is used, so the predict image needs no object-store client.
"""

from __future__ import annotations

import io
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from podium.errors import NotFound, StorageError
from podium.uri import Location, parse

if TYPE_CHECKING:
    from minio import Minio

# The Secret (keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) trusted Jobs read credentials from, by default.
CREDENTIALS_SECRET = "podium-object-store"
_HINT_ENV = "set PODIUM_S3_ENDPOINT (or AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}


def download(uri: str | Path, dest: Path) -> Path:
    """Copy ``uri`` to ``dest`` (into it, keeping the name, when ``dest`` is a directory); return the file."""
    location = _object(uri)
    dest = Path(dest)
    if dest.is_dir():
        dest = dest / location.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    if location.path is not None:
        _require_local(location)
        if location.path.resolve() != dest.resolve():
            shutil.copyfile(location.path, dest)
        return dest
    _call(location, lambda client: client.fget_object(location.bucket, location.key, str(dest)))
    return dest


def upload(path: str | Path, uri: str | Path) -> str:
    """Copy local file ``path`` to ``uri`` (a trailing ``/`` means "into", keeping the name); return the URI."""
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"file {path} does not exist", field="path", hint="upload an existing file")
    text = str(uri)
    if text.endswith("/"):
        text += path.name
    location = _object(text)
    if location.path is not None:
        location.path.parent.mkdir(parents=True, exist_ok=True)
        if location.path.resolve() != path.resolve():
            shutil.copyfile(path, location.path)
        return text
    _call(location, lambda client: client.fput_object(location.bucket, location.key, str(path)))
    return text


def read_bytes(uri: str | Path, *, limit: int | None = None) -> bytes:
    """The object's bytes; with ``limit``, a :class:`StorageError` rather than more than ``limit`` bytes in memory."""
    location = _object(uri)
    if location.path is not None:
        _require_local(location)
        if limit is None:
            return location.path.read_bytes()
        with location.path.open("rb") as file:
            return _within(location, file.read(limit + 1), limit)

    def get(client: Minio) -> bytes:
        response = client.get_object(location.bucket, location.key)
        try:
            return response.read() if limit is None else _within(location, response.read(limit + 1), limit)
        finally:
            response.close()
            response.release_conn()

    return _call(location, get)


def _within(location: Location, data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        raise StorageError(f"{location.uri} is larger than {limit} bytes", field="uri",
                           hint="check what wrote it; a file this large is not what was expected here")
    return data


def write_bytes(uri: str | Path, data: bytes) -> str:
    location = _object(uri)
    if location.path is not None:
        location.path.parent.mkdir(parents=True, exist_ok=True)
        location.path.write_bytes(data)
        return location.uri
    _call(location, lambda client: client.put_object(location.bucket, location.key, io.BytesIO(data), len(data)))
    return location.uri


def exists(uri: str | Path) -> bool:
    location = _object(uri)
    if location.path is not None:
        return location.path.is_file()
    try:
        _call(location, lambda client: client.stat_object(location.bucket, location.key))
    except NotFound:
        return False
    return True


def _object(uri: str | Path) -> Location:
    location = parse(uri)
    if not location.is_local and not location.key:
        raise StorageError(f"S3 URI {location.uri!r} names a bucket but no object", field="uri",
                           hint="use s3://bucket/path/to/object")
    return location


def _require_local(location: Location) -> None:
    if location.path is None or not location.path.is_file():
        raise NotFound(f"{location.uri} does not exist", field="uri", hint="check the path")


def _call(location: Location, operation: Any) -> Any:
    """Run ``operation(client)``, turning client failures into errors that say what to check."""
    from minio.error import MinioException, S3Error
    from urllib3.exceptions import HTTPError

    client = _client(*_settings())
    try:
        return operation(client)
    except S3Error as error:
        if error.code in _MISSING:
            raise NotFound(f"{location.uri} does not exist", field="uri",
                           hint="check the bucket and key, and that the object was uploaded") from None
        if error.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            raise StorageError(f"access to {location.uri} denied ({error.code})", field="credentials",
                               hint=_HINT_ENV) from None
        raise StorageError(f"{location.uri}: {error.code}: {error.message}", field="uri",
                           hint="check the object store's logs") from None
    except (MinioException, HTTPError, OSError) as error:
        endpoint = _settings()[0]
        raise StorageError(f"cannot reach the object store at {endpoint} for {location.uri} ({error})",
                           field="endpoint", hint=_HINT_ENV) from None


def _settings() -> tuple[str, str | None, str | None, str | None]:
    endpoint = os.environ.get("PODIUM_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or "https://s3.amazonaws.com"
    return (
        endpoint,
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
        os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
    )


@lru_cache(maxsize=8)
def _client(endpoint: str, access_key: str | None, secret_key: str | None, region: str | None) -> Minio:
    from minio import Minio
    from urllib3 import PoolManager, Retry, Timeout

    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(f"object-store endpoint {endpoint!r} is not an http(s) URL", field="endpoint",
                           hint="set PODIUM_S3_ENDPOINT like http://127.0.0.1:9000")
    # Fail within seconds rather than MinIO's default minutes of retries when the store is down.
    http = PoolManager(timeout=Timeout(connect=5, read=60),
                       retries=Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)))
    return Minio(parts.netloc, access_key=access_key, secret_key=secret_key, region=region,
                 secure=parts.scheme == "https", http_client=http)
