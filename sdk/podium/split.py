"""Seeded, stratified public/private split of a holdout, stable per row.

Every row gets a pseudo-random 64-bit key that depends only on the seed and the row's id (its index
unless ids are given); within each class the rows with the smallest keys are private. So a row's side
never depends on the order rows or submissions arrive in, nor on anything else in the holdout but its
class's size, and recomputing the split always gives the same answer.

Keys are SplitMix64's finaliser applied to ``id XOR k``, with ``k`` a BLAKE2b digest of the seed: the
finaliser is a bijection on 64-bit integers, so distinct ids never tie, and it is vectorised, so a
million-row holdout splits in milliseconds rather than the seconds per-row hashing would take.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from podium.errors import InvalidConfig, InvalidHoldout

FORMAT_VERSION = 1


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

    format_version: int = FORMAT_VERSION
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
    """Split the holdout whose true labels are ``labels``; ``round(private_fraction · n_class)`` rows
    of each class (of all rows, without ``stratify``) go private.

    ``row_ids`` (unique integers) identify rows independently of their position; by default a row's
    id is its index. Stratify classification holdouts only: continuous targets have no classes.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise InvalidHoldout(f"cannot split a holdout of shape {labels.shape}", field="labels",
                             hint="give one label per holdout row, at least one row")
    if not 0 < private_fraction < 1:
        raise InvalidConfig(f"private_fraction must be strictly between 0 and 1, got {private_fraction}",
                            field="private_fraction",
                            hint="use e.g. 0.5; for public scores only, do not split the holdout at all")
    ids = _row_ids(row_ids, len(labels))
    keys = _row_keys(ids, seed)
    if stratify:
        classes = _classes(labels)
        order = np.lexsort((keys, classes))  # by class, then by key within the class
        counts = np.bincount(classes)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        quota = np.rint(private_fraction * counts).astype(np.int64)
        sorted_classes = classes[order]
        is_private = np.arange(len(labels)) - starts[sorted_classes] < quota[sorted_classes]
    else:
        order = np.argsort(keys)
        is_private = np.arange(len(labels)) < round(private_fraction * len(labels))
    return HoldoutSplit(
        public=np.sort(order[~is_private]),
        private=np.sort(order[is_private]),
        private_fraction=float(private_fraction),
        seed=int(seed),
        stratified=stratify,
    )


def _row_ids(row_ids: Any | None, n: int) -> np.ndarray:
    if row_ids is None:
        return np.arange(n, dtype=np.uint64)
    ids = np.asarray(row_ids)
    if ids.shape != (n,) or ids.dtype.kind not in "iu":
        raise InvalidHoldout(f"row ids must be {n} integers, got shape {ids.shape} of {ids.dtype}",
                             field="row_ids", hint="give one integer id per holdout row")
    if np.unique(ids).size != n:
        raise InvalidHoldout("row ids are not unique", field="row_ids", hint="give every row its own id")
    return ids.astype(np.int64).view(np.uint64)


def _row_keys(ids: np.ndarray, seed: int) -> np.ndarray:
    digest = hashlib.blake2b(str(int(seed)).encode(), digest_size=8, person=b"podium-split").digest()
    z = ids ^ np.frombuffer(digest, dtype="<u8")[0]
    # SplitMix64 finaliser (uint64 arithmetic wraps, as intended).
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _classes(labels: np.ndarray) -> np.ndarray:
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (np.mod(labels, 1) == 0).all()):
        raise InvalidConfig("cannot stratify continuous labels", field="stratify",
                            hint="pass stratify=False for regression holdouts")
    if labels.dtype.kind == "O":
        labels = labels.astype(str)
    return np.unique(labels, return_inverse=True)[1]
