"""Is a holdout scorable? The checks a Playground passes before it is Ready, shared by operator and score step.

A holdout that cannot score every submission must never be Ready: each problem here would otherwise
surface later as a failed submission whose message blames the submitter. :func:`check_holdout` and
:func:`check_parts` are pure (arrays and a spec in, :class:`~podium.errors.InvalidHoldout` out, naming
the spec field at fault and the fix); :func:`load` reads the stored files and :func:`prepare` runs the
whole sequence: read, check, split by row identity, check that the primary metric is defined on each part.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from podium import data
from podium.api.playground import PlaygroundSpec
from podium.errors import InvalidHoldout, PodiumError
from podium.metrics.labels import class_list, encode
from podium.split import HoldoutSplit, compute_split, row_identities

_SHOWN = 5  # offending rows or values quoted in a message
_MIN_ROWS = {"r2": 2}  # rows a part needs for the metric to be defined
_MIN_CLASSES = {"roc_auc": 2}  # distinct true classes a part needs


@dataclass(frozen=True)
class Holdout:
    """A holdout as read from its stored files."""

    features: pd.DataFrame | np.ndarray
    labels: np.ndarray  # text for classification, float64 for regression
    labels_header: str | None = None  # the label column's header in a CSV (see data.label_header)
    ids: np.ndarray | None = None  # the id column's values, when spec.holdout.idColumn names one


@dataclass(frozen=True)
class PreparedHoldout:
    holdout: Holdout
    split: HoldoutSplit | None  # None without a competition


def load(features: Path, labels: Path, spec: PlaygroundSpec) -> Holdout:
    """Read the stored holdout for ``spec``'s task; reading errors name ``holdout.features``/``holdout.labels``."""
    try:
        table = data.read_features(features)
        values = data.read_labels(labels, task=spec.task)
        header = data.label_header(labels)
        ids = None
        if spec.holdout.id_column:
            ids = data.read_column(labels, spec.holdout.id_column, field="labels")
            if ids is None and isinstance(table, pd.DataFrame) and spec.holdout.id_column in table.columns:
                ids = table[spec.holdout.id_column].to_numpy()
    except PodiumError as error:
        field = error.field if error.field not in ("labels", "features") else f"holdout.{error.field}"
        raise InvalidHoldout(error.problem, field=field, hint=error.hint) from None
    return Holdout(table, values, header, ids)


def prepare(features: Path, labels: Path, spec: PlaygroundSpec) -> PreparedHoldout:
    """Read, check and split the holdout: what a Playground needs before it is Ready."""
    holdout = load(features, labels, spec)
    check_holdout(holdout, spec)
    split = split_holdout(holdout, spec)
    check_parts(holdout.labels, spec, split)
    return PreparedHoldout(holdout, split)


def without_ids(holdout: Holdout, spec: PlaygroundSpec) -> pd.DataFrame | None:
    """The features minus ``spec.holdout.idColumn`` when the features file has that column (else None: the
    features stay as stored). Models never see row identity: an id can leak the label (a sorted file)."""
    column = spec.holdout.id_column
    if column and isinstance(holdout.features, pd.DataFrame) and column in holdout.features.columns:
        return holdout.features.drop(columns=[column])
    return None


def split_holdout(holdout: Holdout, spec: PlaygroundSpec) -> HoldoutSplit | None:
    """The competition's public/private split by row identity (id column, else content); None without one."""
    competition = spec.competition
    if competition is None:
        return None
    identities = row_identities(holdout.labels, holdout.features, ids=holdout.ids)
    return compute_split(holdout.labels, private_fraction=competition.private_fraction, seed=competition.seed,
                         stratify=spec.task == "classification", row_ids=identities)


def check_holdout(holdout: Holdout, spec: PlaygroundSpec) -> None:
    """Everything that does not depend on the split: rows, header, ids, labels against the task and classes."""
    labels = holdout.labels
    if np.ndim(holdout.features) == 0:
        raise InvalidHoldout("holds a single value, not a table of rows", field="holdout.features",
                             hint="store one row of features per holdout row")
    n_features = len(holdout.features)
    _check_header(holdout.labels_header, n_features, len(labels), spec)
    if n_features != len(labels):
        raise InvalidHoldout(
            f"holdout.features has {n_features} rows but holdout.labels has {len(labels)}", field="holdout",
            hint="store one label per feature row, in the same order",
        )
    if len(labels) == 0:
        raise InvalidHoldout("holds no rows", field="holdout.labels", hint="upload a non-empty holdout")
    if spec.holdout.id_column:
        _check_ids(holdout.ids, spec.holdout.id_column)
    if spec.task == "classification":
        _check_class_labels(labels, spec.class_labels or [])
    else:
        _check_targets(labels)


def check_parts(labels: np.ndarray, spec: PlaygroundSpec, split: HoldoutSplit | None) -> None:
    """The primary metric must be defined on every part scored: the public part (every row without a
    competition) and the private one."""
    if split is None:
        parts = {"public": np.arange(len(labels))}
    else:
        if split.n_rows != len(labels):
            raise InvalidHoldout(f"the split covers {split.n_rows} rows but the holdout has {len(labels)}",
                                 field="status.split", hint="let the operator recompute the split")
        parts = {"public": split.public, "private": split.private}
    metric = spec.primary_metric
    for part, rows in parts.items():
        where = f"the {part} part" if split is not None else "the holdout"
        fix = "upload more rows"
        if split is not None:
            fix += ", lower competition.privateFraction" if part == "public" else ", raise competition.privateFraction"
        need_rows = _MIN_ROWS.get(metric, 1)
        if len(rows) < need_rows:
            raise InvalidHoldout(
                f"{metric} is undefined on {where}, which has {len(rows)} row{'s' if len(rows) != 1 else ''} "
                f"({metric} needs at least {need_rows})", field="primaryMetric",
                hint=f"{fix}, or rank by another metric",
            )
        need_classes = _MIN_CLASSES.get(metric, 0)
        present = np.unique(labels[rows]) if need_classes else np.empty(0)
        if len(present) < need_classes:
            raise InvalidHoldout(
                f"{metric} is undefined on {where}, whose rows all have class {present[0].item()!r} "
                f"({metric} needs at least {need_classes} classes present)", field="primaryMetric",
                hint=f"{fix}, add rows of other classes, or rank by another metric",
            )


def _check_header(header: str | None, n_features: int, n_labels: int, spec: PlaygroundSpec) -> None:
    """A CSV without a header row loses its first label to the header: one label short, and the header
    is itself a label. (The same header with as many labels as feature rows is just a header named so.)"""
    if header is None or n_labels != n_features - 1:
        return
    name = spec.holdout.labels.rstrip("/").rsplit("/", 1)[-1]
    if header in (spec.class_labels or []) or _is_number(header):
        raise InvalidHoldout(
            f"{name} has no header row: its first line {header!r} was read as the column name, so the first "
            "label is missing", field="holdout.labels",
            hint="write a header line such as 'label' above the labels (podium.data.write_table writes one)",
        )


def _is_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def _check_ids(ids: np.ndarray | None, column: str) -> None:
    if ids is None:
        raise InvalidHoldout(f"no column {column!r} in the labels or the features", field="holdout.idColumn",
                             hint="add the id column to the labels file (e.g. id,label), or unset idColumn")
    missing = pd.isna(ids) | (ids.astype(str) == "") if ids.dtype.kind in "OUS" else pd.isna(ids)
    if missing.any():
        rows = np.flatnonzero(missing)[:_SHOWN].tolist()
        raise InvalidHoldout(f"column {column!r} has rows without an id (rows {rows})", field="holdout.idColumn",
                             hint="give every row an id")
    repeated = pd.unique(ids[pd.Series(ids).duplicated().to_numpy()])[:_SHOWN].tolist()
    if repeated:
        raise InvalidHoldout(f"column {column!r} repeats ids such as {repeated}", field="holdout.idColumn",
                             hint="give every row its own id, or unset idColumn to identify rows by content")


def _check_class_labels(labels: np.ndarray, classes: list[str]) -> None:
    twice = sorted(name for name, count in Counter(classes).items() if count > 1)
    if twice:
        raise InvalidHoldout(f"lists {twice[:_SHOWN]} more than once", field="classLabels",
                             hint="list each class once")
    empty = np.flatnonzero(_missing(labels))
    if empty.size:
        raise InvalidHoldout(
            f"{empty.size} row{'s' if empty.size > 1 else ''} have no label (empty or NaN; first rows "
            f"{empty[:_SHOWN].tolist()})", field="holdout.labels",
            hint="give every row a class from classLabels, or drop those rows from both features and labels",
        )
    encode(labels, class_list(classes), field="holdout.labels", error=InvalidHoldout,
           unknown_hint="add them to classLabels, or correct the holdout labels")


def _check_targets(labels: np.ndarray) -> None:
    if labels.dtype.kind not in "biuf":
        text = next((value for value in labels.tolist() if not _is_number(str(value))), labels[0])
        raise InvalidHoldout(f"holds text labels such as {str(text)!r}, but a regression playground needs numbers",
                             field="holdout.labels",
                             hint="store numeric targets, or make it a classification playground with classLabels")
    bad = np.flatnonzero(~np.isfinite(labels.astype(np.float64)))
    if bad.size:
        raise InvalidHoldout(
            f"{bad.size} row{'s' if bad.size > 1 else ''} have no finite target (empty, NaN or infinite; first "
            f"rows {bad[:_SHOWN].tolist()})", field="holdout.labels",
            hint="give every row a number, or drop those rows from both features and labels",
        )


def _missing(labels: Any) -> np.ndarray:
    array = np.asarray(labels)
    if array.dtype.kind == "U":
        return np.char.str_len(array) == 0
    if array.dtype.kind == "f":
        return np.isnan(array)
    if array.dtype.kind == "O":
        return np.asarray(pd.isna(array) | (array.astype(str) == ""), dtype=bool)
    return np.zeros(len(array), dtype=bool)
