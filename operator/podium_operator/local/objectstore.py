"""Local mode's object store: moto's S3 server on a loopback port, with one bucket ready.

Usage::

    with ObjectStore() as store:
        store.minio_client().put_object(store.bucket, "x", io.BytesIO(b"1"), 1)
        job_env = store.env()       # what a pod (or boto3, or the SDK) needs to reach it

Caveat: moto keeps its state per process, not per server, so two stores in one process
see the same buckets (each on its own port); use distinct bucket names if that matters.
"""

from __future__ import annotations

import logging
from types import TracebackType

import minio
from moto.server import ThreadedMotoServer


class ObjectStore:
    """An S3-compatible endpoint (plain HTTP, any signature accepted) with ``bucket`` created."""

    def __init__(
        self,
        bucket: str = "podium",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        access_key: str = "podium-local",
        secret_key: str = "podium-local-secret",
    ) -> None:
        self._bucket = bucket
        self._host = host
        self._requested_port = port
        self._region = region
        self._access_key = access_key
        self._secret_key = secret_key
        self._server: ThreadedMotoServer | None = None
        self._port: int | None = None

    def start(self) -> ObjectStore:
        if self._server is not None:
            raise RuntimeError("The object store is already started.")
        _quiet_request_log()
        self._server = ThreadedMotoServer(ip_address=self._host, port=self._requested_port, verbose=False)
        self._server.start()
        self._port = self._server.get_host_and_port()[1]
        client = self.minio_client()
        if not client.bucket_exists(self._bucket):  # it may exist: moto's state is per process
            client.make_bucket(self._bucket)
        return self

    def stop(self) -> None:
        """Stop serving. Idempotent."""
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        self._port = None

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
