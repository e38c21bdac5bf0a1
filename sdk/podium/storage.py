"""Move bytes between local paths, ``file://`` URIs, ``s3://bucket/key`` objects and presigned URLs.

The object store is reached with the MinIO client, as a :class:`Store` says; by default
(:meth:`Store.from_environment`) configured from the environment the AWS tools use: ``PODIUM_S3_ENDPOINT``
or ``AWS_ENDPOINT_URL`` (e.g. ``http://127.0.0.1:9000``; AWS S3 when unset), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION``. (The SDK's client finds its store from the cluster
instead: :mod:`podium.discovery`.) ``minio`` is imported only when an ``s3://`` URI is used, so the predict
image needs no object-store client. A failure says whether the store could not be reached or refused
the credentials.

:func:`presign` turns an ``s3://`` object into an ``http(s)://`` URL that lets its holder GET or PUT
exactly that object, for a while, with no credentials; :func:`download`, :func:`read_bytes`,
:func:`write_bytes`, :func:`upload` and :func:`exists` take such a URL as the URI (plain HTTP, no
credentials, no redirects, no proxies). Errors never repeat a URL's query: it is a bearer credential.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from podium.errors import NotFound, StorageError
from podium.uri import Location, parse

if TYPE_CHECKING:
    from minio import Minio

_HINT_ENV = "set PODIUM_S3_ENDPOINT (or AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
_HINT_CREDENTIALS = ('run `eval "$(podium local env)"` (local mode), or set AWS_ACCESS_KEY_ID and '
                     "AWS_SECRET_ACCESS_KEY to credentials the store grants this")
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
            "AuthorizationHeaderMalformed", "AllAccessDisabled"}
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}
_URL_TIMEOUT_S = 60
_CHUNK = 1 << 20
_HINT_URL = ("a presigned URL is good for one object, one method (GET or PUT) and a limited time: "
             "check it was made for this, or ask for a new one")


@dataclass(frozen=True)
class Store:
    """An object store and how to sign for it; ``source`` says where the credentials came from (for errors)."""

    endpoint: str = "https://s3.amazonaws.com"
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    region: str | None = None
    source: str = "the environment (AWS_ACCESS_KEY_ID)"
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls) -> Store:
        endpoint, access_key, secret_key, region = _settings()
        return cls(endpoint, access_key, secret_key, region,
                   "the environment (AWS_ACCESS_KEY_ID)" if access_key else "none (anonymous requests)",
                   os.environ.get("AWS_SESSION_TOKEN") if access_key else None)


def download(uri: str | Path, dest: Path, *, store: Store | None = None) -> Path:
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
    if location.url:
        partial = dest.with_name(f"{dest.name}.part")
        try:
            with _open_url(location) as response, partial.open("wb") as file:
                _stream(location, lambda: shutil.copyfileobj(response, file, _CHUNK))
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest
    _call(location, lambda client: client.fget_object(location.bucket, location.key, str(dest)), store)
    return dest


def upload(path: str | Path, uri: str | Path, *, store: Store | None = None, progress: Any = None) -> str:
    """Copy local file ``path`` to ``uri`` (a trailing ``/`` means "into", keeping the name); return the URI.

    ``progress`` (an ``s3://`` upload) gets ``set_meta(object_name=, total_length=)``, then ``update(n)`` per
    chunk sent (MinIO's progress protocol; :class:`podium.progress.Transfer` shows it).
    """
    path = Path(path)
    if not path.is_file():
        raise StorageError(f"file {path} does not exist", field="path", hint="upload an existing file")
    text = str(uri)
    if text.endswith("/") and not parse(text).url:  # a URL ends in its query, not in a folder
        text += path.name
    location = _object(text)
    if location.url:
        with path.open("rb") as file:
            _put_url(location, file, path.stat().st_size)
        return text
    if location.path is not None:
        location.path.parent.mkdir(parents=True, exist_ok=True)
        if location.path.resolve() != path.resolve():
            shutil.copyfile(path, location.path)
        return text
    _call(location, lambda client: client.fput_object(location.bucket, location.key, str(path), progress=progress),
          store)
    return text


def read_bytes(uri: str | Path, *, limit: int | None = None, store: Store | None = None) -> bytes:
    """The object's bytes; with ``limit``, a :class:`StorageError` rather than more than ``limit`` bytes in memory."""
    location = _object(uri)
    if location.path is not None:
        _require_local(location)
        if limit is None:
            return location.path.read_bytes()
        with location.path.open("rb") as file:
            return _within(location, file.read(limit + 1), limit)
    if location.url:
        with _open_url(location) as response:  # at most limit + 1 bytes read, whatever the object's size
            data = _stream(location, lambda: response.read() if limit is None else response.read(limit + 1))
        return data if limit is None else _within(location, data, limit)

    def get(client: Minio) -> bytes:
        response = client.get_object(location.bucket, location.key)
        try:
            return response.read() if limit is None else _within(location, response.read(limit + 1), limit)
        finally:
            response.close()
            response.release_conn()

    return _call(location, get, store)


def _within(location: Location, data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        raise StorageError(f"{_shown(location)} is larger than {limit} bytes", field="uri",
                           hint="check what wrote it; a file this large is not what was expected here")
    return data


def write_bytes(uri: str | Path, data: bytes, *, store: Store | None = None) -> str:
    location = _object(uri)
    if location.path is not None:
        location.path.parent.mkdir(parents=True, exist_ok=True)
        location.path.write_bytes(data)
        return location.uri
    if location.url:
        _put_url(location, io.BytesIO(data), len(data))
        return location.uri
    _call(location, lambda client: client.put_object(location.bucket, location.key, io.BytesIO(data), len(data)),
          store)
    return location.uri


def list_uris(prefix: str | Path, *, store: Store | None = None) -> list[str]:
    """The URIs of every object (file) below ``prefix``, sorted; empty when there is none."""
    location = parse(prefix)
    if location.url:
        raise StorageError(f"{_shown(location)} is a URL: there is nothing to list below it", field="uri",
                           hint="list an s3:// prefix")
    if location.path is not None:
        root = location.path
        return sorted(str(path) for path in root.rglob("*") if path.is_file()) if root.is_dir() else []

    def keys(client: Any) -> list[str]:
        return [item.object_name for item in client.list_objects(location.bucket, prefix=location.key, recursive=True)]

    return sorted(f"s3://{location.bucket}/{key}" for key in _call(location, keys, store))


def delete(uri: str | Path, *, store: Store | None = None) -> None:
    """Remove one object or file; removing one that is not there is not an error."""
    location = _object(uri)
    if location.url:
        raise StorageError(f"{_shown(location)} is a URL: it cannot be deleted", field="uri",
                           hint="delete the s3:// object")
    if location.path is not None:
        location.path.unlink(missing_ok=True)
        return
    _call(location, lambda client: client.remove_object(location.bucket, location.key), store)


def delete_prefix(prefix: str | Path, *, store: Store | None = None) -> int:
    """Remove every object below ``prefix`` (a folder: end it with ``/``); returns how many there were."""
    uris = list_uris(prefix, store=store)
    for uri in uris:
        delete(uri, store=store)
    return len(uris)


def exists(uri: str | Path, *, store: Store | None = None) -> bool:
    location = _object(uri)
    if location.path is not None:
        return location.path.is_file()
    try:
        if location.url:
            _open_url(location).close()
            return True
        _call(location, lambda client: client.stat_object(location.bucket, location.key), store)
    except NotFound:
        return False
    return True


def fingerprint(uri: str | Path, *, store: Store | None = None) -> str | None:
    """A cheap token that changes when the object does (ETag and size; for a file, size and mtime), from
    metadata only; None where there is none to read (a URL). Equal tokens mean unchanged; unequal ones
    mean *maybe* changed (a file rewritten with the same bytes): compare contents to be sure."""
    location = _object(uri)
    if location.path is not None:
        stat = location.path.stat()
        return f"file:{stat.st_size}:{stat.st_mtime_ns}"
    if location.url:
        return None
    found = _call(location, lambda client: client.stat_object(location.bucket, location.key), store)
    return f"s3:{found.etag}:{found.size}"


def presign(uri: str | Path, *, method: Literal["GET", "PUT"] = "GET",
            expires: timedelta = timedelta(minutes=15), store: Store | None = None) -> str:
    """A URL that lets whoever holds it ``method`` exactly the ``s3://`` object ``uri`` for ``expires``.

    Signed (SigV4 query auth) with the environment's credentials, which it carries the grant of.
    """
    location = _object(uri)
    if location.bucket == "":
        raise StorageError(f"only an s3:// object can be presigned, not {_shown(location)}", field="uri",
                           hint="presign s3://bucket/key")
    if method not in ("GET", "PUT"):
        raise StorageError(f"cannot presign method {method!r}", field="method", hint="use GET or PUT")
    if not timedelta(seconds=1) <= expires <= timedelta(days=7):
        raise StorageError(f"expiry {expires} is not between a second and 7 days", field="expires",
                           hint="presign for minutes: as long as the one step that uses the URL may take")
    if method == "GET":
        return str(_call(location, lambda client: client.presigned_get_object(location.bucket, location.key,
                                                                               expires=expires), store))
    return str(_call(location, lambda client: client.presigned_put_object(location.bucket, location.key,
                                                                           expires=expires), store))


def _object(uri: str | Path) -> Location:
    location = parse(uri)
    if location.url and not location.key:
        raise StorageError(f"URL {_shown(location)} names no object", field="uri",
                           hint="use a presigned object URL, http(s)://host/bucket/key?X-Amz-...")
    if not location.is_local and not location.key:
        raise StorageError(f"S3 URI {location.uri!r} names a bucket but no object", field="uri",
                           hint="use s3://bucket/path/to/object")
    return location


def _require_local(location: Location) -> None:
    if location.path is None or not location.path.is_file():
        raise NotFound(f"{location.uri} does not exist", field="uri", hint="check the path")


def _call(location: Location, operation: Any, store: Store | None = None) -> Any:
    """Run ``operation(client)``; a failure says whether the store was unreachable or refused the credentials."""
    from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
    from urllib3.exceptions import HTTPError

    store = store or Store.from_environment()
    client = _client(store.endpoint, store.access_key, store.secret_key, store.region, store.session_token)
    try:
        return operation(client)
    except S3Error as error:
        if error.code in _MISSING:
            raise NotFound(f"{location.uri} does not exist", field="uri",
                           hint="check the bucket and key, and that the object was uploaded") from None
        if error.code in _REFUSED:
            raise _refused(store, location, error.code) from None
        raise StorageError(f"{location.uri}: {error.code}: {error.message}", field="uri",
                           hint="check the object store's logs") from None
    except InvalidResponseError as error:  # not S3's XML: a proxy, or not an object store at all
        status = getattr(error, "_code", 0)
        if status in (401, 403):
            raise _refused(store, location, f"HTTP {status}") from None
        raise StorageError(f"the object store at {store.endpoint} answered {location.uri} with HTTP {status}, "
                           "not as S3 does", field="endpoint", hint="check PODIUM_S3_ENDPOINT names an S3 endpoint") from None
    except ServerError as error:
        raise StorageError(f"the object store at {store.endpoint} failed on {location.uri} (HTTP {error.status_code})",
                           field="endpoint", hint="retry; check the object store's logs") from None
    except (MinioException, HTTPError, OSError) as error:
        raise StorageError(f"cannot reach the object store at {store.endpoint} for {location.uri} "
                           f"({_reason(error)})", field="endpoint", hint=_HINT_ENV) from None


def _refused(store: Store, location: Location, code: str) -> StorageError:
    return StorageError(f"the object store at {store.endpoint} refused these credentials for {location.uri}: "
                        f"access denied ({code}; credentials from {store.source})", field="credentials",
                        hint=_HINT_CREDENTIALS)


def _reason(error: BaseException) -> str:
    """The innermost cause of a connection failure, in a few words (urllib3 nests them)."""
    reason = getattr(error, "reason", None)
    return _reason(reason) if isinstance(reason, BaseException) else str(error).split(": ", 1)[-1][:200]


def _shown(location: Location) -> str:
    """The URI as errors may show it: a URL without its query (its signature is a bearer credential)."""
    if not location.url:
        return location.uri
    parts = urlsplit(location.uri)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" + ("?<signature>" if parts.query else "")


def _open_url(location: Location, method: str = "GET", body: Any = None, length: int | None = None) -> Any:
    """The response to ``method`` on the URL, with no credentials; HTTP errors say what to check."""
    import urllib.error
    import urllib.request

    headers = {} if body is None else {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
    request = urllib.request.Request(location.uri, data=body, method=method, headers=headers)
    try:
        return _url_opener().open(request, timeout=_URL_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        with error:
            code = re.search(r"<Code>([^<]{1,64})</Code>", error.read(65536).decode(errors="replace"))
        reason = f"{error.code} {code.group(1) if code else error.reason}"
        if error.code == 404:
            raise NotFound(f"{_shown(location)} does not exist ({reason})", field="uri",
                           hint="check the object was uploaded; " + _HINT_URL) from None
        if error.code in (401, 403):
            raise StorageError(f"access to {_shown(location)} denied ({reason})", field="uri", hint=_HINT_URL) from None
        raise StorageError(f"{method} {_shown(location)} failed ({reason})", field="uri",
                           hint="check the URL and the object store's logs") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StorageError(f"cannot reach {urlsplit(location.uri).netloc} for {_shown(location)} "
                           f"({getattr(error, 'reason', None) or error})",
                           field="uri", hint="check the URL, and that the object store is reachable from here") from None


def _put_url(location: Location, body: Any, length: int) -> None:
    with _open_url(location, "PUT", body, length) as response:
        response.read()


def _stream(location: Location, transfer: Any) -> Any:
    """Run ``transfer()`` (reading a response), turning a connection lost midway into a StorageError."""
    import http.client

    try:
        return transfer()
    except (http.client.HTTPException, OSError) as error:
        raise StorageError(f"reading {_shown(location)} failed midway ({error})", field="uri",
                           hint="retry; check the object store is up") from None


@lru_cache(maxsize=1)
def _url_opener() -> Any:
    """urllib without redirects (a URL says exactly where the object is) or proxies (as the MinIO client)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def _settings() -> tuple[str, str | None, str | None, str | None]:
    endpoint = os.environ.get("PODIUM_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or "https://s3.amazonaws.com"
    return (
        endpoint,
        os.environ.get("AWS_ACCESS_KEY_ID"),
        os.environ.get("AWS_SECRET_ACCESS_KEY"),
        os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
    )


@lru_cache(maxsize=8)
def _client(endpoint: str, access_key: str | None, secret_key: str | None, region: str | None,
            session_token: str | None = None) -> Minio:
    from minio import Minio
    from urllib3 import PoolManager, Retry, Timeout

    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StorageError(f"object-store endpoint {endpoint!r} is not an http(s) URL", field="endpoint",
                           hint="set PODIUM_S3_ENDPOINT like http://127.0.0.1:9000")
    # Fail within seconds rather than MinIO's default minutes of retries when the store is down.
    http = PoolManager(timeout=Timeout(connect=5, read=60),
                       retries=Retry(total=3, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)))
    return Minio(parts.netloc, access_key=access_key, secret_key=secret_key, session_token=session_token,
                 region=region, secure=parts.scheme == "https", http_client=http)
