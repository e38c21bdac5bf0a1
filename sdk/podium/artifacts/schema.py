"""The input schema recorded from example data, and conforming holdout features to it."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from podium.frameworks.base import fit_rows
from podium.frameworks.errors import ModelInputError


class InputSchema(BaseModel):
    """What one row of raw features (before any preprocessor) looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str] | None = None  # None when the example was an unnamed array
    dtypes: list[str]  # one per column, or the single array dtype
    shape: list[int | None]  # batch dimension first, as None

    @classmethod
    def from_example(cls, data: Any) -> InputSchema:
        if hasattr(data, "columns") and hasattr(data, "dtypes"):
            return cls(
                columns=[str(column) for column in data.columns],
                dtypes=[str(dtype) for dtype in data.dtypes],
                shape=[None, len(data.columns)],
            )
        values = np.asarray(data)
        return cls(dtypes=[str(values.dtype)], shape=[None, *values.shape[1:]])


def conform(features: Any, schema: InputSchema | None) -> Any:
    """Features with the saved columns in the saved order; a clear error when they do not fit."""
    if schema is None:
        return features
    if schema.columns is not None and hasattr(features, "columns"):
        names = [str(column) for column in features.columns]
        missing = [column for column in schema.columns if column not in names]
        if missing:
            raise ModelInputError(
                f"features lack column(s) {missing[:10]} present in the example data the model was saved with",
                field="features",
                hint=f"provide the columns {schema.columns[:20]} (extra columns are ignored)",
            )
        if names == schema.columns:
            return features
        features = features.copy(deep=False)
        features.columns = names
        return features[schema.columns]
    width = tuple(features.shape[1:] if hasattr(features, "shape") else np.asarray(features).shape[1:])
    expected = tuple(schema.shape[1:])
    if width == expected:
        return features
    # image rows without the example's channel axis, or flattened (or not): the same values, re-laid out
    values = fit_rows(features.to_numpy() if hasattr(features, "to_numpy") else np.asarray(features), expected)
    if values.shape[1:] != expected:
        raise ModelInputError(
            f"features have per-row shape {width} but the model was saved with example data of shape {expected}",
            field="features",
            hint="provide the same columns as the example data, in the same order (image rows may differ "
            "only by a channel axis of size 1, or be flattened)",
        )
    return values
