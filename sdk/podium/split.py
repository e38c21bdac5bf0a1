"""Seeded, stratified public/private split of a holdout, stable per row identity.

Every row has a 64-bit identity that does not depend on where the row sits in the file
(:func:`row_identities`): a hash of its id-column value when the playground names one, else a hash of
the row's content (features and label, as read from the stored file) plus its occurrence number among
identical rows. Every row then gets a pseudo-random key from the seed and its identity; within each
class the rows with the smallest keys are private. So re-ordering the same rows gives the same split,
and recomputing it always gives the same answer.

How many rows of each class go private is decided by largest remainder: each class gets the floor of
its share ``private_fraction · n_class``, and the classes with the largest fractional parts (ties broken
by a seeded hash of the class, not its name's order) one more row each, until the total is exactly
``round(private_fraction · n)``. So the overall fraction is exact to one row, and every class is within
one row of its share. A holdout whose split would leave either part empty is refused.

Keys are SplitMix64's finaliser applied to ``identity XOR k``, with ``k`` a BLAKE2b digest of the seed:
the finaliser is a bijection on 64-bit integers, so distinct identities never tie; everything is
vectorised, so a million-row holdout splits in well under a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from podium.errors import InvalidConfig, InvalidHoldout

FORMAT_VERSION = 2  # 2: rows identified by content or id column; per-class quotas by largest remainder

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_FLOAT_TAG = np.uint64(0x5A17F10A75A17F10)  # keeps a non-integral float's bits apart from any integer's
_OCCURRENCE_TAG = np.uint64(0x0CC0BBE5C0FFEE11)
_MAX_INT = 2.0**63


@dataclass(frozen=True)
class HoldoutSplit:
    """Sorted row indices (positions in the holdout) of the public and private parts."""

    public: np.ndarray
    private: np.ndarray
    private_fraction: float
    seed: int
    stratified: bool

    @property
    def n_rows(self) -> int:
        return len(self.public) + len(self.private)

    def to_json(self) -> str:
        return _SplitFile(
            n_rows=self.n_rows,
            private_fraction=self.private_fraction,
            seed=self.seed,
            stratified=self.stratified,
            public=self.public.tolist(),
            private=self.private.tolist(),
        ).model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> HoldoutSplit:
        try:
            data = _SplitFile.model_validate_json(text)
        except ValidationError as error:
            raise InvalidHoldout(f"split file is malformed ({error.error_count()} errors: "
                                 f"{error.errors()[0]['msg']})", field="split",
                                 hint="regenerate it with podium.split.compute_split(...).save(path)") from None
        public = np.asarray(data.public, dtype=np.int64)
        private = np.asarray(data.private, dtype=np.int64)
        covered = np.sort(np.concatenate([public, private]))
        if not np.array_equal(covered, np.arange(data.n_rows)):
            raise InvalidHoldout(
                f"split indices must cover rows 0..{data.n_rows - 1} exactly once each", field="split",
                hint="regenerate it with podium.split.compute_split(...).save(path)",
            )
        return cls(np.sort(public), np.sort(private), data.private_fraction, data.seed, data.stratified)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | Path) -> HoldoutSplit:
        try:
            return cls.from_json(Path(path).read_bytes())
        except FileNotFoundError:
            raise InvalidHoldout(f"split file {path} does not exist", field="split",
                                 hint="check the --split path, or omit it to score every row as public") from None


class _SplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION  # files of earlier versions hold the same fields and still load
    n_rows: int
    private_fraction: float
    seed: int
    stratified: bool
    public: list[int]
    private: list[int]


def compute_split(
    labels: Any,
    *,
    private_fraction: float,
    seed: int,
    stratify: bool = True,
    row_ids: Any | None = None,
) -> HoldoutSplit:
    """Split the holdout whose true labels are ``labels``: ``round(private_fraction · n)`` rows go
    private, allocated to the classes by largest remainder (without ``stratify``, drawn from all rows).

    ``row_ids`` (unique integers, e.g. :func:`row_identities`) identify rows independently of their
    position; by default a row's id is its index, so the split then depends on row order. Stratify
    classification holdouts only: continuous targets have no classes.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise InvalidHoldout(f"cannot split a holdout of shape {labels.shape}", field="labels",
                             hint="give one label per holdout row, at least one row")
    if not 0 < private_fraction < 1:
        raise InvalidConfig(f"private_fraction must be strictly between 0 and 1, got {private_fraction}",
                            field="private_fraction",
                            hint="use e.g. 0.5; for public scores only, do not split the holdout at all")
    n = len(labels)
    total = round(private_fraction * n)
    if not 0 < total < n:
        raise _too_small(n, private_fraction, total)
    keys = _row_keys(_row_ids(row_ids, n), seed)
    by_key = np.argsort(keys)
    if row_ids is not None and (keys[by_key][1:] == keys[by_key][:-1]).any():  # keys are a bijection of ids
        raise InvalidHoldout("row ids are not unique", field="row_ids", hint="give every row its own id")
    if stratify:
        codes, classes = _classes(labels)
    else:
        codes, classes = np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.int64)
    order = by_key[np.argsort(codes[by_key], kind="stable")]  # by class, then by key (lexsort is slower)
    counts = np.bincount(codes, minlength=len(classes))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    quota = _largest_remainder(counts, private_fraction, total, tiebreak=_row_keys(_hash_column(classes), seed))
    sorted_codes = codes[order]
    private = np.empty(n, dtype=bool)
    private[order] = np.arange(n) - starts[sorted_codes] < quota[sorted_codes]
    return HoldoutSplit(
        public=np.flatnonzero(~private),
        private=np.flatnonzero(private),
        private_fraction=float(private_fraction),
        seed=int(seed),
        stratified=stratify,
    )


def row_identities(labels: Any, features: Any | None = None, *, ids: Any | None = None) -> np.ndarray:
    """One 64-bit identity per row, independent of row order: hashed ``ids`` (an id column's values)
    when given, else a hash of the row's ``features`` and label plus its occurrence number among
    identical rows (so duplicates stay distinct, and which duplicate sits where does not matter).

    Values hash by what they denote, not their dtype: ``1``, ``1.0`` and ``True`` are one value, text
    hashes its characters. Hash the rows as read from the stored file, so that re-uploading the same
    file in another order reads the same values.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if ids is not None:
        values = np.asarray(ids)
        if values.shape != (n,):
            raise InvalidHoldout(f"the id column has shape {values.shape}, but the holdout has {n} labels",
                                 field="idColumn", hint="give one id per holdout row")
        return _mix(_hash_column(values) ^ _OCCURRENCE_TAG)
    row = _hash_column(labels)
    for column in _columns(features, n):
        row = _mix(row ^ _hash_column(column))
    return _mix(row ^ _mix(_occurrences(row) + _OCCURRENCE_TAG))


def _columns(features: Any | None, n: int) -> list[np.ndarray]:
    if features is None:
        return []
    if isinstance(features, pd.DataFrame):
        if len(features) != n:
            raise InvalidHoldout(f"the features have {len(features)} rows but the labels {n}", field="features",
                                 hint="store one label per feature row")
        return [features.iloc[:, j].to_numpy() for j in range(features.shape[1])]
    array = np.asarray(features)
    if array.ndim == 0 or len(array) != n:
        raise InvalidHoldout(f"the features have shape {array.shape} but there are {n} labels", field="features",
                             hint="store one label per feature row")
    flat = array.reshape(n, -1)
    if flat.dtype.kind in "biuf":
        bits = _number_bits(flat)  # canonicalise the whole block at once, then combine column by column
        return [bits[:, j] for j in range(bits.shape[1])]
    return [flat[:, j] for j in range(flat.shape[1])]


def _hash_column(values: np.ndarray) -> np.ndarray:
    """A uint64 per element that depends only on the value it denotes."""
    kind = values.dtype.kind
    if kind in "biuf":
        return _mix(_number_bits(values))
    if kind in "mM":
        return _mix(values.view(np.int64).view(np.uint64) ^ _FLOAT_TAG)
    objects = values.astype(object) if kind != "O" else values
    try:  # pandas' SipHash of each string's UTF-8 bytes (fixed key); None/NaN hash alike
        return _mix(pd.util.hash_array(objects, categorize=False))
    except TypeError:  # mixed content (e.g. numbers and text): hash what they print as
        return _mix(pd.util.hash_array(objects.astype(str).astype(object), categorize=False))


def _number_bits(values: np.ndarray) -> np.ndarray:
    """Integral values as their int64 bits, others as tagged float64 bits, and one NaN. ``-0.0`` stays
    apart from ``0``: rows are identical when they read back identically."""
    if values.dtype.kind in "bi":
        return values.astype(np.int64).view(np.uint64)
    if values.dtype.kind == "u":
        return values.astype(np.uint64)
    floats = values.astype(np.float64)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(floats) & (np.trunc(floats) == floats) & (np.abs(floats) < _MAX_INT)
    integral &= ~np.signbit(floats) | (floats != 0)
    as_int = np.where(integral, floats, 0.0).astype(np.int64).view(np.uint64)
    as_float = np.where(np.isnan(floats), np.nan, floats).view(np.uint64) ^ _FLOAT_TAG
    return np.where(integral, as_int, as_float)


def _occurrences(hashes: np.ndarray) -> np.ndarray:
    """For each row, how many other rows with the same hash come before it in sort order (rows with one
    hash are identical, so which of them gets which number changes nothing)."""
    order = np.argsort(hashes)
    ordered = hashes[order]
    index = np.arange(len(hashes))
    first = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], index, 0))
    occurrence = np.empty(len(hashes), dtype=np.uint64)
    occurrence[order] = (index - first).astype(np.uint64)
    return occurrence


def _largest_remainder(counts: np.ndarray, fraction: float, total: int, *, tiebreak: np.ndarray) -> np.ndarray:
    share = fraction * counts
    quota = np.floor(share).astype(np.int64)
    extra = int(total - quota.sum())
    # Largest fractional part first; equal parts in a seeded order, so no class name is favoured.
    order = np.lexsort((tiebreak, -(share - quota)))
    quota[order[:max(extra, 0)]] += 1
    return np.minimum(quota, counts)


def _too_small(n: int, fraction: float, total: int) -> InvalidHoldout:
    empty = "private" if total == 0 else "public"
    need = max(2, int(0.5 / min(fraction, 1 - fraction)))
    while not 0 < round(fraction * need) < need:
        need += 1
    return InvalidHoldout(
        f"{n} rows at privateFraction {fraction} give an empty {empty} part", field="holdout.labels",
        hint=f"a competition needs public and private rows: upload at least {need} rows, or choose a "
             f"competition.privateFraction for which round(privateFraction × {n}) is between 1 and {n - 1}"
        if n >= 2 else "a competition needs public and private rows: upload at least 2 rows",
    )


def _row_ids(row_ids: Any | None, n: int) -> np.ndarray:
    if row_ids is None:
        return np.arange(n, dtype=np.uint64)
    ids = np.asarray(row_ids)
    if ids.shape != (n,) or ids.dtype.kind not in "iu":
        raise InvalidHoldout(f"row ids must be {n} integers, got shape {ids.shape} of {ids.dtype}",
                             field="row_ids", hint="give one integer id per holdout row")
    return ids.astype(np.uint64) if ids.dtype.kind == "u" else ids.astype(np.int64).view(np.uint64)


def _row_keys(ids: np.ndarray, seed: int) -> np.ndarray:
    digest = hashlib.blake2b(str(int(seed)).encode(), digest_size=8, person=b"podium-split").digest()
    return _mix(ids ^ np.frombuffer(digest, dtype="<u8")[0])


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, a bijection on uint64 (the arithmetic wraps, as intended)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _classes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class code of each row, and the sorted classes."""
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (np.mod(labels, 1) == 0).all()):
        raise InvalidConfig("cannot stratify continuous labels", field="stratify",
                            hint="pass stratify=False for regression holdouts")
    if labels.dtype.kind == "O":
        labels = labels.astype(str)
    codes, classes = pd.factorize(labels, sort=True, use_na_sentinel=False)  # hashes; sorting every row is slower
    return codes.astype(np.int64), np.asarray(classes)
