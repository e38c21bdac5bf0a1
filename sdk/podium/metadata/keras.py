"""Keras: layers (nested models expanded), shapes, parameter counts, activations, training setup."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from podium.metadata.common import Metadata, activation_key, network_metadata, shape_text, to_scalar

_ACTIVATION_LAYERS = {"ReLU", "Softmax", "LeakyReLU", "PReLU", "ELU"}  # layers that are an activation


def extract(model: Any, example: np.ndarray | None = None) -> Metadata:
    layers = list(_leaf_layers(model))
    activations = [name for layer in layers if (name := _activation(layer))]
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    total = int(model.count_params()) if model.built else trainable
    metadata: Metadata = {
        **network_metadata("keras", model, layers, total=total, trainable=trainable, activations=activations),
        "input_shape": _shape(lambda: model.inputs[0].shape),
        "output_shape": _shape(lambda: model.outputs[0].shape),
        "layer_shapes": " | ".join(
            f"{type(layer).__name__}:{_shape(lambda lay=layer: lay.output.shape)}" for layer in layers
        ),
    }
    metadata.update(_training(model))
    return metadata


def _leaf_layers(model: Any) -> Iterator[Any]:
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if getattr(layer, "layers", None):  # a nested Sequential/Functional block
            yield from _leaf_layers(layer)
        else:
            yield layer


def _activation(layer: Any) -> str | None:
    name = type(layer).__name__
    if name in _ACTIVATION_LAYERS:
        return activation_key(name)
    function = getattr(layer, "activation", None)
    label = getattr(function, "__name__", None) if function is not None else None
    return None if label in (None, "linear") else activation_key(label)


def _training(model: Any) -> Metadata:
    """Loss, optimizer and learning rate once compiled; epochs once fitted (``model.history``)."""
    training: Metadata = {}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        training["optimizer"] = type(optimizer).__name__
        try:
            training["learning_rate"] = float(f"{float(optimizer.learning_rate):.7g}")  # float32 noise off
        except (TypeError, ValueError):  # a schedule, not a number
            training["learning_rate"] = to_scalar(optimizer.learning_rate)
    loss = getattr(model, "loss", None)
    if loss is not None:
        training["loss"] = (
            loss
            if isinstance(loss, str)
            else getattr(loss, "name", None) or getattr(loss, "__name__", type(loss).__name__)
        )
    history = getattr(model, "history", None)
    if history is not None and getattr(history, "epoch", None):
        training["epochs"] = len(history.epoch)
    return training


def _shape(read: Any) -> str | None:
    """Shapes exist only for built functional graphs; subclassed models have none."""
    try:
        return shape_text(read())
    except (AttributeError, IndexError, TypeError, ValueError):
        return None
