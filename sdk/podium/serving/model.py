"""Podium's ``kserve.Model``: one submission artifact answering V1 and V2 requests.

``predict`` is synchronous on purpose: KServe calls a sync handler directly on its event loop, which for
small requests is cheaper than a hop to a thread pool (see benchmarks/bench_serving.py). Every request
is counted once, by outcome, in the contract's metrics (:mod:`podium.serving.metrics`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InferenceError, InvalidInput

from podium.artifacts.archive import ARCHIVE_SUFFIXES
from podium.artifacts.manifest import MANIFEST_NAME
from podium.errors import ArtifactError
from podium.frameworks import ModelInputError
from podium.serving.codec import (
    LabelMap,
    Layout,
    RequestError,
    v1_features,
    v1_response,
    v2_features,
    v2_outputs,
)
from podium.serving.metrics import RequestMetrics

Runtime = Literal["native", "onnx", "auto"]
_MAX_MESSAGE = 600


@dataclass(frozen=True)
class Settings:
    """What the serving contract passes in env (PODIUM_*) or flags."""

    model_dir: Path
    submission: str = ""
    version: str = ""
    task: str | None = None  # classification | regression
    class_labels: Sequence[Any] | None = None
    runtime: Runtime = "auto"


class CountedInvalidInput(InvalidInput):
    """A refusal already counted by the model (the server's handler counts the others)."""


SUBMISSION_HEADER = "x-podium-submission"  # which model answered: clients can tell stable from canary


class PodiumModel(Model):
    def __init__(self, name: str, settings: Settings):
        super().__init__(name, return_response_headers=True)
        self.settings = settings
        self.metrics = RequestMetrics(name, settings.submission, settings.version)
        self.submission: Any = None  # podium.artifacts.LoadedSubmission once loaded
        self._layout = Layout()
        self._labels = LabelMap(None)

    def load(self) -> bool:
        from podium.artifacts import load_submission

        submission = load_submission(artifact_path(self.settings.model_dir), runtime=self.settings.runtime)
        regression = self.settings.task == "regression" or submission.task == "regression"
        labels = LabelMap(None if regression else self.settings.class_labels)
        labels.check(submission.class_labels)
        schema = submission.manifest.input_schema if submission.manifest is not None else None
        self._layout = Layout.of(schema, preprocessor=submission.preprocessor is not None)
        self._labels, self.submission = labels, submission
        self.ready = True
        return self.ready

    @property
    def runtime(self) -> str | None:
        """Which of the artifact's models answers: "native" or "onnx" (None before load)."""
        return None if self.submission is None else self.submission.runtime

    def predict(self, payload: Any, headers: dict[str, str] | None = None,
                response_headers: dict[str, str] | None = None) -> Any:
        start = time.perf_counter()
        if response_headers is not None and self.settings.submission:
            response_headers[SUBMISSION_HEADER] = self.settings.submission
        v2 = isinstance(payload, InferRequest)
        try:
            features = v2_features(payload.inputs, self._layout) if v2 else v1_features(payload, self._layout)
            predictions = self.submission.predict(features)
            labels, proba, classes = self._labels.apply(predictions)
        except (RequestError, ModelInputError) as error:
            self.metrics.observe("invalid", time.perf_counter() - start)
            raise CountedInvalidInput(_one_line(error)) from None
        except Exception as error:  # the submitted model (or its preprocessor) failed: the server's fault, 500
            self.metrics.observe("error", time.perf_counter() - start)
            raise InferenceError(_one_line(error)) from error
        response = _v2_response(payload, self.name, labels, proba, classes) if v2 else v1_response(
            labels, proba, classes
        )
        self.metrics.observe("ok", time.perf_counter() - start)
        return response


def _v2_response(request: Any, name: str, labels: list[Any], proba: Any, classes: Any) -> InferResponse:
    outputs = [
        InferOutput(name=out["name"], shape=out["shape"], datatype=out["datatype"], data=out["data"],
                    parameters=out.get("parameters"))
        for out in v2_outputs(labels, proba, classes)
    ]
    return InferResponse(response_id=request.id or uuid.uuid4().hex, model_name=name, infer_outputs=outputs)


def artifact_path(model_dir: Path) -> Path:
    """The artifact KServe's storage initializer left in ``model_dir``: the directory itself (manifest at its
    top or in its one subdirectory), or its one archive. A directory without either is a bare model."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ArtifactError(f"{model_dir} is not a directory", field="model_dir",
                            hint="pass the directory the storage initializer downloaded the artifact to")
    if (model_dir / MANIFEST_NAME).is_file():
        return model_dir
    entries = [entry for entry in model_dir.iterdir() if not entry.name.startswith(".")]
    archives = [entry for entry in entries if entry.is_file() and entry.name.endswith(ARCHIVE_SUFFIXES)]
    if len(archives) > 1:
        raise ArtifactError(
            f"{model_dir} holds {len(archives)} archives ({sorted(a.name for a in archives)[:5]})",
            field="storageUri", hint="point storageUri at one artifact (.tar.gz) or one artifact directory",
        )
    if archives:
        return archives[0]
    folders = [entry for entry in entries if entry.is_dir()]
    if len(folders) == 1 and len(entries) == 1 and (folders[0] / MANIFEST_NAME).is_file():
        return folders[0]
    return model_dir


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
