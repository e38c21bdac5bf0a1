"""Preprocessors: a callable ``f(features) -> model input`` or an object with ``transform``.

Serialised with cloudpickle (functions from ``__main__`` and from the submitter's own modules
are pickled by value, so the evaluator needs none of their code) next to their source text
(``inspect.getsource``) for reviewers, and a small ``preprocessor.json`` that makes the
directory self-describing so it can also be submitted on its own.
"""

from __future__ import annotations

import inspect
import json
import pickle
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from podium.artifacts.errors import PreprocessorError
from podium.frameworks.pickling import is_library, pickled_by_value, user_modules

PREPROCESSOR_DIR = "preprocessor"
_INFO = "preprocessor.json"
_PICKLE = "preprocessor.pkl"
_SOURCE = "source.py"
_MAX_MESSAGE = 600

Preprocessor = Callable[[Any], Any]


class PreprocessorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["callable", "transform"]
    name: str  # qualified name of the function or class, for reviewers
    pickle: str = _PICKLE  # relative to the preprocessor directory
    source: str | None = None  # relative to the preprocessor directory, when the source was found
    python: str  # cloudpickled code is only portable within one Python minor version


def save_preprocessor(preprocessor: Any, directory: Path) -> PreprocessorInfo:
    """Write ``preprocessor.pkl``, ``source.py`` (when available) and ``preprocessor.json``."""
    import cloudpickle

    kind: Literal["callable", "transform"]
    if callable(getattr(preprocessor, "transform", None)):
        kind = "transform"
    elif callable(preprocessor):
        kind = "callable"
    else:
        raise PreprocessorError(
            f"a {type(preprocessor).__name__} is neither callable nor has a transform method",
            field="preprocessor",
            hint="pass a function features -> model input, or a fitted object with .transform()",
        )
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with pickled_by_value(user_modules([preprocessor])):
            payload = cloudpickle.dumps(preprocessor, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # cloudpickle raises whatever the object's __reduce__ raises
        raise PreprocessorError(
            f"the preprocessor cannot be serialised ({type(error).__name__}: {error})",
            field="preprocessor",
            hint="avoid capturing open files, locks or connections in the preprocessor",
        ) from error
    (directory / _PICKLE).write_bytes(payload)
    source = _source(preprocessor)
    if source is not None:
        (directory / _SOURCE).write_text(source)
    info = PreprocessorInfo(
        kind=kind,
        name=_qualified_name(preprocessor),
        source=_SOURCE if source is not None else None,
        python=platform.python_version(),
    )
    (directory / _INFO).write_text(info.model_dump_json(indent=2) + "\n")
    return info


def load_preprocessor(directory: Path) -> Preprocessor:
    """The callable to apply: the function itself, or the object's bound ``transform``."""
    try:
        info = PreprocessorInfo.model_validate_json((directory / _INFO).read_text())
    except (OSError, ValidationError, json.JSONDecodeError) as error:
        raise PreprocessorError(
            f"{directory.name}/{_INFO} is missing or invalid ({error})",
            field="preprocessor",
            hint="save the preprocessor with podium.artifacts.save_submission(..., preprocessor=...)",
        ) from error
    try:
        with (directory / info.pickle).open("rb") as handle:
            preprocessor = pickle.load(handle)
    except Exception as error:  # unpickling runs arbitrary reducers, so any exception type can surface
        raise PreprocessorError(
            f"the preprocessor {info.name} cannot be loaded ({type(error).__name__}: {_short(error)}); "
            f"it was saved with Python {info.python}, this is Python {platform.python_version()}",
            field="preprocessor",
            hint="re-save it with the evaluator's Python version and make sure every library it uses is installed",
        ) from error
    return preprocessor.transform if info.kind == "transform" else preprocessor


def apply_preprocessor(preprocessor: Preprocessor, features: Any) -> Any:
    """Run the submitter's code; its failure becomes an error that quotes the original exception."""
    try:
        transformed = preprocessor(features)
    except Exception as error:
        raise PreprocessorError(
            f"the preprocessor raised {type(error).__name__}: {_short(error)}",
            field="preprocessor",
            hint="run the preprocessor on the playground's example data locally and fix the error; "
            "holdout features have the same columns as the example data",
        ) from error
    rows = _rows(transformed)
    if rows is not None and rows != len(features):
        raise PreprocessorError(
            f"the preprocessor returned {rows} rows for {len(features)} input rows",
            field="preprocessor",
            hint="transform every row and keep their order; do not drop, filter or deduplicate rows",
        )
    return transformed


def _rows(values: Any) -> int | None:
    shape = getattr(values, "shape", None)
    if shape:
        return int(shape[0])
    return len(values) if hasattr(values, "__len__") else None


def _source(preprocessor: Any) -> str | None:
    target = preprocessor if inspect.isroutine(preprocessor) else type(preprocessor)
    # a fitted library transformer (StandardScaler): its repr says more than the library's source
    module = inspect.getmodule(target)
    if module is not None and is_library(module):
        return f"# {_qualified_name(preprocessor)} from an installed library\n# {repr(preprocessor)[:2000]}\n"
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):  # defined in a REPL or built dynamically
        return None


def _qualified_name(preprocessor: Any) -> str:
    target = preprocessor if inspect.isroutine(preprocessor) else type(preprocessor)
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', type(target).__name__)}"


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
