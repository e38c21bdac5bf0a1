"""manifest.json: the versioned, validated description of a submission artifact."""

from __future__ import annotations

import json
import platform
from datetime import datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import podium
from podium.artifacts.errors import ManifestError
from podium.artifacts.preprocessor import PreprocessorInfo
from podium.artifacts.schema import InputSchema
from podium.frameworks import Framework, ModelFiles, UnknownFramework
from podium.metadata import Scalar

SCHEMA_VERSION: Literal[1] = 1
MANIFEST_NAME = "manifest.json"

Task = Literal["classification", "regression"]
ClassLabel = str | int | float | bool


class OnnxInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    available: bool = False
    path: str | None = None
    opset: int | None = None
    error: str | None = None  # why the export failed, when it did
    # the export gave the native model's labels, and its probabilities or values within tolerance, on
    # the example data: what ``runtime="auto"`` requires before it evaluates the export instead
    checked: bool = False


class Versions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    python: str
    numpy: str
    podium: str
    framework_library: str  # distribution name, e.g. "scikit-learn"
    framework: str | None  # its version


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    framework: Framework
    task: Task | None = None
    model: ModelFiles
    preprocessor: PreprocessorInfo | None = None
    input_schema: InputSchema | None = None
    class_labels: list[ClassLabel] | None = None
    onnx: OnnxInfo = Field(default_factory=OnnxInfo)
    versions: Versions
    content_hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    created: datetime
    metadata: dict[str, Scalar] = Field(default_factory=dict)


def versions(framework_library: str, framework_version: str | None) -> Versions:
    return Versions(
        python=platform.python_version(),
        numpy=np.__version__,
        podium=podium.__version__,
        framework_library=framework_library,
        framework=framework_version,
    )


def write_manifest(manifest: Manifest, root: Path) -> Path:
    path = root / MANIFEST_NAME
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return path


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(
            f"{MANIFEST_NAME} cannot be read ({error})",
            field="manifest",
            hint="save the submission with podium.artifacts.save_submission, which writes a valid manifest",
        ) from error
    if not isinstance(raw, dict):
        raise ManifestError(
            f"{MANIFEST_NAME} is not a JSON object", field="manifest", hint="re-save the submission"
        )
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(
            f"{MANIFEST_NAME} has schema_version {raw.get('schema_version')!r}; this Podium reads version {SCHEMA_VERSION}",
            field="manifest.schema_version",
            hint="save the submission with the same Podium version as the evaluator, or upgrade the evaluator image",
        )
    if raw.get("framework") not in {framework.value for framework in Framework}:
        raise UnknownFramework(
            f"the manifest names framework {raw.get('framework')!r}, which Podium does not support",
            field="manifest.framework",
            hint=f"submit a model of one of {[framework.value for framework in Framework]}",
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()[:3])
        raise ManifestError(
            f"{MANIFEST_NAME} is invalid ({problems})",
            field="manifest",
            hint="do not edit manifest.json by hand; save the submission again with podium.artifacts.save_submission",
        ) from error
