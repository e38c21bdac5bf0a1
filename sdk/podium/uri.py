"""Where a URI points (pure): a local path, a ``file://`` URI or ``s3://bucket/key``; no I/O, no object-store client."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from podium.errors import StorageError


@dataclass(frozen=True)
class Location:
    """Where a URI points: a local path, or a bucket and key."""

    uri: str
    path: Path | None = None
    bucket: str = ""
    key: str = ""

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def name(self) -> str:
        return self.path.name if self.path is not None else self.key.rsplit("/", 1)[-1]


def parse(uri: str | Path) -> Location:
    """Classify ``uri``: a plain path, ``file://`` URI or ``s3://bucket/key``."""
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
    raise StorageError(f"unsupported URI scheme {parts.scheme!r} in {text!r}", field="uri",
                       hint="use a local path, file:///path or s3://bucket/key")
