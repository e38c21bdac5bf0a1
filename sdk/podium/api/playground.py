"""Playground: an ML task with a holdout set, tracks, and leaderboards."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from podium.api.common import (
    PRESERVE_UNKNOWN,
    UNTYPED_VALUES,
    ApiModel,
    ComputeResources,
    Condition,
    cel_rules,
)
from podium.api.training import TrainingData

TaskType = Literal["classification", "regression"]
InputType = Literal["tabular", "text", "image", "audio", "video"]
Direction = Literal["maximize", "minimize"]

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "precision_weighted",
    "recall_macro",
    "recall_weighted",
    "roc_auc",
    "log_loss",
)
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2", "mape")
MINIMIZED_METRICS = frozenset({"log_loss", "mse", "rmse", "mae", "mape"})


def default_direction(metric: str) -> Direction:
    return "minimize" if metric in MINIMIZED_METRICS else "maximize"


class HoldoutData(ApiModel):
    """Where the holdout lives. Labels are read only by the trusted score step."""

    features: str = Field(min_length=1, description="URI (s3://bucket/key, file:// or path) of the holdout features.")
    labels: str = Field(min_length=1, description="URI of the holdout labels; never shown to submitted models.")
    id_column: str | None = Field(
        default=None, min_length=1, max_length=256,
        description="Column holding a unique id per row, looked up in the labels table first, then in the "
        "features table (removed from the copy models read: an id never reaches a model). Rows are assigned to the public or private part by this id, so "
        "re-uploading the same rows in another order keeps every row on its side. Without it, a row is "
        "identified by its content (features and label).",
    )


class ExperimentTrack(ApiModel):
    enabled: bool = Field(default=True, description="Accept experiment submissions (public leaderboard, no quota).")


class CompetitionTrack(ApiModel):
    """A competition: part of the holdout is private until the competition closes."""

    enabled: bool = True
    private_fraction: float = Field(
        default=0.5, gt=0, lt=1, description="Fraction of holdout rows scored privately, strictly between 0 and 1."
    )
    seed: int = Field(default=0, ge=0, description="Seed of the public/private split.")
    quota_per_day: int = Field(default=5, ge=1, le=1000, description="Submissions per member per UTC day.")
    deadline: datetime | None = Field(default=None, description="RFC 3339 time after which submissions are rejected.")
    closed: bool = Field(default=False, description="Close now: publish the private leaderboard.")
    final_selections: int = Field(default=2, ge=1, le=10, description="Submissions a member may select as final.")


class EvaluationDefaults(ApiModel):
    timeout_seconds: int = Field(default=600, ge=10, le=86400, description="Deadline of one evaluation Job.")
    resources: ComputeResources = Field(default_factory=ComputeResources)
    image: str | None = Field(default=None, description="Evaluator image; the operator's default when unset.")


class PlaygroundSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            (
                "self.task != 'classification' || (has(self.classLabels) && size(self.classLabels) >= 2)",
                "classLabels: a classification playground needs at least two class labels",
                ".classLabels",
            ),
            (
                "self.task != 'regression' || !has(self.classLabels) || size(self.classLabels) == 0",
                "classLabels: a regression playground has no class labels; remove classLabels",
                ".classLabels",
            ),
            (
                "self.task == 'classification' ? self.primaryMetric in ['accuracy', 'balanced_accuracy', "
                "'f1_macro', 'f1_weighted', 'precision_macro', 'precision_weighted', 'recall_macro', "
                "'recall_weighted', 'roc_auc', 'log_loss'] : self.primaryMetric in ['mse', 'rmse', 'mae', 'r2', 'mape']",
                "primaryMetric: not a metric of this task type (classification: accuracy, balanced_accuracy, f1_*, "
                "precision_*, recall_*, roc_auc, log_loss; regression: mse, rmse, mae, r2, mape)",
                ".primaryMetric",
            ),
        )
    )

    display_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    task: TaskType = Field(description="classification or regression.")
    input_type: InputType = "tabular"
    holdout: HoldoutData
    class_labels: list[str] | None = Field(
        default=None, max_length=10000, json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Class labels, as strings, for classification; each listed once.",
    )
    primary_metric: str = Field(description="Metric that ranks the leaderboard, e.g. accuracy or rmse.")
    metric_direction: Direction | None = Field(default=None, description="Defaults to the metric's own direction.")
    example_data: str | None = Field(default=None, description="URI of a few example input rows.")
    training_data: TrainingData | None = Field(
        default=None, description="Training data participants get; training submissions use it by default, "
        "and its meta-features drive recommendations.")
    visibility: Literal["public", "private"] = "public"
    members: list[str] = Field(default_factory=list, description="Users allowed to submit to a private playground.")
    experiment: ExperimentTrack = Field(default_factory=ExperimentTrack)
    competition: CompetitionTrack | None = None
    evaluation: EvaluationDefaults = Field(default_factory=EvaluationDefaults)
    leaderboard_size: int = Field(default=20, ge=1, le=200, description="Rows of the leaderboard kept in status.")

    @field_validator("class_labels")
    @classmethod
    def _classes_listed_once(cls, labels: list[str] | None) -> list[str] | None:
        # The CRD's list-type set makes the API server refuse duplicates too.
        twice = sorted(label for label, count in Counter(labels or []).items() if count > 1)
        if twice:
            raise ValueError(f"classLabels: {', '.join(map(repr, twice))} listed more than once; list each class once")
        return labels

    @model_validator(mode="after")
    def _check_task_fields(self) -> PlaygroundSpec:
        # Mirrors the CEL rules so the SDK fails before the API server does.
        if self.task == "classification":
            if not self.class_labels or len(self.class_labels) < 2:
                raise ValueError("classLabels: a classification playground needs at least two class labels")
            allowed: tuple[str, ...] = CLASSIFICATION_METRICS
        else:
            if self.class_labels:
                raise ValueError("classLabels: a regression playground has no class labels; remove classLabels")
            allowed = REGRESSION_METRICS
        if self.primary_metric not in allowed:
            raise ValueError(
                f"primaryMetric: {self.primary_metric!r} is not a {self.task} metric; use one of {', '.join(allowed)}"
            )
        return self

    @property
    def direction(self) -> Direction:
        return self.metric_direction or default_direction(self.primary_metric)


class LeaderboardRow(ApiModel):
    rank: int
    version: int
    submission: str
    submitter: str = ""
    track: Literal["experiment", "competition"] = "experiment"
    score: float | None = Field(default=None, description="The primary metric.")
    metrics: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN)
    custom_metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=UNTYPED_VALUES,
                                            description="The submitter's spec.metadata (JSON scalars).")
    framework: str = ""
    verified: bool = True
    submitted_at: datetime | None = None
    evaluated_at: datetime | None = None


class Recommendation(ApiModel):
    """A configuration that ranked well on a similar playground; ``training`` is a ready training spec."""

    rank: int = Field(ge=1)
    source_playground: str = Field(description="The similar playground it comes from.")
    distance: float = Field(ge=0, allow_inf_nan=False, description="Meta-feature distance to that playground.")
    score: float | None = Field(default=None, allow_inf_nan=False, description="Its score there.")
    metric: str | None = None
    version: int | None = Field(default=None, description="The leaderboard version it comes from.")
    training: dict[str, Any] = Field(default_factory=dict, json_schema_extra=PRESERVE_UNKNOWN,
                                     description="spec.training of a Submission that trains this configuration.")


class MetaFeaturesStatus(ApiModel):
    """The training data's meta-features (the values are kept in the operator's own store)."""

    count: int = 0
    computed_at: datetime | None = None
    source: str | None = Field(default=None, description="Fingerprint of the training data they describe.")
    message: str | None = None


class HoldoutSplitStatus(ApiModel):
    uri: str = ""
    public_rows: int = 0
    private_rows: int = 0
    seed: int = 0
    private_fraction: float = 0.0
    id_column: str | None = Field(default=None, description="spec.holdout.idColumn the split was computed with.")


class HoldoutSnapshot(ApiModel):
    """The operator's own copy of the holdout, taken at Ready: every evaluation reads only this."""

    features: str = Field(default="", description="The features as copied below the operator-only prefix.")
    labels: str = Field(default="", description="The labels as copied below the operator-only prefix.")
    source_features: str = Field(default="", description="spec.holdout.features when the copy was taken.")
    source_labels: str = Field(default="", description="spec.holdout.labels when the copy was taken.")
    sha256: str = Field(default="", description="Content hash of the copied features and labels.")


class PlaygroundStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    submission_count: int = 0
    next_version: int = Field(default=1, description="Next version number; assigned by the operator only.")
    pending_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Versions handed out whose Submission may not have recorded them yet, by Submission name; "
        "a restarted operator re-uses them instead of skipping a number.",
    )
    holdout_rows: int | None = None
    holdout: HoldoutSnapshot | None = None
    split: HoldoutSplitStatus | None = None
    leaderboard: list[LeaderboardRow] = Field(default_factory=list, description="Public leaderboard, top N.")
    private_leaderboard: list[LeaderboardRow] | None = Field(
        default=None, description="Published only once the competition is closed."
    )
    competition_closed: bool = False
    deployment: str | None = None
    meta_features: MetaFeaturesStatus | None = None
    recommendations: list[Recommendation] = Field(default_factory=list)
