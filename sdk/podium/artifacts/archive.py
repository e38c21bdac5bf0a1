"""Pack an artifact directory into a reproducible .tar.gz and unpack one safely.

``pack`` writes members in sorted order with zeroed times and owners, so the same files give the
same bytes. ``unpack`` checks every member before extracting anything: absolute paths, ``..``,
links leaving the destination and device files are refused, then Python's ``data`` filter
extracts as a second line of defence.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from pathlib import Path, PurePosixPath

from podium.artifacts.errors import CorruptArchive, UnsafeArchive

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_GZIP_MAGIC = b"\x1f\x8b"


def is_archive(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.name.endswith(ARCHIVE_SUFFIXES):
        return True
    with path.open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def pack(directory: str | Path, archive: str | Path | None = None) -> Path:
    """``directory`` as ``<directory>.tar.gz`` (or ``archive``); members are relative to it."""
    directory = Path(directory)
    target = Path(archive) if archive is not None else directory.with_name(directory.name + ".tar.gz")
    with (
        target.open("wb") as raw,
        gzip.GzipFile(
            filename="", fileobj=raw, mode="wb", mtime=0
        ) as zipped,  # no name or time in the header
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(directory.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(directory).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return target


def unpack(archive: str | Path, dest: str | Path) -> Path:
    """Extract ``archive`` into ``dest`` after checking that no member can escape it."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()  # reads the whole archive, so truncation shows up here
            for member in members:
                _check_member(member)
            tar.extractall(dest, members=members, filter="data")
    except (
        tarfile.ReadError,
        tarfile.CompressionError,
        EOFError,
        zlib.error,
        gzip.BadGzipFile,
        io.UnsupportedOperation,
    ) as error:
        raise CorruptArchive(
            f"{archive.name} is not a readable .tar.gz ({' '.join(str(error).split()) or type(error).__name__})",
            field="artifact",
            hint="re-create it with podium.artifacts.pack (or `tar czf`) and upload it again completely",
        ) from error
    except tarfile.FilterError as error:
        raise UnsafeArchive(
            str(error), field="artifact", hint="archive only regular files and directories"
        ) from error
    return dest


def _check_member(member: tarfile.TarInfo) -> None:
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or (name.parts and ":" in name.parts[0]):
        _refuse(member, "has an absolute path")
    if ".." in name.parts:
        _refuse(member, "contains '..'")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        base = name.parent if member.issym() else PurePosixPath()
        if target.is_absolute() or _escapes(base / target):
            _refuse(member, f"links outside the archive (to {member.linkname!r})")
    if member.isdev() or member.isfifo():
        _refuse(member, "is a device or FIFO")


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def _refuse(member: tarfile.TarInfo, reason: str) -> None:
    raise UnsafeArchive(
        f"archive member {member.name!r} {reason}",
        field="artifact",
        hint="archive the submission directory with podium.artifacts.pack; only regular files and directories are allowed",
    )
