"""scikit-learn: any estimator or Pipeline (and look-alikes with fit/predict/get_params).

Saved with cloudpickle rather than joblib/pickle because notebook-defined classes and
FunctionTransformer lambdas live in ``__main__``, which plain pickle cannot restore elsewhere.
"""

from __future__ import annotations

import math
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from podium.frameworks.base import (
    MODEL_DIR,
    ONNX_OPSET,
    Framework,
    FrameworkAdapter,
    ModelFiles,
    ModelOutput,
    as_array,
    fit_rows,
    relative,
)
from podium.frameworks.errors import CorruptModel, ModelInputError
from podium.frameworks.pickling import pickled_by_value, user_modules

_FILENAME = "model.pkl"
_PICKLE_PROTOCOL_MARK = b"\x80"  # protocol 2+ pickles start with PROTO


class SklearnModel:
    def __init__(self, model: Any) -> None:
        self.model = model
        self._feature_names = getattr(model, "feature_names_in_", None)

    def predict(self, features: Any) -> ModelOutput:
        final, inputs = _final_step(self.model, self._inputs(features))
        labels = np.asarray(final.predict(inputs))
        if not hasattr(final, "predict_proba"):  # also False for SVC(probability=False)
            return ModelOutput(labels=labels)
        classes = getattr(final, "classes_", None)
        return ModelOutput(
            labels=labels,
            scores=np.asarray(final.predict_proba(inputs)),
            classes=None if classes is None else np.asarray(classes),
        )

    def _inputs(self, features: Any) -> Any:
        """Fitted on a DataFrame: select its columns by name. Fitted on an array: pass an array."""
        if self._feature_names is None:
            return _flat_rows(as_array(features, dtype=None), getattr(self.model, "n_features_in_", None))
        import pandas as pd

        names = list(self._feature_names)
        if isinstance(features, pd.DataFrame):
            missing = [name for name in names if name not in features.columns]
            if missing:
                raise ModelInputError(
                    f"features lack column(s) {missing[:10]} that the model was fitted on",
                    field="features",
                    hint=f"provide columns {names[:20]} (header names must match the training data)",
                )
            return features[names]
        values = as_array(features, dtype=None)
        if values.ndim != 2 or values.shape[1] != len(names):
            raise ModelInputError(
                f"features have shape {values.shape} but the model expects {len(names)} columns",
                field="features",
                hint=f"provide the columns {names[:20]} in this order",
            )
        return pd.DataFrame(values, columns=names)


def _final_step(model: Any, inputs: Any) -> tuple[Any, Any]:
    """A Pipeline's transforms applied once, and its final estimator: labels and probabilities both come
    from the final step (``Pipeline.predict`` and ``predict_proba`` would each run every transform again)."""
    pipeline = sys.modules.get("sklearn.pipeline")  # loaded already when the model holds a Pipeline
    while pipeline is not None and isinstance(model, pipeline.Pipeline) and len(model.steps) > 1:
        inputs = model[:-1].transform(inputs)
        model = model.steps[-1][1]
    return model, inputs


def _flat_rows(values: np.ndarray, width: int | None) -> np.ndarray:
    """Image rows (n, 8, 8) for an estimator fitted on flat vectors of 64 (``digits.data``): flatten them.

    Only N-d input, and only when the fitted width is the row's size but not its first axis: a Pipeline
    that takes the images themselves (a flattening FunctionTransformer first) gets them unchanged.
    """
    if width is None or values.ndim <= 2 or values.shape[1] == width:
        return values
    return fit_rows(values, (int(width),))


class SklearnAdapter(FrameworkAdapter):
    framework = Framework.SKLEARN
    library = "scikit-learn"

    def owns(self, model: object) -> bool:
        return all(hasattr(model, name) for name in ("fit", "predict", "get_params")) and not isinstance(
            model, type
        )

    def save(self, model: Any, root: Path, example: np.ndarray | None) -> ModelFiles:
        import cloudpickle

        path = root / MODEL_DIR / _FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        # custom estimators, transformers and FunctionTransformer functions from the submitter's files
        parts = [model, *model.get_params(deep=True).values()]
        with pickled_by_value(user_modules(parts)), path.open("wb") as handle:
            cloudpickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)
        return ModelFiles(format="cloudpickle", path=relative(path, root))

    def load(self, root: Path, files: ModelFiles) -> SklearnModel:
        path = root / files.path
        try:
            with path.open("rb") as handle:
                model = pickle.load(handle)
        except ModuleNotFoundError as error:
            raise CorruptModel(
                f"the pickled model in {files.path} needs module {error.name!r}, which is not installed",
                field="model",
                hint=f"install {error.name!r} in the evaluation image or submit the model as ONNX",
            ) from error
        except (
            pickle.UnpicklingError,
            EOFError,
            AttributeError,
            ImportError,
            IndexError,
            TypeError,
            ValueError,
        ) as error:
            raise CorruptModel(
                f"the pickled model in {files.path} is truncated or corrupt ({type(error).__name__}: {error})",
                field="model",
                hint="save the submission again with podium.artifacts.save_submission and re-upload it",
            ) from error
        if not self.owns(model):
            raise CorruptModel(
                f"{files.path} holds a {type(model).__name__}, not a fitted estimator",
                field="model",
                hint="pickle the fitted estimator or Pipeline itself",
            )
        return SklearnModel(model)

    def wrap(self, model: Any, files: ModelFiles | None = None) -> SklearnModel:
        return SklearnModel(model)

    def export_onnx(self, model: Any, dest: Path, example: np.ndarray | None) -> None:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
        from sklearn.base import is_classifier

        # image examples go in flattened, as the estimator was fitted (the ONNX runtime flattens them too)
        width = math.prod(example.shape[1:]) if example is not None else getattr(model, "n_features_in_", None)
        if width is None:
            raise ValueError("the number of input features is unknown; pass example_data")
        proto = convert_sklearn(
            model,
            initial_types=[("input", FloatTensorType([None, int(width)]))],
            target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
            # classifiers: probabilities as one tensor, not a list of per-row dicts
            options={"zipmap": False} if is_classifier(model) else None,
        )
        dest.write_bytes(proto.SerializeToString())

    def sniff(self, path: Path, root: Path) -> ModelFiles | None:
        with path.open("rb") as handle:
            head = handle.read(2)
        if head[:1] != _PICKLE_PROTOCOL_MARK or len(head) < 2 or not 2 <= head[1] <= 5:
            return None
        return ModelFiles(format="cloudpickle", path=relative(path, root))


ADAPTER = SklearnAdapter()
