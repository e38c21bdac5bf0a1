"""PyTorch: leaf modules as layers, shapes from a hooked forward pass, parameter counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from podium.metadata.common import Metadata, activation_key, network_metadata, shape_text


def extract(model: Any, example: np.ndarray | None = None) -> Metadata:
    import torch

    layers = [module for module in model.modules() if not list(module.children())]
    activation_types = tuple(_activation_classes(torch))
    activations = [
        activation_key(type(layer).__name__) for layer in layers if isinstance(layer, activation_types)
    ]
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    metadata: Metadata = {
        **network_metadata("pytorch", model, layers, total=total, trainable=trainable, activations=activations),
    }
    if example is not None:
        metadata.update(_shapes(model, layers, example))
    metadata.update(_training(model, torch))
    return metadata


def _shapes(model: Any, layers: list[Any], example: np.ndarray) -> Metadata:
    """Run two example rows with forward hooks; any failure just leaves the shapes out."""
    import torch

    seen: dict[int, str] = {}

    def record(module: Any, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            seen[id(module)] = shape_text([None, *output.shape[1:]])

    handles = [layer.register_forward_hook(record) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            output = model(torch.from_numpy(np.ascontiguousarray(example[:2])))
    except Exception:  # shapes are a nicety; a model that needs other inputs still gets its counts
        return {}
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    shapes: Metadata = {
        "input_shape": shape_text([None, *example.shape[1:]]),
        "layer_shapes": " | ".join(f"{type(layer).__name__}:{seen.get(id(layer))}" for layer in layers),
    }
    if isinstance(output, torch.Tensor):
        shapes["output_shape"] = shape_text([None, *output.shape[1:]])
    return shapes


def _training(model: Any, torch: Any) -> Metadata:
    """torch has no compile step; report an optimizer/loss only when the module carries one."""
    training: Metadata = {}
    for value in vars(model).values():
        if isinstance(value, torch.optim.Optimizer):
            training["optimizer"] = type(value).__name__
            training["learning_rate"] = float(value.param_groups[0]["lr"])
    for module in model.children():
        if isinstance(module, torch.nn.modules.loss._Loss):
            training["loss"] = type(module).__name__
    return training


def _activation_classes(torch: Any) -> list[type]:
    activation_module = torch.nn.modules.activation
    return [
        cls
        for cls in vars(activation_module).values()
        if isinstance(cls, type)
        and issubclass(cls, torch.nn.Module)
        and cls.__module__ == activation_module.__name__
        and cls.__name__ != "MultiheadAttention"
    ]
