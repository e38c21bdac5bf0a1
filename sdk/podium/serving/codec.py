"""V1 and V2 (Open Inference Protocol) payloads <-> features and predictions; pure, no kserve import.

Requests become the cheapest features the artifact accepts: one NumPy array for plain numeric rows, a
pandas DataFrame only where the artifact needs named columns (a preprocessor written for the example
DataFrame, or text columns). Answers carry the playground's class labels: probability columns in the
playground's label order, predicted labels as the playground spells them (``"1"`` for a model's ``1``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from podium.errors import PodiumError
from podium.predictions import Predictions

_NUMERIC_KINDS = "biuf"
_V2_DTYPES = {
    "BOOL": np.bool_, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}


class RequestError(PodiumError):
    """The client's payload cannot be read as features (answered with HTTP 400)."""


class Tensor(Protocol):
    """What the codec reads of a V2 input (``kserve.InferInput`` has these)."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> list[int]: ...
    @property
    def datatype(self) -> str: ...
    @property
    def data(self) -> Any: ...


@dataclass(frozen=True)
class Layout:
    """How requests become features for one artifact, decided once at load."""

    columns: tuple[str, ...] | None = None  # the example data's column names, in order
    dtypes: tuple[str, ...] | None = None  # one per column
    frame: bool = False  # features must be a DataFrame with ``columns``

    @classmethod
    def of(cls, schema: Any, *, preprocessor: bool) -> Layout:
        """``schema``: the manifest's InputSchema (or None). A DataFrame is built only where it is needed."""
        columns = tuple(schema.columns) if schema is not None and schema.columns is not None else None
        if columns is None:
            return cls()
        dtypes = tuple(schema.dtypes)
        text = any(np.dtype(dtype).kind not in _NUMERIC_KINDS if _known(dtype) else True for dtype in dtypes)
        return cls(columns=columns, dtypes=dtypes, frame=preprocessor or text)


def _known(dtype: str) -> bool:
    try:
        np.dtype(dtype)
    except TypeError:
        return False  # pandas' own dtypes ("category", "string")
    return True


def v1_features(payload: Any, layout: Layout) -> Any:
    """``{"instances": [[...], ...]}`` or ``{"instances": [{"col": v}, ...]}`` as features."""
    if isinstance(payload, bytes | str):  # KServe passes the raw body on when the content-type is not JSON
        try:
            payload = json.loads(payload)
        except ValueError:
            raise RequestError("the request body is not JSON", field="body",
                               hint="send a JSON body with the header content-type: application/json") from None
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise RequestError(
            "the request has no non-empty 'instances' list",
            field="instances",
            hint='send {"instances": [[f1, f2, ...], ...]} or {"instances": [{"column": value, ...}, ...]}',
        )
    first = instances[0]
    if isinstance(first, dict):
        if not all(isinstance(row, dict) for row in instances):
            raise _mixed_rows()
        return _named_rows(instances, layout)
    if isinstance(first, dict | str) or any(isinstance(row, dict) for row in instances):
        raise _mixed_rows()
    return _rows(_array(instances, "instances"), layout)


def v2_features(inputs: Sequence[Tensor], layout: Layout) -> Any:
    """One tensor [n, d] of rows, or one tensor [n] per column (named as the columns)."""
    if not inputs:
        raise RequestError("the request has no inputs", field="inputs",
                           hint='send {"inputs": [{"name": "input", "shape": [n, d], "datatype": "FP32", "data": [...]}]}')
    if len(inputs) == 1 and len(inputs[0].shape) != 1:
        return _rows(_tensor(inputs[0], 0), layout)
    columns = {}
    for index, tensor in enumerate(inputs):
        values = _tensor(tensor, index)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        if values.ndim != 1:
            raise RequestError(
                f"input {tensor.name!r} has shape {list(values.shape)}, but with several inputs each is one column",
                field=f"inputs[{index}].shape", hint="send one tensor of shape [n, d], or one tensor of shape [n] per column",
            )
        columns[str(tensor.name)] = values
    lengths = {len(values) for values in columns.values()}
    if len(lengths) != 1:
        raise RequestError(f"the column inputs have different lengths {sorted(lengths)}", field="inputs",
                           hint="send the same number of rows in every column")
    return _columns(columns, layout, "inputs")


def _tensor(tensor: Tensor, index: int) -> np.ndarray:
    dtype = _V2_DTYPES.get(str(tensor.datatype).upper())
    if dtype is None:
        raise RequestError(f"datatype {tensor.datatype!r} is not supported", field=f"inputs[{index}].datatype",
                           hint=f"use one of {sorted(_V2_DTYPES)}")
    data = tensor.data
    if dtype is np.object_:
        data = [value.decode() if isinstance(value, bytes) else value for value in _flat(data)]
    try:
        values: np.ndarray = np.asarray(data, dtype=dtype)
        return values.reshape(list(tensor.shape))
    except (TypeError, ValueError) as error:
        raise RequestError(
            f"input {tensor.name!r} does not fit shape {list(tensor.shape)} and datatype {tensor.datatype} ({error})",
            field=f"inputs[{index}].data", hint="send shape[0] x shape[1] x ... values of the declared datatype",
        ) from None


def _flat(data: Any) -> list[Any]:
    if isinstance(data, list | tuple) and any(isinstance(value, list | tuple) for value in data):
        return [value for part in data for value in _flat(part)]
    return list(data) if isinstance(data, list | tuple) else [data]


def _array(rows: list[Any], field: str) -> np.ndarray:
    try:
        values = np.asarray(rows)
    except ValueError:  # ragged: numpy refuses inhomogeneous rows
        raise RequestError("the rows have different lengths", field=field,
                           hint="send the same number of features in every row") from None
    if values.ndim < 2:
        raise RequestError(f"each row must be a list of features, got {type(rows[0]).__name__}", field=field,
                           hint="wrap a single row's features in a list: [[f1, f2, ...]]")
    if values.dtype.kind not in _NUMERIC_KINDS and values.dtype.kind != "U":
        values = np.asarray(rows, dtype=object)  # None or mixed values: the model (or its preprocessor) decides
    elif values.dtype.kind == "U":
        values = values.astype(object)
    return values


def _rows(values: np.ndarray, layout: Layout) -> Any:
    """Unnamed rows: the example data's column order is the contract when the artifact needs a DataFrame."""
    if not layout.frame:
        return values
    assert layout.columns is not None
    if values.ndim != 2 or values.shape[1] != len(layout.columns):
        raise RequestError(
            f"rows have {values.shape[1] if values.ndim == 2 else list(values.shape[1:])} features, "
            f"the model takes {len(layout.columns)} columns",
            field="instances", hint=f"send the columns {list(layout.columns)[:20]} in this order, or send named columns",
        )
    return _frame(dict(zip(layout.columns, values.T, strict=True)), layout)


def _named_rows(rows: list[dict[str, Any]], layout: Layout) -> Any:
    if layout.columns is not None and not layout.frame:  # numeric columns: select them, no DataFrame
        missing = [column for column in layout.columns if column not in rows[0]]
        if missing:
            raise _missing(missing, layout, "instances")
        try:
            return _array([[row[column] for column in layout.columns] for row in rows], "instances")
        except KeyError as error:
            raise _missing([str(error.args[0])], layout, "instances") from None
    names = list(dict.fromkeys(key for row in rows for key in row))
    return _columns({name: np.asarray([row.get(name) for row in rows], dtype=object) for name in names}, layout,
                    "instances")


def _columns(columns: dict[str, np.ndarray], layout: Layout, field: str) -> Any:
    if layout.columns is None:
        return _frame(columns, layout)
    missing = [column for column in layout.columns if column not in columns]
    if missing:
        raise _missing(missing, layout, field)
    if layout.frame:
        return _frame(columns, layout)
    return np.column_stack([columns[column] for column in layout.columns])


def _frame(columns: dict[str, np.ndarray], layout: Layout) -> Any:
    import pandas as pd

    frame = pd.DataFrame(columns)
    if layout.columns is None or layout.dtypes is None:
        return frame.infer_objects()
    for column, dtype in zip(layout.columns, layout.dtypes, strict=True):
        if column in frame and str(frame[column].dtype) != dtype:
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError) as error:
                raise RequestError(f"column {column!r} cannot be read as {dtype} ({error})",
                                   field=f"instances.{column}", hint=f"send {dtype} values for {column!r}") from None
    return frame


def _missing(missing: list[str], layout: Layout, field: str) -> RequestError:
    return RequestError(f"the request lacks column(s) {missing[:10]}", field=field,
                        hint=f"send the columns {list(layout.columns or ())[:20]} (extra columns are ignored)")


def _mixed_rows() -> RequestError:
    return RequestError("instances mix lists and objects (or hold bare values)", field="instances",
                        hint="send every row as a list of features, or every row as an object of named columns")


class LabelMap:
    """The model's classes onto the playground's class labels, matched by value or by text (``1`` ~ ``"1"``)."""

    def __init__(self, playground: Sequence[Any] | None):
        self.playground = list(playground) if playground else None
        self._cache: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = {}

    def check(self, classes: Sequence[Any] | None) -> None:
        """At load: refuse a model that predicts classes the playground does not have."""
        if self.playground is not None and classes is not None:
            self._mapping(tuple(classes))

    def apply(self, predictions: Predictions) -> tuple[list[Any], list[list[float]] | None, list[Any] | None]:
        """(labels, probabilities or None, classes or None) as JSON-ready lists."""
        if predictions.proba is None or predictions.classes is None:
            labels = predictions.labels
            if self.playground is not None:
                labels = self._labels(labels, tuple(np.unique(labels).tolist()))
            return labels.tolist(), None, None
        classes = tuple(predictions.classes.tolist())
        if self.playground is None:
            return predictions.labels.tolist(), predictions.proba.tolist(), list(classes)
        columns, _ = self._mapping(classes)
        proba = np.zeros((len(predictions.proba), len(self.playground)))
        proba[:, columns] = predictions.proba
        return self._labels(predictions.labels, classes).tolist(), proba.tolist(), list(self.playground)

    def _labels(self, labels: np.ndarray, classes: tuple[Any, ...]) -> np.ndarray:
        _, playground = self._mapping(classes)
        lookup = {model: playground[index] for index, model in enumerate(classes)}
        return np.asarray([lookup.get(label, label) for label in labels.tolist()], dtype=object)

    def _mapping(self, classes: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray]:
        """For each model class: its playground column, and its playground label."""
        found = self._cache.get(classes)
        if found is not None:
            return found
        assert self.playground is not None
        exact = {label: index for index, label in enumerate(self.playground)}
        text = {str(label): index for index, label in enumerate(self.playground)}
        columns = [exact.get(label, text.get(str(label))) for label in classes]
        unknown = [label for label, column in zip(classes, columns, strict=True) if column is None]
        if unknown:
            raise PodiumError(
                f"the model predicts class(es) {unknown[:10]} that are not among the playground's class labels "
                f"{self.playground[:20]}", field="class_labels",
                hint="save the submission with the playground's class labels, or serve it for the right playground",
            )
        known = [column for column in columns if column is not None]
        result = np.asarray(known, dtype=np.intp), np.array([self.playground[c] for c in known], dtype=object)
        self._cache[classes] = result
        return result


def v1_response(labels: list[Any], proba: list[list[float]] | None, classes: list[Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"predictions": labels}
    if proba is not None:
        body["probabilities"] = proba
        body["classes"] = classes
    return body


def v2_outputs(labels: list[Any], proba: list[list[float]] | None, classes: list[Any] | None) -> list[dict[str, Any]]:
    """Output tensors as plain dicts (name, shape, datatype, data[, parameters])."""
    datatype = _datatype(labels)
    data = [str(label) for label in labels] if datatype == "BYTES" else labels
    outputs: list[dict[str, Any]] = [{"name": "label", "shape": [len(labels)], "datatype": datatype, "data": data}]
    if proba is not None:
        outputs.append({"name": "probabilities", "shape": [len(proba), len(classes or ())], "datatype": "FP64",
                        "data": [value for row in proba for value in row],
                        "parameters": {"classes": json.dumps(classes)}})
    return outputs


def _datatype(values: list[Any]) -> str:
    if all(isinstance(value, bool) for value in values):
        return "BOOL"
    if all(isinstance(value, int) and not isinstance(value, bool) for value in values):
        return "INT64"
    if all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
        return "FP64"
    return "BYTES"
