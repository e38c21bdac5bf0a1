"""Where a URI points (pure): a local path, a ``file://`` URI, ``s3://bucket/key`` or an ``http(s)://`` URL
(a presigned object URL); no I/O, no object-store client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from podium.errors import StorageError


@dataclass(frozen=True)
class Location:
    """Where a URI points: a local path, a bucket and key, or (``url``) an http(s) URL whose ``key`` is its path."""

    uri: str
    path: Path | None = None
    bucket: str = ""
    key: str = ""
    url: bool = False  # an http(s) URL, e.g. presigned: fetched as it is, with no credentials

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.key.rsplit("/", 1)[-1]


def parse(uri: str | Path) -> Location:
    """Classify ``uri``: a plain path, ``file://`` URI, ``s3://bucket/key`` or ``http(s)://`` URL.

    A URL's ``key`` is its decoded path without the leading ``/`` (for a path-style presigned URL,
    ``bucket/key``), never its query, so its ``name`` is the object's name.
    """
    text = str(uri)
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # one letter: a Windows drive
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise StorageError(f"file URI {text!r} names host {parts.netloc!r}", field="uri",
                                   hint="use file:///absolute/path (three slashes) or a plain path")
            return Location(text, path=Path(unquote(parts.path)))
        return Location(text, path=Path(text))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"S3 URI {text!r} has no bucket", field="uri", hint="use s3://bucket/key")
        return Location(text, bucket=parts.netloc, key=parts.path.lstrip("/"))
    if parts.scheme in ("http", "https"):
        if not parts.netloc:
            raise StorageError(f"URL {text!r} has no host", field="uri", hint="use http(s)://host/path")
        return Location(text, key=unquote(parts.path).lstrip("/"), url=True)
    raise StorageError(f"unsupported URI scheme {parts.scheme!r} in {text!r}", field="uri",
                       hint="use a local path, file:///path, s3://bucket/key or a presigned http(s):// URL")


# --- Participants' uploads -----------------------------------------------------------------------
# A Submission may name only objects below its submitter's own upload prefix: the trusted stage and
# score steps fetch what a Submission names with the operator's access, so anything else (a holdout,
# a stored split, another participant's upload or private score) would be read on the submitter's behalf.

UPLOADS = "uploads"
ANONYMOUS = "anonymous"  # the submitter where nobody authenticated (local mode without identities)


def upload_prefix(bucket: str, namespace: str, playground: str, submitter: str) -> str:
    """``s3://bucket/uploads/<namespace>/<playground>/<submitter>/`` (the submitter percent-encoded)."""
    return f"s3://{bucket}/{UPLOADS}/{namespace}/{playground}/{quote(submitter or ANONYMOUS, safe='')}/"


def outside_prefix(uri: str, prefix: str) -> str | None:
    """Why ``uri`` is not one object below ``prefix`` (an ``s3://`` prefix ending in ``/``); None when it is.

    Only a plain ``s3://`` key counts: no local path or ``file://`` URI (the trusted steps would read the
    operator's host), no query or fragment, no empty, ``.`` or ``..`` segment that a client or server
    could normalise into another key.
    """
    text = str(uri)
    if not text.startswith("s3://"):
        return f"{text!r} is not an s3:// object"
    if any(char in text for char in "?#\\") or any(ord(char) < 32 for char in text):
        return f"{text!r} holds characters an object key may not have here (? # \\ or control characters)"
    if not text.startswith(prefix) or len(text) == len(prefix):
        return f"{text!r} is not below {prefix}"
    if any(segment in ("", ".", "..") for segment in text[len("s3://"):].split("/")):
        return f"{text!r} has an empty, '.' or '..' path segment"
    return None
