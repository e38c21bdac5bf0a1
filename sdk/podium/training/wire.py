"""The typed wire between the operator and the training Job (pure): its arguments and its progress report.

The Job gets no credentials: every object it reads or writes is a presigned URL in its arguments. It
reports progress by overwriting one small JSON object (:class:`ProgressReport`) at a bounded rate; the
operator reads that with a size limit and strict JSON (finite numbers only) and shows it in the
Submission's status, so a training loop never writes the Kubernetes API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium.api.training import Algorithm
from podium.evaluation.wire import ClassLabel, InvalidJSON, StepArgs, Task, strict_json

MAX_PROGRESS_BYTES = 64 << 10
MAX_DATA_BYTES = 1 << 30  # training features or labels: larger ones are refused, not read
Device = Literal["auto", "cpu", "cuda"]


class TrainArgs(StepArgs):
    """``python -m podium.training``: train a model, write its artifact, its history and progress reports."""

    algorithm: Algorithm = Field(description="the training algorithm")
    hyperparameters: str = Field(default="{}", description="the algorithm's hyperparameters, as JSON")
    task: Task = Field(description="the playground's task")
    class_labels: list[ClassLabel] | None = Field(default=None, description="class labels (JSON list)")
    metric: str = Field(description="the playground's primary metric")
    features: str = Field(description="training features URL")
    labels: str = Field(description="training labels URL")
    artifact: str = Field(description="where the trained artifact (.tar.gz) is PUT")
    progress: str = Field(description="where progress reports are PUT (overwritten)")
    history: str = Field(description="where the training history (JSON) is PUT at the end")
    initialisation: str | None = Field(
        default=None, description="meta-learning: where the learned initialisation (.tar.gz) is PUT")
    checkpoint: str | None = Field(default=None, description="checkpoint URL to resume from (GET; absent: start)")
    checkpoint_put: str | None = Field(default=None, description="where checkpoints are PUT")
    device: Device = Field(default="auto", description="cuda when available (auto), or forced")
    progress_seconds: float = Field(default=10.0, ge=0, description="at most one progress report per this many seconds")
    termination_log: Path | None = Field(default=None, description="where to write the failure message")

    def settings(self) -> dict[str, Any]:
        value = json.loads(self.hyperparameters)
        if not isinstance(value, dict):
            raise ValueError("--hyperparameters: give a JSON object")
        return value


class ProfileArgs(StepArgs):
    """``python -m podium.training.profile``: the meta-features of a Playground's training data."""

    features: str = Field(description="training features URL")
    labels: str = Field(description="training labels URL")
    task: Task = Field(description="the playground's task")
    out: str = Field(description="where the meta-features JSON is PUT")


class ProgressReport(BaseModel):
    """What the training Job last said about itself."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    state: Literal["starting", "training", "saving", "done", "failed"] = "training"
    algorithm: str | None = Field(default=None, max_length=32)
    device: str | None = Field(default=None, max_length=64)
    iteration: int | None = Field(default=None, ge=0, le=10**9)
    iterations: int | None = Field(default=None, ge=0, le=10**9)
    loss: float | None = Field(default=None, allow_inf_nan=False)
    validation: float | None = Field(default=None, allow_inf_nan=False)
    best: dict[str, Any] | None = None
    message: str | None = Field(default=None, max_length=4000)

    @classmethod
    def from_json(cls, data: bytes) -> ProgressReport:
        """Strictly read (size, finite numbers); a ValueError saying what is wrong."""
        try:
            raw = strict_json(data, limit=MAX_PROGRESS_BYTES)
            return cls.model_validate(raw)
        except (InvalidJSON, ValidationError) as error:
            raise ValueError(f"progress report {error}") from None

    def line(self) -> str:
        """One line for ``kubectl get sub``."""
        parts = []
        if self.iteration is not None:
            parts.append(f"iter {self.iteration}" + (f"/{self.iterations}" if self.iterations else ""))
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4g}")
        if self.validation is not None:
            parts.append(f"val {self.validation:.4g}")
        return " ".join(parts) or self.state
