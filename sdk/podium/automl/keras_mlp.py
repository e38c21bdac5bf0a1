"""A Keras MLP as a scikit-learn estimator, so a search space can hold Keras models beside scikit-learn ones.

During the search it is cross-validated like any estimator (behind the space's StandardScaler). The best
one is then turned into a plain Keras model with the scaling as its first layer (:func:`to_keras`), saved
as an ordinary Keras artifact: nothing of this module is needed to load or serve it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class _KerasMLP(BaseEstimator):
    def __init__(self, hidden_units: int = 64, layers: int = 2, dropout: float = 0.0, learning_rate: float = 1e-3,
                 epochs: int = 50, batch_size: int = 32, random_state: int | None = None) -> None:
        self.hidden_units = hidden_units
        self.layers = layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def _fit(self, x: np.ndarray, targets: np.ndarray, outputs: int, loss: str, activation: str | None) -> None:
        import keras

        if self.random_state is not None:
            keras.utils.set_random_seed(int(self.random_state))
        model = keras.Sequential([keras.Input(shape=(x.shape[1],))])
        for _ in range(int(self.layers)):
            model.add(keras.layers.Dense(int(self.hidden_units), activation="relu"))
            if self.dropout:
                model.add(keras.layers.Dropout(float(self.dropout)))
        model.add(keras.layers.Dense(outputs, activation=activation))
        model.compile(optimizer=keras.optimizers.Adam(float(self.learning_rate)), loss=loss)
        model.fit(x.astype(np.float32), targets, epochs=int(self.epochs), batch_size=int(self.batch_size), verbose=0)
        self.model_ = model

    def _outputs(self, x: Any) -> np.ndarray:
        return np.asarray(self.model_.predict(np.asarray(x, dtype=np.float32), verbose=0))


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    def fit(self, x: Any, y: Any) -> KerasMLPClassifier:
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self._fit(np.asarray(x), codes, len(self.classes_), "sparse_categorical_crossentropy", "softmax")
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return self._outputs(x)

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[np.argmax(self._outputs(x), axis=1)]


class KerasMLPRegressor(RegressorMixin, _KerasMLP):
    def fit(self, x: Any, y: Any) -> KerasMLPRegressor:
        self._fit(np.asarray(x), np.asarray(y, dtype=np.float32), 1, "mse", None)
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self._outputs(x)[:, 0]


def to_keras(pipeline: Any) -> tuple[Any, list[Any] | None]:
    """A fitted ``Pipeline(StandardScaler, KerasMLP*)`` as one Keras model (the scaling its first layer) and,
    for a classifier, the class of each output column."""
    import keras

    scaler, mlp = pipeline.steps[0][1], pipeline.steps[-1][1]
    inputs = keras.Input(shape=(len(scaler.mean_),))
    normalise = keras.layers.Normalization(mean=scaler.mean_, variance=scaler.scale_**2)
    model = keras.Model(inputs, mlp.model_(normalise(inputs)))
    classes = [label.item() if hasattr(label, "item") else label for label in mlp.classes_] if hasattr(
        mlp, "classes_") else None
    return model, classes


def is_keras_pipeline(model: Any) -> bool:
    steps = getattr(model, "steps", None)
    return isinstance(steps, list) and bool(steps) and isinstance(steps[-1][1], _KerasMLP)
