"""Local mode's object store: moto's S3 server on a loopback port, with one bucket ready.

Usage::

    with ObjectStore() as store:
        store.minio_client().put_object(store.bucket, "x", io.BytesIO(b"1"), 1)
        job_env = store.env()       # what a pod (or boto3, or the SDK) needs to reach it

Caveat: moto keeps its state per process, not per server, so two stores running at once in one
process see the same buckets (each on its own port); use distinct bucket names if that matters.
A store started while no other runs in its process starts empty (what earlier ones left is reset),
so a new local cluster never sees an old one's objects.

Every request must be signed (AWS SigV4, by header or presigned URL) with a known credential, as on S3:
the store's own (``access_key``/``secret_key``, what :meth:`ObjectStore.env` hands out) may do anything;
credentials registered with :meth:`ObjectStore.add_grant` only what their :class:`Grant` allows.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterable
from types import TracebackType

import minio
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from podium_operator.local.s3auth import Grant, S3AuthMiddleware, sign_headers

__all__ = ["Grant", "ObjectStore"]


class ObjectStore:
    """An S3-compatible endpoint (plain HTTP, SigV4 verified against known grants) with ``bucket`` created."""

    _running = 0  # stores of this process now serving (they share moto's state)

    def __init__(
        self,
        bucket: str = "podium",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        access_key: str = "podium-local",
        secret_key: str = "podium-local-secret",
        grants: Iterable[Grant] = (),
    ) -> None:
        self._bucket = bucket
        self._host = host
        self._requested_port = port
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._grants = {access_key: Grant(access_key, secret_key, admin=True)}
        self._auth: S3AuthMiddleware | None = None
        for grant in grants:
            self.add_grant(grant)

    def add_grant(self, grant: Grant) -> Grant:
        """Let ``grant``'s credential in (now, or once started), with only what it grants; return it.

        Its prefixes are keys in ``bucket``; ``s3://<bucket>/...`` URIs are accepted too.
        """
        if grant.access_key == self._access_key:
            raise ValueError(f"{grant.access_key!r} is the store's own credential")
        grant = dataclasses.replace(grant, read_prefixes=self._keys(grant.read_prefixes),
                                    write_prefixes=self._keys(grant.write_prefixes),
                                    list_prefixes=self._keys(grant.list_prefixes))
        self._grants[grant.access_key] = grant
        if self._auth is not None:
            self._auth.add_grant(grant)
        return grant

    def _keys(self, prefixes: tuple[str, ...]) -> tuple[str, ...]:
        keys = []
        for prefix in prefixes:
            bucket, _, key = prefix.removeprefix("s3://").partition("/")
            if prefix.startswith("s3://") and bucket != self._bucket:
                raise ValueError(f"{prefix!r} is not in this store's bucket {self._bucket!r}")
            keys.append(key if prefix.startswith("s3://") else prefix)
        return tuple(keys)

    def start(self) -> ObjectStore:
        if self._server is not None:
            raise RuntimeError("The object store is already started.")
        _quiet_request_log()
        self._auth = S3AuthMiddleware(DomainDispatcherApplication(create_backend_app), bucket=self._bucket,
                                      region=self._region, grants=self._grants.values())
        self._server = make_server(self._host, self._requested_port, self._auth, threaded=True,
                                   request_handler=MotoRequestHandler)
        self._port = self._server.server_address[1]
        # Polled for shutdown every 0.1 s (werkzeug's default 0.5 s is what stopping took).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="podium-object-store", daemon=True)
        self._thread.start()
        if ObjectStore._running == 0:
            _reset_moto(self.endpoint, self._access_key, self._secret_key, self._region)
        ObjectStore._running += 1
        client = self.minio_client()
        if not client.bucket_exists(self._bucket):  # it may exist: moto's state is per process
            client.make_bucket(self._bucket)
        return self

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server = self._thread = self._auth = None
        self._port = None
        ObjectStore._running -= 1

    def __enter__(self) -> ObjectStore:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` (known once started)."""
        if self._port is None:
            raise RuntimeError("The object store is not started.")
        return f"http://{self._host}:{self._port}"

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def region(self) -> str:
        return self._region

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    def env(self) -> dict[str, str]:
        """Environment variables for a pod or client (boto3, the AWS CLI and Podium's SDK read them)."""
        return {
            "AWS_ACCESS_KEY_ID": self._access_key,
            "AWS_SECRET_ACCESS_KEY": self._secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self._region,
            "PODIUM_S3_ENDPOINT": self.endpoint,
            "PODIUM_S3_BUCKET": self._bucket,
        }

    def minio_client(self) -> minio.Minio:
        return minio.Minio(
            self.endpoint.removeprefix("http://"),
            access_key=self._access_key,
            secret_key=self._secret_key,
            region=self._region,
            secure=False,
        )


def _quiet_request_log() -> None:
    """Drop werkzeug's per-request lines (moto's server logs every request at INFO)."""
    # Unconditionally: moto's own servers (verbose by default) set this logger to INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _reset_moto(endpoint: str, access_key: str, secret_key: str, region: str) -> None:
    """Drop every bucket and object moto holds in this process (its reset endpoint, signed as the store)."""
    import urllib.request

    url = f"{endpoint}/moto-api/reset"
    headers = sign_headers("POST", url, access_key, secret_key, region=region)
    headers.pop("host")  # urllib sends the same
    request = urllib.request.Request(url, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
