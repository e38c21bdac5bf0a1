"""ONNX: opset, producer, operator counts and parameter (initializer element) count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from podium.metadata.common import Metadata, counts, shape_text


def extract(model: Any, example: np.ndarray | None = None) -> Metadata:
    import onnx

    from podium.frameworks.onnx import opset

    proto = onnx.load_model(str(model), load_external_data=False) if isinstance(model, str | Path) else model
    graph = proto.graph
    producer = f"{proto.producer_name} {proto.producer_version}".strip()
    return {
        "ml_framework": "onnx",
        "model_type": graph.name or "onnx",
        "producer": producer or None,
        "opset": opset(proto),
        "ir_version": int(proto.ir_version),
        "n_nodes": len(graph.node),
        "n_params": sum(int(np.prod(init.dims)) for init in graph.initializer),
        **counts("op_", (node.op_type for node in graph.node)),
        "input_shape": _value_shape(graph.input[0]) if graph.input else None,
        "output_shape": _value_shape(graph.output[0]) if graph.output else None,
    }


def _value_shape(value: Any) -> str | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return shape_text(dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim)
