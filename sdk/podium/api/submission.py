"""Submission: a model (or predictions, or a training request) sent to a Playground."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, StrictInt, StringConstraints, model_validator

from podium.api.common import (
    GROUP,
    PRESERVE_UNKNOWN,
    UNTYPED_VALUES,
    ApiModel,
    Condition,
    cel_rules,
)
from podium.api.training import TrainingSpec

Framework = Literal["auto", "sklearn", "keras", "pytorch", "onnx"]
Phase = Literal["Pending", "Training", "Evaluating", "Evaluated", "Failed", "Rejected"]
TERMINAL_PHASES: frozenset[str] = frozenset({"Evaluated", "Failed", "Rejected"})
# Who submitted: set by the API server's admission (the operator's webhook, or local mode's server), never a client.
SUBMITTER_ANNOTATION = f"{GROUP}/submitter"
MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9_.-]+$")]
# A JSON scalar: what a leaderboard column can show. Numbers must be finite.
MetadataValue = StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False)] | Annotated[
    str, StringConstraints(max_length=256)]


class ModelSource(ApiModel):
    uri: str = Field(min_length=1, description="URI of the submission artifact (directory or .tar.gz).")
    framework: Framework = Field(default="auto", description="Detected from the artifact when auto.")
    preprocessor_uri: str | None = Field(
        default=None,
        description="A preprocessor submitted apart from the model (a directory or .tar.gz written by "
        "podium.artifacts.save_preprocessor); it replaces one bundled in the artifact.",
    )


class PredictionsSource(ApiModel):
    uri: str = Field(min_length=1, description="URI of a predictions file (.npz or .csv) for the holdout rows.")


class SubmissionSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "(has(self.model) ? 1 : 0) + (has(self.predictions) ? 1 : 0) + (has(self.training) ? 1 : 0) == 1",
                "exactly one of model, predictions or training must be set",
                ".model",
            ),
            (
                "self.playground == oldSelf.playground",
                "playground: is immutable; create a new Submission instead",
                ".playground",
            ),
            # What was evaluated stays what the score says it is: changing it takes a new Submission.
            *(
                (
                    f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
                    f"{field}: the evaluated inputs are immutable; create a new Submission instead",
                    f".{field}",
                )
                for field in ("model", "predictions", "training")
            ),
            ("self.track == oldSelf.track", "track: is immutable; create a new Submission instead", ".track"),
            (
                "!has(self.metadata) || self.metadata.all(k, type(self.metadata[k]) in [string, int, double, bool])",
                "metadata: each value must be a JSON scalar (a string, number or boolean), not an object or a list",
                ".metadata",
            ),
            (
                "has(self.metadata) == has(oldSelf.metadata) && (!has(self.metadata) || self.metadata == oldSelf.metadata)",
                "metadata: is recorded when the Submission is admitted and shown as such; create a new Submission "
                "to show other values",
                ".metadata",
            ),
        )
    )

    playground: str = Field(min_length=1, max_length=253, description="Name of the Playground, same namespace.")
    track: Literal["experiment", "competition"] = "experiment"
    model: ModelSource | None = None
    predictions: PredictionsSource | None = None
    training: TrainingSpec | None = None
    description: str | None = Field(default=None, max_length=10000)
    final: bool = Field(default=False, description="Select as one of the member's final competition submissions.")
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict, max_length=32,
        description="Custom metadata shown as leaderboard columns: up to 32 keys, each a JSON scalar "
        "(string of at most 256 characters, number or boolean), e.g. {\"lr\": 0.1, \"augmented\": true}.",
        json_schema_extra=UNTYPED_VALUES,
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SubmissionSpec:
        given = [name for name in ("model", "predictions", "training") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"exactly one of model, predictions or training must be set (got {', '.join(given) or 'none'})"
            )
        return self


class JobRefs(ApiModel):
    training: str | None = None
    evaluation: str | None = None


class Timings(ApiModel):
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    evaluated_at: datetime | None = None
    duration_seconds: float | None = None


class TrainingProgress(ApiModel):
    """What the training Job last reported (read by the operator within limits, at a bounded rate)."""

    algorithm: str | None = None
    device: str | None = None
    iteration: int | None = None
    iterations: int | None = None
    loss: float | None = Field(default=None, allow_inf_nan=False)
    validation: float | None = Field(default=None, allow_inf_nan=False,
                                     description="Validation score (accuracy, MSE or the CV score).")
    best: dict[str, Any] | None = Field(default=None, json_schema_extra=PRESERVE_UNKNOWN,
                                        description="tpe-search: the best configuration so far.")
    progress: str | None = Field(default=None, description="One line for kubectl get, e.g. 'iter 200/2000 loss 0.41'.")
    updated_at: datetime | None = None


class SubmissionStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    phase: Phase | None = None
    version: int | None = Field(default=None, description="Unique, monotonic per playground; set by the operator.")
    submitter: str | None = None
    score: float | None = Field(default=None, description="Primary metric on the public split.")
    metrics: dict[str, float] = Field(default_factory=dict, description="Public metrics only.")
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN)
    framework: str | None = None
    verified: bool | None = None
    jobs: JobRefs | None = None
    training: TrainingProgress | None = None
    timings: Timings | None = None
    message: str | None = None
