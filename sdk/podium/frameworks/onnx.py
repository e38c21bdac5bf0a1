"""ONNX: a ``ModelProto`` or an ``.onnx`` file, run with onnxruntime on CPU.

Also the runtime for every other framework's ONNX export, so the output rules handle both
skl2onnx classifiers (a label tensor plus a probability tensor) and single-tensor networks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from podium.frameworks.base import (
    MODEL_DIR,
    Framework,
    FrameworkAdapter,
    ModelFiles,
    ModelOutput,
    as_array,
    fit_rows,
    limited_cpus,
    relative,
)
from podium.frameworks.errors import CorruptModel, ModelInputError

_FILENAME = "model.onnx"
_IR_VERSION_TAG = 0x08  # ModelProto field 1 (ir_version, varint) is serialised first
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(string)": "str",
    "tensor(bool)": "bool",
}


class OnnxModel:
    def __init__(self, session: Any, classes: np.ndarray | None = None) -> None:
        self.session = session
        self.inputs = session.get_inputs()
        self.classes = classes

    def predict(self, features: Any) -> ModelOutput:
        outputs = self.session.run(None, self._feed(features))
        labels = next((o for o in outputs if not np.issubdtype(np.asarray(o).dtype, np.floating)), None)
        scores = next((o for o in outputs if np.issubdtype(np.asarray(o).dtype, np.floating)), None)
        return ModelOutput(
            labels=None if labels is None else np.asarray(labels),
            scores=None if scores is None else np.asarray(scores),
            classes=self.classes if scores is not None and self.classes is not None
            and np.asarray(scores).shape[-1] == len(self.classes) else None,
        )

    def _feed(self, features: Any) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            only = self.inputs[0]
            values = as_array(features, _DTYPES.get(only.type, "float32"))
            # symbolic dimensions ("batch", "height") come back as text: only fixed sizes are fitted to
            return {only.name: fit_rows(values, only.shape[1:] if only.shape else None)}
        # one graph input per column (skl2onnx with per-column types): match by column name
        missing = [
            i.name for i in self.inputs if not hasattr(features, "columns") or i.name not in features.columns
        ]
        if missing:
            raise ModelInputError(
                f"the ONNX model has inputs {[i.name for i in self.inputs]} but the features lack columns {missing}",
                field="features",
                hint="name the feature columns after the ONNX graph inputs",
            )
        return {i.name: as_array(features[[i.name]], _DTYPES.get(i.type, "float32")) for i in self.inputs}


CLASS_LABEL_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


def graph_classes(model: Any) -> np.ndarray | None:
    """The class order of an ONNX-ML classifier (skl2onnx sorts them, like scikit-learn's ``classes_``),
    so probability columns are matched to labels by value, not by the playground's list order."""
    from onnx import helper

    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.name in CLASS_LABEL_ATTRIBUTES:
                values = helper.get_attribute_value(attribute)
                return np.array([v.decode() if isinstance(v, bytes) else v for v in values])
    return None


class OnnxAdapter(FrameworkAdapter):
    framework = Framework.ONNX
    library = "onnxruntime"

    def owns(self, model: object) -> bool:
        import sys

        if isinstance(model, str | Path):
            return str(model).endswith(".onnx") and Path(model).is_file()
        onnx = sys.modules.get("onnx")
        return onnx is not None and isinstance(model, onnx.ModelProto)

    def save(self, model: Any, root: Path, example: np.ndarray | None) -> ModelFiles:
        import onnx

        path = root / MODEL_DIR / _FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(model, str | Path):
            shutil.copyfile(model, path)
        else:
            onnx.save_model(model, str(path))
        try:
            onnx.checker.check_model(str(path))
        except onnx.checker.ValidationError as error:
            raise CorruptModel(
                f"the ONNX model is invalid: {error}",
                field="model",
                hint="fix the graph so onnx.checker accepts it",
            ) from error
        return ModelFiles(format="onnx", path=relative(path, root))

    def load(self, root: Path, files: ModelFiles) -> OnnxModel:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # warnings about unused initialisers are noise for submitters
        options.intra_op_num_threads = limited_cpus() or 0  # 0: onnxruntime's default (one per core)
        try:
            session = onnxruntime.InferenceSession(
                str(root / files.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise CorruptModel(
                f"the ONNX model in {files.path} cannot be loaded: {str(error).strip()}",
                field="model",
                hint="check the file is complete (re-export or re-upload it) and that its opset is supported by onnxruntime",
            ) from error
        import onnx

        return OnnxModel(session, graph_classes(onnx.load(str(root / files.path), load_external_data=False)))

    def wrap(self, model: Any, files: ModelFiles | None = None) -> OnnxModel:
        import onnx
        import onnxruntime

        data = Path(model).read_bytes() if isinstance(model, str | Path) else model.SerializeToString()
        classes = graph_classes(onnx.load_from_string(data))
        return OnnxModel(onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"]), classes)

    def export_onnx(self, model: Any, dest: Path, example: np.ndarray | None) -> None:
        raise NotImplementedError("an ONNX model is its own export")

    def sniff(self, path: Path, root: Path) -> ModelFiles | None:
        with path.open("rb") as handle:
            if handle.read(1) != bytes([_IR_VERSION_TAG]):
                return None
        import onnx

        try:
            proto = onnx.load_model(str(path), load_external_data=False)
        except Exception:  # protobuf's DecodeError and friends: not (or not a complete) ONNX file
            return None
        return ModelFiles(format="onnx", path=relative(path, root)) if proto.graph.node else None


def opset(proto: Any) -> int | None:
    """The default-domain opset a model was built against."""
    return next((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), None)


ADAPTER = OnnxAdapter()
