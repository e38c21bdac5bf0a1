"""Image input: scikit-learn's bundled 8x8 digits, and a small classifier of every framework that reads them.

Each builder returns ``(model, example_data, native_labels)``: what to submit, the example rows to save it
with (in the shape the model itself takes, as a user would pass them) and a function giving the model's own
predicted labels for (n, 8, 8) images, computed without Podium.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Built = tuple[Any, Any, Callable[[np.ndarray], np.ndarray]]


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_images, test_images, train_labels, test_labels)``; images are (n, 8, 8) float64 in 0..16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    train_x, test_x, train_y, test_y = train_test_split(
        digits.images, digits.target, test_size=0.3, random_state=seed, stratify=digits.target
    )
    return train_x, test_x, train_y, test_y


def flatten(images: Any) -> np.ndarray:
    """A preprocessor (pickled by value, so the Job never imports this module)."""
    values = np.asarray(images, dtype=np.float64)
    return values.reshape(len(values), -1) / 16.0


def sklearn_pipeline(images: np.ndarray, labels: np.ndarray) -> Built:
    """A Pipeline whose first step flattens the images: fitted on, and fed, (n, 8, 8) arrays."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(flatten), LogisticRegression(max_iter=1000)).fit(images, labels)
    return model, images, model.predict


def sklearn_flat(images: np.ndarray, labels: np.ndarray) -> Built:
    """A plain estimator fitted on ``digits.data`` (the images flattened), as scikit-learn's examples do."""
    from sklearn.linear_model import LogisticRegression

    flat = images.reshape(len(images), -1)
    model = LogisticRegression(max_iter=2000).fit(flat, labels)
    return model, flat, lambda x: model.predict(x.reshape(len(x), -1))


def keras_conv(images: np.ndarray, labels: np.ndarray, *, channel: bool = True) -> Built:
    """Conv2D on (8, 8, 1) (``channel``) or on (8, 8) through a Reshape layer."""
    import keras

    keras.utils.set_random_seed(0)
    head = [keras.Input((8, 8, 1))] if channel else [keras.Input((8, 8)), keras.layers.Reshape((8, 8, 1))]
    model = keras.Sequential([
        *head,
        keras.layers.Rescaling(1 / 16),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(images.astype(np.float32), labels, epochs=8, batch_size=64, verbose=0)

    def native(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(x.astype(np.float32)[..., None] if channel else x)).argmax(1)

    return model, images[:64, ..., None] if channel else images[:64], native


def torch_conv(images: np.ndarray, labels: np.ndarray) -> Built:
    """A conv net over (1, 8, 8) channel-first images, saved with (n, 1, 8, 8) example rows."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 10)
    )
    inputs = torch.from_numpy((images[:, None] / 16).astype(np.float32))
    targets = torch.from_numpy(labels.astype(np.int64))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(150):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(inputs), targets).backward()
        optimizer.step()
    net.eval()
    scaled = Scaled(net)

    def native(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return scaled(torch.from_numpy(x[:, None].astype(np.float32))).argmax(1).numpy()

    return scaled, images[:64, None].astype(np.float32), native


def onnx_flat(images: np.ndarray, labels: np.ndarray) -> Built:
    """An ONNX graph (from skl2onnx) whose input is the flat (None, 64) vector."""
    from skl2onnx import to_onnx

    model, flat, native = sklearn_flat(images, labels)
    proto = to_onnx(model, flat[:1].astype(np.float32), options={id(model): {"zipmap": False}})
    return proto, flat.astype(np.float32)[:64], native


def _scaled_module() -> type:
    import torch

    class ScaledNet(torch.nn.Module):
        """Divides pixel values by 16 before the wrapped net (so raw 0..16 images go in)."""

        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x / 16)

    return ScaledNet


def Scaled(net: Any) -> Any:  # noqa: N802  # reads like the class it builds
    return _scaled_module()(net)


BUILDERS: dict[str, Callable[[np.ndarray, np.ndarray], Built]] = {
    "sklearn": sklearn_pipeline,
    "sklearn-flat": sklearn_flat,
    "keras": keras_conv,
    "keras-2d": lambda x, y: keras_conv(x, y, channel=False),
    "pytorch": torch_conv,
    "onnx": onnx_flat,
}
