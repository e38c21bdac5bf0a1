"""KServe's storage initializer, locally: fetch an ``s3://bucket/key`` artifact into a cache directory, once.

As KServe's ``Storage._download_s3``: a key naming one object downloads that object; otherwise every object
under ``key/`` is downloaded, keeping its path below the prefix; a single ``.tar.gz``/``.tgz``/``.tar``/``.zip``
download is unpacked (and removed). Each URI is fetched at most once per cache (concurrent callers wait for
the first); a failed fetch leaves nothing behind and may be retried.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import minio
from minio.error import S3Error


class StorageError(Exception):
    """The artifact cannot be fetched (the message says why, for ``lastFailureInfo``)."""


@dataclass(frozen=True)
class S3Access:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self) -> minio.Minio:
        host = self.endpoint.removeprefix("http://").removeprefix("https://")
        return minio.Minio(host, access_key=self.access_key, secret_key=self.secret_key, region=self.region,
                           secure=self.endpoint.startswith("https://"))


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise StorageError(f"storageUri {uri!r}: local mode fetches s3:// URIs only (s3://<bucket>/<key>)")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key.strip("/"):
        raise StorageError(f"storageUri {uri!r}: needs a bucket and a key (s3://<bucket>/<key>)")
    return bucket, key.strip("/")


class ArtifactCache:
    """``fetch(uri)`` → a directory holding the artifact; blocking (run it in a thread)."""

    def __init__(self, root: Path, access: S3Access) -> None:
        self.root = root
        self._access = access
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self.downloads = 0  # objects downloaded so far (tests check nothing is fetched twice)

    def path_for(self, uri: str) -> Path:
        return self.root / hashlib.sha256(uri.encode()).hexdigest()[:24]

    def fetch(self, uri: str) -> Path:
        target = self.path_for(uri)
        with self._lock:
            lock = self._locks.setdefault(uri, threading.Lock())
        with lock:
            if (target / ".complete").exists():
                return target / "model"
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            try:
                self._download(uri, partial / "model")
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                raise
            (partial / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
            return target / "model"

    def _download(self, uri: str, into: Path) -> None:
        bucket, key = parse_s3_uri(uri)
        client = self._access.client()
        into.mkdir(parents=True)
        try:
            objects = [(key, PurePosixPath(key).name)] if _exists(client, bucket, key) else [
                (o.object_name, o.object_name[len(key) + 1:])
                for o in client.list_objects(bucket, prefix=key + "/", recursive=True)
                if o.object_name and not o.object_name.endswith("/")]
            if not objects:
                raise StorageError(f"Failed to fetch model. No model found in {uri}.")
            for name, relative in objects:
                path = into / relative
                if not path.resolve().is_relative_to(into.resolve()):
                    raise StorageError(f"{uri}: object {name!r} would land outside the model directory")
                path.parent.mkdir(parents=True, exist_ok=True)
                client.fget_object(bucket, name, str(path))
                self.downloads += 1
        except S3Error as e:
            raise StorageError(f"Failed to fetch model from {uri}: {e.code}: {e.message}") from e
        if len(objects) == 1:
            _unpack(into / objects[0][1], into)


def _exists(client: minio.Minio, bucket: str, key: str) -> bool:
    try:
        client.stat_object(bucket, key)
    except S3Error as e:
        if e.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
            return False
        raise
    return True


def _unpack(path: Path, into: Path) -> None:
    """Unpack a single downloaded archive in place, as KServe does (tar and zip)."""
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as archive:
            archive.extractall(into, filter="data")
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            archive.extractall(into)
    else:
        return
    path.unlink()
