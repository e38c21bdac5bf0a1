"""The predictions file: the only thing that crosses from the untrusted predict step to the trusted score step.

Stored as a NumPy ``.npz`` archive without pickles, so loading it can never run code:
``labels`` (n,) predicted labels or regression values, optional ``proba`` (n, k) class
probabilities whose columns follow ``classes`` (k,).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Predictions:
    labels: np.ndarray
    proba: np.ndarray | None = None
    classes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.proba is None) != (self.classes is None):
            raise ValueError("predictions: 'proba' and 'classes' must be given together")
        if (
            self.proba is not None
            and self.classes is not None
            and (self.proba.ndim != 2 or self.proba.shape != (len(self.labels), len(self.classes)))
        ):
            raise ValueError(
                f"predictions: proba has shape {self.proba.shape}, expected "
                f"({len(self.labels)}, {len(self.classes)}) = (rows, classes)"
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


def load_predictions(path: str | Path) -> Predictions:
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            if "labels" not in data:
                raise ValueError(f"predictions file {path} has no 'labels' array; write it with save_predictions()")
            return Predictions(
                labels=data["labels"],
                proba=data.get("proba"),
                classes=data.get("classes"),
            )
    except (OSError, EOFError, ValueError) as error:
        if isinstance(error, ValueError) and str(error).startswith("predictions"):
            raise
        raise ValueError(f"predictions file {path} is unreadable ({error}); write it with save_predictions()") from error
