"""PyTorch ``nn.Module``: saved in the first form that reproduces the live model's output.

Order: ``torch.export`` (needs example input; no Python code needed to load), TorchScript
``script`` then ``trace``, and last the ``state_dict`` plus the importable class
(``module:qualname`` and constructor kwargs), which needs the model's code at predict time.
Every compiled form is checked against the eager model on the example and on a second batch of
another size, because tracing silently bakes in data-dependent branches.
"""

from __future__ import annotations

import importlib
import inspect
import json
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    example_dtype,
    relative,
    zip_names,
)
from podium.frameworks.errors import CorruptModel, ModelInputError

_TOLERANCE = 1e-5
_FILES = {"torch.export": "model.pt2", "torchscript": "model.torchscript.pt", "state_dict": "state_dict.pt"}


class TorchModel:
    def __init__(self, module: Any, input_dtype: str, *, live: bool = False) -> None:
        self.module = module
        self.input_dtype = input_dtype
        self.live = live  # a user's module: switch to eval mode per call, leave its mode as it was

    def predict(self, features: Any) -> ModelOutput:
        inputs = _tensor(as_array(features, self.input_dtype))
        if self.live:
            with _evaluating(self.module):
                output = _run(self.module, inputs)
        else:
            output = _run(self.module, inputs)
        if np.issubdtype(output.dtype, np.floating):
            return ModelOutput(scores=output)
        return ModelOutput(labels=output)


class TorchAdapter(FrameworkAdapter):
    framework = Framework.PYTORCH
    library = "torch"

    def owns(self, model: object) -> bool:
        import sys

        torch = sys.modules.get("torch")  # a live nn.Module means torch is already imported
        return torch is not None and isinstance(model, torch.nn.Module)

    def save(self, model: Any, root: Path, example: np.ndarray | None) -> ModelFiles:
        import torch

        directory = root / MODEL_DIR
        directory.mkdir(parents=True, exist_ok=True)
        dtype = example_dtype(example)
        failures: list[str] = []
        with _evaluating(model):  # compiled forms capture eval-mode behaviour (dropout off, batch-norm stats)
            _check_takes(model, example)
            for form, compile_model in _candidates(model, example):
                try:
                    with (
                        warnings.catch_warnings()
                    ):  # TorchScript is deprecated upstream; trace warns per branch
                        warnings.simplefilter("ignore")
                        compiled = compile_model()
                    if example is not None:
                        _check_agrees(model, compiled, example)
                except Exception as error:  # any converter failure means "try the next form"
                    failures.append(f"{form}: {type(error).__name__}: {_first_line(error)}")
                    continue
                path = directory / _FILES[form]
                if form == "torch.export":
                    torch.export.save(compiled, str(path))
                else:
                    torch.jit.save(compiled, str(path))
                return ModelFiles(format=form, path=relative(path, root), input_dtype=dtype)
            return _save_state_dict(model, root, directory / _FILES["state_dict"], dtype, failures)

    def load(self, root: Path, files: ModelFiles) -> TorchModel:
        import torch

        path = root / files.path
        try:
            if files.format == "torch.export":
                module = torch.export.load(str(path)).module()
            elif files.format == "torchscript":
                module = torch.jit.load(str(path), map_location="cpu").eval()
            elif files.format == "state_dict":
                module = _rebuild(files, torch.load(str(path), map_location="cpu", weights_only=True))
            else:
                raise CorruptModel(f"unknown PyTorch format {files.format!r}", field="manifest.model.format")
        except CorruptModel:
            raise
        except Exception as error:  # torch raises RuntimeError/ValueError/pickle errors for damaged zips
            raise CorruptModel(
                f"the PyTorch model in {files.path} ({files.format}) cannot be read: {type(error).__name__}: {error}",
                field="model",
                hint="save the submission again with podium.artifacts.save_submission and re-upload it",
            ) from error
        return TorchModel(module, files.input_dtype or "float32")

    def wrap(self, model: Any, files: ModelFiles | None = None) -> TorchModel:
        return TorchModel(model, (files.input_dtype if files else None) or "float32", live=True)

    def export_onnx(self, model: Any, dest: Path, example: np.ndarray | None) -> None:
        import torch

        if example is None:
            raise ValueError("torch.onnx.export needs example input; pass example_data")
        args = (_tensor(_two_rows(example)),)
        common: dict[str, Any] = {
            "input_names": ["input"],
            "output_names": ["output"],
            "opset_version": ONNX_OPSET,
        }
        with _evaluating(model):
            try:  # the TorchScript-based exporter is quick and handles most plain modules
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(
                        model,
                        args,
                        str(dest),
                        dynamo=False,
                        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                        **common,
                    )
            except Exception:
                batch = torch.export.Dim.DYNAMIC
                torch.onnx.export(
                    model, args, str(dest), dynamo=True, dynamic_shapes=({0: batch},), verbose=False, **common
                )

    def sniff(self, path: Path, root: Path) -> ModelFiles | None:
        names = zip_names(path)
        if not names:
            return None
        if any(name.endswith("/models/model.json") for name in names) and any(
            n.endswith("/archive_format") for n in names
        ):
            form = "torch.export"
        elif any(name.endswith("/constants.pkl") or "/code/__torch__" in name for name in names):
            form = "torchscript"
        elif any(name.endswith("/data.pkl") for name in names):
            form = "state_dict"  # loadable only with the architecture recorded in a manifest
        else:
            return None
        return ModelFiles(format=form, path=relative(path, root))


def _candidates(model: Any, example: np.ndarray | None) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Compiled forms in order of preference; those needing example input only when there is one."""
    import torch

    batch = None if example is None else (_tensor(_two_rows(example)),)
    if batch is not None:
        dynamic = ({0: torch.export.Dim.DYNAMIC},)
        yield "torch.export", lambda: torch.export.export(model, batch, dynamic_shapes=dynamic)
    yield "torchscript", lambda: torch.jit.script(model)
    if batch is not None:
        yield "torchscript", lambda: torch.jit.trace(model, batch, check_trace=False)


def _check_takes(model: Any, example: np.ndarray | None) -> None:
    """The example is model input by contract: a model that cannot run on it is the example's fault."""
    if example is None:
        return
    try:
        _run(model, _tensor(_two_rows(example)))
    except Exception as error:  # whatever the user's forward raises
        raise ModelInputError(
            f"the PyTorch model fails on example_data of shape {example.shape}: {type(error).__name__}: "
            f"{_first_line(error)}",
            field="example_data",
            hint="pass example rows in the shape the model takes (after any preprocessor), e.g. images[:, None] "
            "for a channel axis; holdout rows without that axis are fitted to it",
        ) from error


def _check_agrees(model: Any, compiled: Any, example: np.ndarray) -> None:
    """Raise when the compiled form differs from eager on the example or a differently sized batch."""
    import torch

    module = compiled.module() if isinstance(compiled, torch.export.ExportedProgram) else compiled
    first = _two_rows(example)
    for batch in (first, np.concatenate([first[::-1], first * 0.5])[: len(first) + 1].astype(first.dtype)):
        expected = _run(model, _tensor(batch))
        actual = _run(module, _tensor(batch))
        if expected.shape != actual.shape or not np.allclose(
            expected, actual, rtol=_TOLERANCE, atol=_TOLERANCE
        ):
            raise ValueError("compiled model output differs from the eager model")


def _save_state_dict(model: Any, root: Path, path: Path, dtype: str, failures: list[str]) -> ModelFiles:
    import torch

    cls = type(model)
    architecture = f"{cls.__module__}:{cls.__qualname__}"
    reasons = "; ".join(failures) or "no example_data was given"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise CorruptModel(
            f"the PyTorch model could not be compiled ({reasons}) and its class {architecture} is not importable",
            field="model",
            hint="pass example_data so torch.export can capture the model, or define the class in an installable module",
        )
    kwargs = _init_kwargs(model)
    torch.save(model.state_dict(), str(path))
    warnings.warn(
        f"PyTorch model saved as state_dict + {architecture} because it could not be compiled ({reasons}); "
        "the evaluation image must be able to import that module",
        stacklevel=5,  # the caller of save_submission
    )
    return ModelFiles(
        format="state_dict",
        path=relative(path, root),
        input_dtype=dtype,
        architecture=architecture,
        init_kwargs=kwargs,
    )


def _init_kwargs(model: Any) -> dict[str, Any]:
    """Constructor arguments recovered from same-named attributes (the ``self.n_in = n_in`` idiom)."""
    kwargs: dict[str, Any] = {}
    parameters = list(inspect.signature(type(model).__init__).parameters.values())[1:]
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = getattr(model, parameter.name, inspect.Parameter.empty)
        if value is not inspect.Parameter.empty and _is_json(value):
            kwargs[parameter.name] = value
        elif parameter.default is inspect.Parameter.empty:
            raise CorruptModel(
                f"constructor argument {parameter.name!r} of {type(model).__qualname__} cannot be recovered",
                field="model",
                hint=f"store it on the module as self.{parameter.name} (JSON-serialisable), or pass example_data so torch.export works",
            )
    return kwargs


def _rebuild(files: ModelFiles, state: dict[str, Any]) -> Any:
    if not files.architecture:
        raise CorruptModel(
            f"{files.path} is a bare state_dict and no architecture is recorded",
            field="manifest.model.architecture",
            hint="save the model with podium.artifacts.save_submission so the manifest names its class",
        )
    module_name, _, qualname = files.architecture.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise CorruptModel(
            f"the model class {files.architecture} cannot be imported ({error})",
            field="manifest.model.architecture",
            hint="install the package that defines the model in the evaluation image, or resubmit with example_data",
        ) from error
    module = target(**(files.init_kwargs or {}))
    module.load_state_dict(state)
    return module.eval()


@contextmanager
def _evaluating(module: Any) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _run(module: Any, inputs: Any) -> np.ndarray:
    import torch

    with torch.inference_mode():
        output = module(inputs)
    while isinstance(output, tuple | list):  # models returning (logits, extras) are judged on the first
        output = output[0]
    if isinstance(output, dict):
        output = next(iter(output.values()))
    return output.detach().cpu().numpy()


def _tensor(values: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(values))


def _two_rows(example: np.ndarray | None) -> np.ndarray:
    """torch.export specialises a batch dimension of 1, so give it at least two rows."""
    assert example is not None
    return example if len(example) >= 2 else np.concatenate([example, example])


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


ADAPTER = TorchAdapter()
