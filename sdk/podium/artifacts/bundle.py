"""Save a model (plus preprocessor and example data) as a submission artifact, and load one back.

Layout::

    manifest.json          validated description (podium.artifacts.manifest.Manifest)
    model/                 native model file(s), model.onnx when exportable, saved_model/ for Keras
    preprocessor/          optional: preprocessor.pkl, source.py, preprocessor.json

The same layout is used as a directory or packed into a ``.tar.gz``.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from podium.artifacts.archive import ARCHIVE_SUFFIXES, is_archive, pack, unpack
from podium.artifacts.conversion import export_onnx
from podium.artifacts.errors import ManifestError
from podium.artifacts.manifest import MANIFEST_NAME, Manifest, Task, read_manifest, versions, write_manifest
from podium.artifacts.preprocessor import (
    PREPROCESSOR_DIR,
    Preprocessor,
    apply_preprocessor,
    load_preprocessor,
    save_preprocessor,
)
from podium.artifacts.schema import InputSchema, conform
from podium.errors import ArtifactError, PodiumError
from podium.frameworks import (
    Framework,
    FrameworkAdapter,
    LoadedModel,
    ModelFiles,
    ModelRuntimeError,
    get_adapter,
)
from podium.frameworks.detect import detect_model, find_model
from podium.frameworks.outputs import to_predictions
from podium.metadata import Metadata, extract_metadata
from podium.predictions import Predictions

_EXAMPLE_ROWS = 64  # enough to export, validate ONNX and trace shapes; keeps saving quick
_CHUNK = 1 << 20
_MAX_ERROR_TEXT = 600


@dataclass(frozen=True)
class LoadedSubmission:
    """A loaded artifact: call :meth:`predict` on raw features (the preprocessor runs first)."""

    model: LoadedModel
    framework: Framework
    manifest: Manifest | None = None  # None for a bare model file or a directory without manifest
    preprocessor: Preprocessor | None = None
    runtime: Literal["native", "onnx"] = "native"  # which of the artifact's models ``model`` is

    @property
    def class_labels(self) -> list[Any] | None:
        return self.manifest.class_labels if self.manifest else None

    @property
    def task(self) -> str | None:
        return self.manifest.task if self.manifest else None

    def predict(self, features: Any) -> Predictions:
        rows = len(features)
        features = conform(features, self.manifest.input_schema if self.manifest else None)
        inputs = apply_preprocessor(self.preprocessor, features) if self.preprocessor else features
        try:
            output = self.model.predict(inputs)
        except PodiumError:
            raise
        except Exception as error:  # the submitted model's own failure, reported in its words
            raise ModelRuntimeError(
                f"the {self.framework.value} model raised {type(error).__name__}: {_one_line(error)}",
                field="model",
                hint="check that the features (after the preprocessor) have the columns, order and dtype the model was trained on",
            ) from error
        return to_predictions(output, rows=rows, class_labels=self.class_labels, task=self.task)


def save_submission(
    model: Any,
    path: str | Path,
    *,
    preprocessor: Any = None,
    example_data: Any = None,
    class_labels: Sequence[Any] | None = None,
    task: Task | None = None,
) -> Manifest:
    """Write ``model`` as an artifact directory, or as an archive when ``path`` ends in .tar.gz/.tgz."""
    path = Path(path)
    if path.name.endswith(ARCHIVE_SUFFIXES):
        with tempfile.TemporaryDirectory(prefix="podium-save-") as scratch:
            manifest = _write(model, Path(scratch), preprocessor, example_data, class_labels, task)
            pack(scratch, path)
        return manifest
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ArtifactError(
            f"{path} already exists and is not an empty directory", field="path", hint="choose a new path"
        )
    path.mkdir(parents=True, exist_ok=True)
    return _write(model, path, preprocessor, example_data, class_labels, task)


Runtime = Literal["native", "onnx", "auto"]


def load_submission(path: str | Path, *, runtime: Runtime = "native") -> LoadedSubmission:
    """Load an artifact directory, a .tar.gz of one, or a bare model file (framework auto-detected).

    ``runtime="onnx"`` runs the recorded ONNX export instead of the native model; ``"auto"`` does so only
    when the export gave the native model's own labels (and probabilities within tolerance) on the
    example data at saving (``manifest.onnx.checked``), and runs the native model otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactError(
            f"{path} does not exist", field="artifact", hint="check the path the artifact was staged to"
        )
    if is_archive(path):
        with tempfile.TemporaryDirectory(prefix="podium-load-") as scratch:
            # every loader reads its files fully into memory, so the scratch copy can go right away
            return _load_root(_artifact_root(unpack(path, scratch)), runtime)
    if path.is_dir():
        return _load_root(path, runtime)
    root, adapter, files = find_model(path)
    return LoadedSubmission(model=adapter.load(root, files), framework=adapter.framework)


def content_hash(root: str | Path) -> str:
    """sha256 over (relative path, file sha256) of every file but the manifest, in sorted order."""
    root = Path(root)
    digest = hashlib.sha256()
    for file in sorted(
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() != MANIFEST_NAME
    ):
        digest.update(f"{file.relative_to(root).as_posix()}\0{_file_sha256(file)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def _write(
    model: Any,
    root: Path,
    preprocessor: Any,
    example_data: Any,
    class_labels: Sequence[Any] | None,
    task: Task | None,
) -> Manifest:
    adapter = detect_model(model)
    example_data = _head(example_data)
    preprocessor_info = (
        save_preprocessor(preprocessor, root / PREPROCESSOR_DIR) if preprocessor is not None else None
    )
    example = _model_input(example_data, preprocessor)
    files = adapter.save(model, root, example)
    example = _as_dtype(example, files.input_dtype)
    labels, task = _labels_and_task(model, adapter, class_labels, task)
    onnx = export_onnx(adapter, model, root, files, example, labels, task)
    manifest = Manifest(
        framework=adapter.framework,
        task=task,
        model=files,
        preprocessor=preprocessor_info,
        input_schema=InputSchema.from_example(example_data) if example_data is not None else None,
        class_labels=labels,
        onnx=onnx,
        versions=versions(adapter.library, adapter.version()),
        content_hash=content_hash(root),
        created=datetime.now(UTC),
        metadata={**_metadata(model, adapter, example), "model_size_bytes": _size(root / files.path)},
    )
    write_manifest(manifest, root)
    return manifest


def _load_root(root: Path, runtime: Runtime) -> LoadedSubmission:
    if not (root / MANIFEST_NAME).is_file():
        root, adapter, files = find_model(root)
        preprocessor = (
            load_preprocessor(root / PREPROCESSOR_DIR) if (root / PREPROCESSOR_DIR).is_dir() else None
        )
        return LoadedSubmission(
            model=adapter.load(root, files), framework=adapter.framework, preprocessor=preprocessor
        )
    manifest = read_manifest(root)
    actual = content_hash(root)
    if actual != manifest.content_hash:
        raise ManifestError(
            f"the artifact's files do not match its manifest (content hash {actual}, manifest says {manifest.content_hash})",
            field="artifact",
            hint="the artifact was modified or damaged after saving; save and upload it again",
        )
    adapter, files = get_adapter(manifest.framework), manifest.model
    if runtime == "auto":
        runtime = "onnx" if manifest.onnx.checked and manifest.framework is not Framework.ONNX else "native"
    if runtime == "onnx":
        if not manifest.onnx.available or manifest.onnx.path is None:
            raise ArtifactError(
                f"this {manifest.framework.value} artifact has no ONNX export ({manifest.onnx.error or 'not recorded'})",
                field="runtime",
                hint="use the native runtime, or submit a model the ONNX converters support",
            )
        adapter, files = get_adapter(Framework.ONNX), ModelFiles(format="onnx", path=manifest.onnx.path)
    preprocessor = load_preprocessor(root / PREPROCESSOR_DIR) if manifest.preprocessor else None
    return LoadedSubmission(
        model=adapter.load(root, files),
        framework=manifest.framework,
        manifest=manifest,
        preprocessor=preprocessor,
        runtime="onnx" if runtime == "onnx" and manifest.framework is not Framework.ONNX else "native",
    )


def _artifact_root(directory: Path) -> Path:
    """Archives made with ``tar czf x.tar.gz folder/`` hold one top-level folder: look inside it."""
    entries = list(directory.iterdir())
    if not (directory / MANIFEST_NAME).exists() and len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return directory


def _head(example_data: Any) -> Any:
    if example_data is None:
        return None
    if hasattr(example_data, "iloc"):
        return example_data.iloc[:_EXAMPLE_ROWS]
    return np.asarray(example_data)[:_EXAMPLE_ROWS]


def _model_input(example_data: Any, preprocessor: Any) -> np.ndarray | None:
    """Example rows as the model sees them: preprocessed, as one array."""
    if example_data is None:
        return None
    if preprocessor is not None:
        transform = (
            preprocessor.transform if callable(getattr(preprocessor, "transform", None)) else preprocessor
        )
        example_data = apply_preprocessor(transform, example_data)
    values = example_data.to_numpy() if hasattr(example_data, "to_numpy") else np.asarray(example_data)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_:
        return values.astype(np.float32)
    return values  # text/mixed columns: only scikit-learn pipelines take these directly


def _as_dtype(example: np.ndarray | None, dtype: str | None) -> np.ndarray | None:
    return example if example is None or dtype is None else example.astype(dtype)


def _labels_and_task(
    model: Any, adapter: FrameworkAdapter, class_labels: Sequence[Any] | None, task: Task | None
) -> tuple[list[Any] | None, Task | None]:
    """scikit-learn classifiers define their own label order (``classes_``); others take the given labels."""
    given = [_plain(label) for label in class_labels] if class_labels is not None else None
    given = given or None  # an empty list (a regression Playground's spec) means no labels
    if given is not None and len(set(given)) != len(given):
        raise ArtifactError(
            "class_labels contain duplicates", field="class_labels", hint="list each class once"
        )
    own = getattr(model, "classes_", None) if adapter.framework is Framework.SKLEARN else None
    if own is not None:
        labels = [_plain(label) for label in own]
        if given is not None and set(map(str, given)) != set(map(str, labels)):
            raise ArtifactError(
                f"class_labels {given[:10]} differ from the classes the model was fitted on {labels[:10]}",
                field="class_labels",
                hint="omit class_labels for scikit-learn classifiers, or pass exactly model.classes_",
            )
        return labels, task or "classification"
    if adapter.framework is Framework.SKLEARN and task is None:
        from podium.metadata.sklearn import estimator_type

        task = "regression" if estimator_type(model) == "regressor" else None
    return given, task or ("classification" if given else None)


def _metadata(model: Any, adapter: FrameworkAdapter, example: np.ndarray | None) -> Metadata:
    try:
        return extract_metadata(model, adapter.framework, example)
    except Exception as error:  # metadata is for the leaderboard; never block a submission on it
        warnings.warn(
            f"metadata extraction failed for the {adapter.framework.value} model ({error})", stacklevel=4
        )
        return {"ml_framework": adapter.framework.value, "model_type": type(model).__name__}


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label


def _size(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "..."
