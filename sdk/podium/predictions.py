"""What crosses from the untrusted predict step to the trusted score step: the predictions file, read with care.

Stored as a NumPy ``.npz`` archive without pickles, so loading it can never run code:
``labels`` (n,) predicted labels or regression values, optional ``proba`` (n, k) class
probabilities whose columns follow ``classes`` (k,).

Whatever the predict step leaves behind may be hostile (a symlink, a FIFO, a huge or crafted file):
:func:`open_untrusted` is the one way to open it (no links followed, no blocking, regular files within a
size limit only), and :func:`load_predictions` reads the archive within a byte budget, checking each
array's declared dtype and size before reading it. Every refusal is an :class:`InvalidPredictions`
naming the field (``predictions``, ``predictions.labels``, ...) and a fix.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from podium.errors import InvalidPredictions

FORMAT_VERSION = 1
MAX_PREDICTIONS_BYTES = 1 << 30  # the file, and separately the arrays it unpacks to
MAX_MEMBERS = 16  # save_predictions writes four arrays
_MAX_DIRECTORY_BYTES = 64 << 10
_HINT = "write predictions with podium.predictions.save_predictions"
_KINDS = {  # dtype kinds each array may have: bool, integers, floats, and text for labels and classes
    "labels": ("biufUS", "but labels and values must be booleans, integers, real numbers or text",
               "save predicted labels or values as numbers or strings"),
    "proba": ("biuf", "but probabilities must be real numbers", "save model.predict_proba(X) as float64"),
    "classes": ("biufUS", "but class labels must be booleans, integers, real numbers or text",
                "save the model's classes_ as numbers or strings"),
}


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    proba: np.ndarray | None = None
    classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("labels", "classes"):
            if getattr(self, name) is not None and np.ndim(getattr(self, name)) == 0:
                raise InvalidPredictions("is a single value, not one per row" if name == "labels" else
                                         "is a single value, not one per class", field=f"predictions.{name}",
                                         hint="give a 1-D array")
        if (self.proba is None) != (self.classes is None):
            missing = "classes" if self.classes is None else "proba"
            raise InvalidPredictions(f"'proba' and 'classes' must be given together; '{missing}' is missing",
                                     field=f"predictions.{missing}", hint="pass the model's classes_ with predict_proba")
        if (
            self.proba is not None
            and self.classes is not None
            and (self.proba.ndim != 2 or self.proba.shape != (len(self.labels), len(self.classes)))
        ):
            raise InvalidPredictions(
                f"has shape {self.proba.shape}, expected ({len(self.labels)}, {len(self.classes)}) = (rows, classes)",
                field="predictions.proba", hint="give one row of class probabilities per row, one column per class",
            )

    def __len__(self) -> int:
        return len(self.labels)


def _portable(values: np.ndarray) -> np.ndarray:
    """Object arrays (e.g. pandas strings) become fixed-width unicode so no pickle is needed."""
    values = np.asarray(values)
    return values.astype(str) if values.dtype == object else values


def save_predictions(predictions: Predictions, path: str | Path) -> Path:
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "labels": _portable(predictions.labels),
    }
    if predictions.proba is not None and predictions.classes is not None:
        arrays["proba"] = np.asarray(predictions.proba, dtype=np.float64)
        arrays["classes"] = _portable(predictions.classes)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy stubs misread **kwargs
    return path


def _file_kind(mode: int) -> str:
    kinds = {stat.S_ISFIFO: "FIFO", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
             stat.S_ISDIR: "directory", stat.S_ISSOCK: "socket"}
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def open_untrusted(path: str | Path, *, field: str, limit: int, hint: str) -> BinaryIO | None:
    """Open a file the untrusted predict step may have written; None when there is none.

    The last path component must not be a symbolic link (``O_NOFOLLOW``), opening never blocks
    (``O_NONBLOCK``: a FIFO is refused, not waited on), and the opened file must be a regular one
    (``fstat``) of at most ``limit`` bytes. Anything else is an :class:`InvalidPredictions` for ``field``.
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.EMLINK) or path.is_symlink():
            raise InvalidPredictions(f"{path.name} is a symbolic link, which the score step does not follow",
                                     field=field, hint=hint) from None
        raise InvalidPredictions(f"{path.name} cannot be opened ({error.strerror})", field=field, hint=hint) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidPredictions(f"{path.name} is not a regular file (it is a {_file_kind(info.st_mode)})",
                                     field=field, hint=hint)
        if info.st_size > limit:
            raise InvalidPredictions(f"{path.name} is {info.st_size} bytes, more than the {limit} allowed",
                                     field=field, hint=hint)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load_predictions(path: str | Path, *, limit: int | None = None) -> Predictions:
    """Read a predictions file within ``limit`` bytes (default :data:`MAX_PREDICTIONS_BYTES`), file and arrays."""
    limit = MAX_PREDICTIONS_BYTES if limit is None else limit
    file = open_untrusted(path, field="predictions", limit=limit, hint=_HINT)
    if file is None:
        raise InvalidPredictions(f"predictions file {path} does not exist", field="predictions",
                                 hint="check the --predictions path or URI")
    with file:
        arrays = _read_archive(file, Path(path).name, budget=limit)
    return Predictions(labels=arrays["labels"], proba=arrays.get("proba"), classes=arrays.get("classes"))


def _unreadable(name: str, detail: object) -> InvalidPredictions:
    return InvalidPredictions(f"{name} is unreadable ({detail})", field="predictions", hint=_HINT)


def _check_directory(file: BinaryIO, name: str) -> None:
    """Refuse a zip whose central directory is large before ``zipfile`` parses it (found as zipfile finds it)."""
    size = file.seek(0, os.SEEK_END)
    tail = min(size, 22 + 0xFFFF + 20)
    file.seek(size - tail)
    data = file.read(tail)
    at = len(data) - 22 if data[-22:-18] == b"PK\x05\x06" and data[-2:] == b"\0\0" else data.rfind(b"PK\x05\x06")
    if at < 0 or len(data) - at < 22:
        raise _unreadable(name, "not a .npz archive")
    if data[max(at - 20, 0):at].startswith(b"PK\x06\x07"):
        raise _unreadable(name, "a ZIP64 archive, which a predictions file never needs")
    entries, directory = struct.unpack("<HI", data[at + 10:at + 16])
    if entries > MAX_MEMBERS or directory > _MAX_DIRECTORY_BYTES:
        raise InvalidPredictions(
            f"{name} lists {entries} entries in {directory} bytes of zip directory; a predictions file holds "
            f"at most {MAX_MEMBERS} arrays", field="predictions", hint=_HINT)
    file.seek(0)


def _read_archive(file: BinaryIO, name: str, *, budget: int) -> dict[str, np.ndarray]:
    _check_directory(file, name)
    try:
        with zipfile.ZipFile(file) as archive:
            members = {info.filename: info for info in archive.infolist()}
            wanted = [key for key in _KINDS if f"{key}.npy" in members]
            if "labels" not in wanted:
                raise InvalidPredictions(f"{name} has no 'labels' array", field="predictions", hint=_HINT)
            unpacked = sum(members[f"{key}.npy"].file_size for key in wanted)
            if unpacked > budget:
                raise InvalidPredictions(f"{name} unpacks to {unpacked} bytes (uncompressed), more than the "
                                         f"{budget} allowed", field="predictions", hint=_HINT)
            return {key: _read_array(archive, members[f"{key}.npy"], key) for key in wanted}
    except InvalidPredictions:
        raise
    except Exception as error:  # whatever a crafted archive makes zipfile or a decompressor raise
        raise _unreadable(name, f"{type(error).__name__}: {error}") from None


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str) -> np.ndarray:
    """One array: its header checked (dtype, and a size its file can hold) before its data is read."""
    field = f"predictions.{key}"
    kinds, problem, hint = _KINDS[key]
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f".npy format version {version}")
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(member)
    except (ValueError, TypeError, SyntaxError) as error:
        raise InvalidPredictions(f"cannot be read ({error})", field=field, hint=_HINT) from None
    if dtype.kind not in kinds or dtype.itemsize == 0 or dtype.fields is not None or dtype.subdtype is not None:
        raise InvalidPredictions(f"has dtype {dtype}, {problem}", field=field, hint=hint)
    count = math.prod(shape)
    if any(dim < 0 for dim in shape) or count * dtype.itemsize > info.file_size:
        raise InvalidPredictions(
            f"claims {shape[0] if shape else 1} rows (shape {shape}, {count * dtype.itemsize} bytes), more than "
            f"its {info.file_size}-byte file holds", field=field, hint=_HINT)
    try:
        with archive.open(info) as member:
            array = np.lib.format.read_array(member, allow_pickle=False)
    except (ValueError, TypeError, EOFError) as error:
        raise InvalidPredictions(f"cannot be read ({error})", field=field, hint=_HINT) from None
    return _valid_text(array, field)


def _valid_text(array: np.ndarray, field: str) -> np.ndarray:
    """Bytes as ASCII text; text of valid code points only (numpy stores any 32-bit value)."""
    if array.dtype.kind == "S":
        if array.size and np.ascontiguousarray(array).reshape(-1).view(np.uint8).max() >= 0x80:
            raise InvalidPredictions("holds bytes that are not ASCII text", field=field,
                                     hint="save labels as str (np.asarray(labels, dtype=str)), not bytes")
        return array.astype(str)
    if array.dtype.kind == "U" and array.size:
        codes = np.ascontiguousarray(array).reshape(-1).view(array.dtype.byteorder.replace("|", "=") + "u4")
        if (codes > 0x10FFFF).any() or ((codes >= 0xD800) & (codes <= 0xDFFF)).any():
            raise InvalidPredictions("holds text that is not valid Unicode", field=field,
                                     hint="save labels as ordinary Python strings")
    return array
