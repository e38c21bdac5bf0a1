"""The typed wire between the operator and the evaluation Jobs (pure: no I/O, no object-store client).

Both sides import this module: the operator's manifest builders (``podium_operator.reconcile``) and the
steps that run inside the Jobs. It holds

- the layout of the volume the stage step fills and the predict and score steps read;
- each step's arguments as a pydantic model: the builder writes a container's argv with
  :meth:`StepArgs.to_argv`, the step reads it back with :meth:`StepArgs.from_argv`, so neither side
  spells an option by hand;
- the one rule for where a step writes its termination message (:func:`termination_log_path`);
- the result files the score step writes and the operator reads (:class:`PublicResult`,
  :class:`PrivateResult`), read with a size limit and validated, and the one filter for metric values
  (:func:`finite_metrics`);
- the one strict JSON reader (:func:`strict_json`) for everything Podium parses from a Job: the predict
  step's ``metadata.json`` and the result files. It refuses NaN and infinities (one in a Kubernetes status
  breaks ``kubectl get -o json`` for the whole namespace), inputs over a size limit, nesting too deep to
  parse, and strings that are not valid Unicode.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, NoReturn, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, ValidationError

from podium.errors import PodiumError
from podium.uri import parse

# --- the staged volume, shared by the stage, predict and score steps -------------------------------

DATA = "/data"  # where the evaluation volume is mounted
STAGED_MODEL = "model"  # the unpacked artifact, under DATA
STAGED_PREPROCESSOR = "preprocessor"  # a preprocessor submitted apart from the model, under DATA
STAGED_OUT = "out"  # the predict step's output (the only directory it may write), under DATA
PREDICTIONS_NAME = "predictions.npz"  # in the out directory
METADATA_NAME = "metadata.json"  # in the out directory
MODEL_DIR = f"{DATA}/{STAGED_MODEL}"
PREPROCESSOR_DIR = f"{DATA}/{STAGED_PREPROCESSOR}"
OUT_DIR = f"{DATA}/{STAGED_OUT}"
PREDICTIONS_PATH = f"{OUT_DIR}/{PREDICTIONS_NAME}"
METADATA_PATH = f"{OUT_DIR}/{METADATA_NAME}"
DEFAULT_BATCH_ROWS = 10_000


def staged_features_name(features_uri: str) -> str:
    """The staged holdout features' file name: ``features`` plus the source's suffix (readers go by it)."""
    return f"features{PurePosixPath(parse(features_uri).name).suffix}"


def staged_features_path(features_uri: str) -> str:
    return f"{DATA}/{staged_features_name(features_uri)}"


# --- step arguments ------------------------------------------------------------------------------


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_list(annotation: Any) -> bool:
    return typing.get_origin(_unwrap_optional(annotation)) in (list, tuple)


def _choices(annotation: Any) -> list[str] | None:
    annotation = _unwrap_optional(annotation)
    if typing.get_origin(annotation) is Literal:
        return [str(value) for value in typing.get_args(annotation)]
    return None


class StepArgs(BaseModel):
    """A step's command-line arguments: each field is a ``--kebab-case`` option.

    Lists travel as JSON; ``None`` and a field's default are left out (the step's default applies). A
    value that starts with ``-`` is written as ``--option=value`` so that argparse never takes it for an
    option.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_argv(self) -> list[str]:
        argv: list[str] = []
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None or (not field.is_required() and value == field.default):
                continue
            text = json.dumps(list(value)) if isinstance(value, list | tuple) else str(value)
            option = _option(name)
            argv += [f"{option}={text}"] if text.startswith("-") else [option, text]
        return argv

    @classmethod
    def parser(cls, *, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False)
        for name, field in cls.model_fields.items():
            help_text = field.description or ""
            if _is_list(field.annotation):
                help_text = f"{help_text} (a JSON list)".strip()
            parser.add_argument(
                _option(name), dest=name, required=field.is_required(), default=argparse.SUPPRESS,
                choices=_choices(field.annotation), help=help_text or None,
                metavar=None if _choices(field.annotation) else name.upper(),
            )
        return parser

    @classmethod
    def from_argv(
        cls, argv: Sequence[str] | None = None, *, prog: str | None = None, description: str | None = None
    ) -> Self:
        """Parse ``argv`` (default ``sys.argv[1:]``); bad arguments exit 2 with a message naming the option."""
        parser = cls.parser(prog=prog, description=description)
        given: dict[str, str] = vars(parser.parse_args(None if argv is None else list(argv)))
        values: dict[str, Any] = {}
        for name, text in given.items():
            if not _is_list(cls.model_fields[name].annotation):
                values[name] = text
                continue
            try:
                values[name] = json.loads(text)
            except json.JSONDecodeError as error:
                _fail(parser, f"{_option(name)}: not JSON ({error}); give a JSON list, e.g. '[\"cat\", \"dog\"]' or '[0, 1]'")
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            _fail(parser, "; ".join(_describe(problem) for problem in error.errors()))


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)  # exits 2


def _describe(problem: Any) -> str:
    location = [str(part) for part in problem.get("loc", ())]
    where = _option(location[0]) + "".join(f"[{part}]" for part in location[1:]) if location else "arguments"
    return f"{where}: {problem.get('msg', 'invalid')}"


Task = Literal["classification", "regression"]


def _class_label(value: object) -> str | int | float | bool:
    if isinstance(value, str | int | float):  # a bool is an int
        return value
    raise ValueError("a class label is a string or a number")


ClassLabel = Annotated[str | int | float | bool, PlainValidator(_class_label)]


class StageArgs(StepArgs):
    """``python -m podium.evaluation.stage``: copy the artifact and the holdout features into the volume."""

    artifact: str = Field(description="submission artifact: .tar.gz or directory URI")
    features: str = Field(description="holdout features URI")
    dest: Path = Field(description="the evaluation volume, e.g. /data")
    preprocessor: str | None = Field(
        default=None, description="a preprocessor submitted apart from the model: .tar.gz or directory URI")


class PredictArgs(StepArgs):
    """``python -m podium.evaluation.predict``: run the submitted model on the staged features."""

    artifact: Path = Field(description="artifact directory, .tar.gz or model file")
    features: Path = Field(description="holdout features (.csv, .parquet, .npy, .npz)")
    out: Path = Field(description="output directory")
    preprocessor: Path | None = Field(
        default=None, description="a separately submitted preprocessor directory or archive")
    batch_rows: int = Field(default=DEFAULT_BATCH_ROWS, description="rows per call into the model")
    termination_log: Path | None = Field(default=None, description="where to write the failure message")


class ScoreArgs(StepArgs):
    """``python -m podium.evaluation.score``: score predictions against the holdout labels, store the results."""

    predictions: str = Field(description="predictions .npz (path, file:// or s3:// URI)")
    labels: str = Field(description="holdout labels (CSV, Parquet, .npy, .npz)")
    task: Task = Field(description="the playground's task")
    class_labels: list[ClassLabel] | None = Field(
        default=None, description='class labels, e.g. ["cat", "dog"] or [0, 1]; empty or absent for regression')
    results: str = Field(description="URI for public metrics, row counts and model metadata (read by the operator)")
    private: str = Field(description="URI for private metrics (an operator-only prefix)")
    split: str | None = Field(default=None, description="public/private split JSON; omit to score every row as public")
    metadata: Path | None = Field(default=None, description="metadata.json written by the predict step")
    termination_log: Path | None = Field(default=None, description="where to write the summary")


# --- the termination message ---------------------------------------------------------------------

TERMINATION_LOG_ENV = "PODIUM_TERMINATION_LOG"
KUBERNETES_TERMINATION_LOG = Path("/dev/termination-log")


def termination_log_path(explicit: Path | None = None) -> Path | None:
    """Where a step writes its termination message: ``explicit``, else ``$PODIUM_TERMINATION_LOG``, else
    ``/dev/termination-log``; None when it cannot be written (neither the file nor, for a new file, its
    directory is writable)."""
    configured = os.environ.get(TERMINATION_LOG_ENV)
    path = explicit if explicit is not None else Path(configured) if configured else KUBERNETES_TERMINATION_LOG
    writable = os.access(path, os.W_OK) if path.exists() else os.access(path.parent, os.W_OK)
    return path if writable else None


def report_failure(message: str, explicit: Path | None = None) -> None:
    """A Job step's last word: ``message`` on stderr and, where it can be written, as the termination message."""
    import sys

    print(message, file=sys.stderr)
    termination = termination_log_path(explicit)
    if termination is not None:
        termination.write_text(message[:4000])


# --- result files: written by the score step, read by the operator --------------------------------

MAX_RESULT_BYTES = 1 << 20  # a result file holds a few metrics and bounded metadata


def finite_metrics(raw: object) -> dict[str, float]:
    """The finite numbers of a metrics mapping, as floats; anything else (None, NaN, inf, text) is dropped.

    Booleans count as numbers (``True`` is 1.0), as ``isinstance(v, int | float)`` always had it.
    """
    if not isinstance(raw, Mapping):
        return {}
    kept: dict[str, float] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, int | float):
            continue
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float range
            continue
        if math.isfinite(number):
            kept[name] = number
    return kept


class InvalidJSON(ValueError):
    """Text :func:`strict_json` refuses; the message says what is wrong, for a caller to name the file."""


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidJSON(f"holds {name}, but only finite numbers are allowed")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise InvalidJSON(f"holds {text}, which is not a finite number (beyond float range)")
    return number


def _finite_int(text: str) -> int:
    try:
        number = int(text)
        float(number)
    except (ValueError, OverflowError):
        raise InvalidJSON(f"holds an integer of {len(text)} digits, which is not a finite number") from None
    return number


MAX_JSON_DEPTH = 64  # nesting a Job's JSON may have; pydantic's serializer gives up a few hundred levels down


def _check_parsed(value: object) -> None:
    """Nesting within MAX_JSON_DEPTH, every string (keys too) valid Unicode: written out again, it must not fail."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidJSON("holds a string that is not valid Unicode (a lone surrogate)") from None
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidJSON(f"is nested too deeply (more than {MAX_JSON_DEPTH} levels)")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


def strict_json(data: bytes | str, *, limit: int) -> Any:
    """Parse JSON a Job wrote, refusing what must never reach a status: an :class:`InvalidJSON` saying why.

    Refused: more than ``limit`` bytes, ``NaN``/``Infinity`` and numbers beyond float range (``1e999``,
    a 400-digit integer), nesting deeper than :data:`MAX_JSON_DEPTH`, strings that are not valid Unicode,
    and anything that is not JSON. Whatever it returns serialises again with ``json.dumps(..., allow_nan=False)``.
    """
    size = len(data.encode(errors="surrogatepass") if isinstance(data, str) else data)
    if size > limit:
        raise InvalidJSON(f"is {size} bytes, larger than {limit} bytes")
    try:
        value = json.loads(data, parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_finite_int)
    except InvalidJSON:
        raise
    except RecursionError:
        raise InvalidJSON("is nested too deeply to parse") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise InvalidJSON(f"is not JSON ({error})") from None
    _check_parsed(value)
    return value


def _mapping_or_empty(raw: object) -> object:
    return raw if isinstance(raw, Mapping) else {}  # as the operator's bounded_metadata takes it


FiniteMetrics = Annotated[dict[str, float], BeforeValidator(finite_metrics)]


class InvalidResult(PodiumError):
    """A result file the score step wrote cannot be read back: too large, not JSON, or the wrong shape."""


class RowCounts(BaseModel):
    all: int
    public: int
    private: int


class ResultFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str, limit: int = MAX_RESULT_BYTES) -> Self:
        """Validate a result file's contents; an :class:`InvalidResult` naming ``source`` when they are bad."""
        size = len(data.encode(errors="surrogatepass") if isinstance(data, str) else data)
        if size > limit:
            raise InvalidResult(f"the score result {source} is {size} bytes, more than the {limit} allowed",
                                hint="check what wrote it: the score step writes a few metrics and bounded metadata")
        try:
            return cls.model_validate(strict_json(data, limit=limit))
        except InvalidJSON as error:
            raise InvalidResult(f"the score result {source} is not a valid {cls.__name__} (the file {error})",
                                hint="check the score Job's log; evaluate the submission again") from None
        except ValidationError as error:
            detail = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'the file'}: {problem['msg']}"
                for problem in error.errors()[:5]
            )
            raise InvalidResult(f"the score result {source} is not a valid {cls.__name__} ({detail})",
                                hint="check the score Job's log; evaluate the submission again") from None


class PublicResult(ResultFile):
    """``--results``: what the operator publishes on the Submission (public metrics only)."""

    public: FiniteMetrics = {}
    rows: RowCounts | None = None
    metadata: Annotated[dict[str, Any], BeforeValidator(_mapping_or_empty)] = {}  # from the predict step


class PrivateResult(ResultFile):
    """``--private``: kept where only the operator reads, published once the competition closes."""

    private: FiniteMetrics = {}
    all: FiniteMetrics = {}
